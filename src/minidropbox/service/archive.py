"""A folder as a zip, streamed: memory stays flat whatever the folder's size.

Members are stored (not deflated: most of what people keep is compressed already, and the
API's CPU is better spent elsewhere) with data descriptors, so nothing is ever seeked back
to; sizes are known up front, which lets ``zipfile`` choose ZIP64 only for members that need
it. Bytes leave as soon as ``zipfile`` has written them.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from typing_extensions import Buffer

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the oldest time a zip entry can carry


@dataclass(frozen=True)
class ZipMember:
    name: str  # path inside the zip; a folder's ends with "/"
    modified: float  # epoch seconds
    size: int  # 0 for folders


class _Sink(io.RawIOBase):
    """A write-only, unseekable stream that hands back what was written since last asked."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Buffer) -> int:
        view = memoryview(data)
        self._parts.append(view.tobytes())
        return view.nbytes

    def drain(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def _date_time(modified: float) -> tuple[int, int, int, int, int, int]:
    t = time.gmtime(max(0.0, modified))
    moment = (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)
    return max(moment, ZIP_EPOCH)


async def zip_stream(members: list[ZipMember],
                     read: Callable[[int], AsyncIterator[bytes | memoryview]]
                     ) -> AsyncIterator[bytes]:
    """The zip of ``members``; ``read(i)`` streams member ``i``'s bytes (files only)."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:
        for index, member in enumerate(members):
            info = zipfile.ZipInfo(member.name, date_time=_date_time(member.modified))
            if member.name.endswith("/"):
                info.external_attr = 0o40755 << 16 | 0x10
                archive.writestr(info, b"")
                continue
            info.external_attr = 0o644 << 16
            info.file_size = member.size
            with archive.open(info, "w") as out:
                async for block in read(index):
                    out.write(block)
                    data = sink.drain()
                    if data:
                        yield data
            yield sink.drain()
    yield sink.drain()
