"""Verified download: ``fetch_to_temp`` writes one version of a file into a temp file next to
where it will go and checks size and content hash before anyone may rename it into place.

The bytes come from the storage nodes when the server hands out read grants (``fetch.py``:
chunks fetched in parallel, hedged, each verified against its hash; the chunk list against the
content hash), else through the API's ``/files/content``, cut and hashed as they arrive (one
pass, no read-back).

``download_file`` (``get``) and the sync executor both use it; they differ only in what they
do with the verified temp file. Nobody sees a half-written file, and a failed download leaves
the old file as it was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from minidropbox.client.batch import Progress, TransferStats
from minidropbox.client.fetch import NoDirectPath, fetch_planned
from minidropbox.client.localfolder import LocalFolder, RealFolder
from minidropbox.client.remote import Remote
from minidropbox.client.values import Entry, FileContent
from minidropbox.core import errors
from minidropbox.core.chunking import chunk_bytes, content_hash, iter_chunks
from minidropbox.core.paths import normalize_path

DIRECT_MIN_BYTES = 256 * 1024  # smaller known sizes come through the API in one request
# Files this small are fetched many to a request (``fetch_small_to_temp``), within the
# server's bounds for ``POST /files/contents``: 256 files, 1 MiB each, 16 MiB in all.
BATCH_FILE_BYTES = 1024 * 1024
BATCH_FILES = 256
BATCH_BYTES = 16 * 1024 * 1024


class DownloadMismatch(errors.MiniDropboxError):
    """The downloaded bytes do not match the file's size or content hash."""

    code = "download_mismatch"
    exit_code = 7


class BlockReader:
    """``readinto`` over an iterator of byte blocks, so the chunker can cut a download as it
    arrives (one pass over the bytes instead of writing them and reading them back); with
    ``out``, each block is also written there as it passes (streaming to a pipe)."""

    def __init__(self, blocks: Iterator[bytes], progress: Progress | None,
                 out: BinaryIO | None = None) -> None:
        self.blocks = blocks
        self.progress = progress
        self.out = out
        self.pending = memoryview(b"")
        self.total = 0

    def readinto(self, buffer: memoryview, /) -> int:
        while not self.pending:
            block = next(self.blocks, None)
            if block is None:
                return 0
            if self.out is not None:
                self.out.write(block)
            self.pending = memoryview(block)
            self.total += len(block)
            if self.progress:
                self.progress(len(block))
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


def fetch_to_temp(remote: Remote, path: str, folder: LocalFolder, into: str = "", *,
                  version: int | None = None, expect_size: int | None = None,
                  expect_hash: str | None = None, mtime: float | None = None,
                  progress: Progress | None = None, stats: TransferStats | None = None) -> str:
    """Download ``path`` (``version``, else the current one) into a new
    ``.minidropbox-tmp-*`` file in the folder ``into`` of ``folder``, verified, fsynced, with
    its mtime set; returns the temp file's name.

    ``expect_size`` and ``expect_hash`` default to what the answer's headers say
    (``Content-Length``, ``ETag``), the mtime to ``Last-Modified``. ``DownloadMismatch`` on
    any disagreement; the temp file is removed on any failure. A brief outage restarts the
    download from the first byte (``Remote.retry``).
    """
    stats = stats if stats is not None else TransferStats()
    tmp = folder.create_temp(into)
    try:
        def direct() -> tuple[int, str, float | None, int | None, str | None] | None:
            """From the storage nodes; None when the server offers no direct path."""
            try:
                with folder.open_write(tmp) as out:
                    entry, total, hashes = fetch_planned(remote, path, version, out,
                                                         progress=progress, stats=stats)
            except (NoDirectPath, errors.NotFound):
                # No grants, or a server without read plans (or no such file: the proxy
                # route then says so itself).
                return None
            return total, content_hash(hashes), entry.modified, entry.size, entry.content_hash

        def attempt() -> tuple[int, str, float | None, int | None, str | None]:
            # A small file is one request through the API; a read plan first would make two.
            if remote.direct and (expect_size is None or expect_size >= DIRECT_MIN_BYTES):
                result = direct()
                if result is not None:
                    return result
            hashes: list[str] = []
            with folder.open_write(tmp) as out, \
                    remote.open_content(path, version) as (info, blocks):
                stats.add(requests=1)
                reader = BlockReader(blocks, progress)
                for ref, data in iter_chunks(reader):
                    out.write(data)
                    hashes.append(ref.hash)
                    stats.add(bytes_received=len(data))  # as fetch_planned counts, chunk by chunk
            return (reader.total, content_hash(hashes), info.last_modified, info.length,
                    info.content_hash)

        written, got_hash, last_modified, length, etag = remote.retry.call(attempt,
                                                                           idempotent=True)
        expected = expect_size if expect_size is not None else length
        if expected is not None and written != expected:
            raise DownloadMismatch(f"{path}: received {written} bytes, expected {expected}.")
        want_hash = expect_hash if expect_hash is not None else etag
        if want_hash and got_hash != want_hash:
            raise DownloadMismatch(f"{path}: the downloaded bytes do not match the file's "
                                   "content hash.")
        when = mtime if mtime is not None else last_modified
        if when is not None:
            folder.set_mtime(tmp, int(when * 1e9))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            folder.unlink(tmp)
        raise
    stats.add(files=1, bytes_total=written)  # bytes_received: counted as they came
    return tmp


