"""``cat`` / ``get REMOTE -`` and ``put - REMOTE``: files through a pipe.

Out: the bytes go to the pipe as they arrive and are cut and hashed on the way (one pass);
a size or content-hash mismatch at the end is a ``DownloadMismatch`` (exit 7), so a script
knows not to trust what it read. In: standard input is spooled to a private temp file first
(a pipe cannot be re-read, and an upload reads a file twice when it changes under it), then
uploaded as any file is; memory stays flat either way.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from minidropbox.client.batch import Progress, TransferStats
from minidropbox.client.download import BlockReader, DownloadMismatch
from minidropbox.client.remote import Remote
from minidropbox.client.upload import upload_file
from minidropbox.client.values import Entry
from minidropbox.core.chunking import content_hash, iter_chunks
from minidropbox.core.paths import normalize_path

SPOOL_BLOCK = 1024 * 1024


def stream_to(remote: Remote, path: str, out: BinaryIO, *, version: int | None = None,
              progress: Progress | None = None) -> int:
    """Write a file's bytes (``version``, else the current one) to ``out``; return the count.

    Checked against the answer's ``Content-Length`` and ``ETag`` once the last byte is out.
    """
    path = normalize_path(path)
    with remote.open_content(path, version) as (info, blocks):
        reader = BlockReader(blocks, progress, out)
        hashes = [ref.hash for ref, _ in iter_chunks(reader)]
    out.flush()
    if info.length is not None and reader.total != info.length:
        raise DownloadMismatch(f"{path}: received {reader.total} bytes, expected "
                               f"{info.length}.")
    if info.content_hash and content_hash(hashes) != info.content_hash:
        raise DownloadMismatch(f"{path}: the bytes do not match the file's content hash.")
    return reader.total


def upload_stream(remote: Remote, source: BinaryIO, remote_path: str, *,
                  progress: Progress | None = None, stats: TransferStats | None = None,
                  device: str | None = None) -> Entry:
    """Upload everything ``source`` gives as ``remote_path`` (a new version on top of any)."""
    with tempfile.TemporaryDirectory(prefix="minidropbox-stdin-") as folder:
        spool = Path(folder) / "stdin"
        with spool.open("wb") as fh:
            shutil.copyfileobj(source, fh, SPOOL_BLOCK)
        return upload_file(remote, spool, remote_path, "auto", progress, stats=stats,
                           device=device)