@dataclass(frozen=True)
class Wanted:
    """A version of a small file to fetch, and what it must turn out to be."""

    path: str
    version: int
    size: int
    content_hash: str
    mtime: float | None = None


def small_batches(wanted: Sequence[Wanted]) -> list[list[Wanted]]:
    """``wanted`` (each at most ``BATCH_FILE_BYTES``) in batches the server takes whole."""
    batches: list[list[Wanted]] = []
    size = 0
    for w in wanted:
        if not batches or len(batches[-1]) >= BATCH_FILES or size + w.size > BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(w)
        size += w.size
    return batches


def fetch_small_to_temp(remote: Remote, wanted: Sequence[Wanted], folder: LocalFolder,
                        into: str = "", stats: TransferStats | None = None,
                        ) -> list[str | errors.MiniDropboxError | OSError]:
    """Several small files in one request, each into its own verified temp file as
    ``fetch_to_temp`` makes them (size and content hash checked, fsynced, mtime set): per
    file, in order, the temp file's name or what went wrong (``NotFound``: gone meanwhile,
    ``DownloadMismatch``, an ``OSError`` writing it here). The bytes are hashed from
    memory, never read back. A failure of the whole request is raised (the caller may
    fetch them one by one)."""
    stats = stats if stats is not None else TransferStats()
    answers = remote.read_contents([(w.path, w.version) for w in wanted])
    stats.add(requests=1)
    out: list[str | errors.MiniDropboxError | OSError] = []
    good: list[tuple[int, FileContent, int]] = []  # (index in out, answer, mtime ns)
    for w, got in zip(wanted, answers, strict=True):
        if isinstance(got, errors.MiniDropboxError):
            out.append(got)
            continue
        problem = _mismatch(w, got)
        if problem is not None:
            out.append(DownloadMismatch(problem))
            continue
        mtime = w.mtime if w.mtime is not None else got.modified
        good.append((len(out), got, int(mtime * 1e9)))
        out.append(DownloadMismatch("not written"))  # replaced just below
    # All the batch's temp files at once, made durable together.
    written = folder.write_temps(into, [(got.data, mtime_ns) for _, got, mtime_ns in good])
    for (i, got, _), made in zip(good, written, strict=True):
        out[i] = made
        if isinstance(made, str):
            stats.add(files=1, bytes_total=got.size, bytes_received=got.size)
    return out


def _mismatch(w: Wanted, got: FileContent) -> str | None:
    """Why the bytes received are not the version asked for, or None."""
    if got.version != w.version or got.size != w.size or len(got.data) != w.size:
        return (f"{w.path}: received {len(got.data)} bytes of v{got.version}, expected "
                f"{w.size} of v{w.version}.")
    if content_hash(ref.hash for ref, _ in chunk_bytes(got.data)) != w.content_hash:
        return f"{w.path}: the downloaded bytes do not match the file's content hash."
    return None


def download_file(remote: Remote, remote_path: str, local_path: Path | str,
                  version: int | None = None, progress: Progress | None = None, *,
                  entry: Entry | None = None, stats: TransferStats | None = None) -> Entry:
    """Download a file (its current version, or ``version``) to ``local_path``.

    The verified temp file (``fetch_to_temp``) is renamed into place and the folder fsynced.
    Returns the entry that was downloaded.
    """
    path = normalize_path(remote_path)
    stats = stats if stats is not None else TransferStats()
    if entry is None:
        entry = remote.metadata(path)
        stats.add(requests=1)
    if not entry.is_file:
        raise errors.InvalidInput(f"{path} is a folder; use `get` on it to fetch its files.")
    target = Path(local_path)
    if target.is_dir():
        raise errors.AlreadyExists(f"{target} is a folder here; it was not replaced.")
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = RealFolder(target.parent)
    # Pin the version from the entry so the bytes and the metadata we check them against
    # agree even if someone commits a new version meanwhile.
    current = version is None
    tmp = fetch_to_temp(remote, path, folder,
                        version=entry.version if current else version,
                        expect_size=entry.size if current else None,
                        expect_hash=entry.content_hash if current else None,
                        mtime=entry.modified if current else None,
                        progress=progress, stats=stats)
    try:
        folder.rename(tmp, target.name, replace=True)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            folder.unlink(tmp)
        raise
    folder.fsync_dir("")
    return entry
