"""Delta upload of one file: cut it, ask which chunks the server lacks, send those, commit.

The file is cut with the shared FastCDC chunker; ``Remote.missing_chunks`` says which chunks
this user still has to send; those go out (large ones with one PUT each, several in flight;
small ones packed into multipart ``/chunks/batch`` requests); then the ordered hash list is
committed. Uploading the same bytes twice sends no chunk.

Memory stays flat: a big file is read in windows of ``WINDOW_BYTES``, and at most
``INFLIGHT_BYTES`` of chunk data waits for the network at once. Many small files go through
``upload_many`` (``client/upload_many.py``) instead, with a few requests for thousands.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from minidropbox.client.batch import (
    ParentVersion,
    Progress,
    TransferStats,
    pack_by_size,
)
from minidropbox.client.localfolder import FileInfo, LocalFolder, RealFolder
from minidropbox.client.remote import Remote
from minidropbox.client.values import CommitRequest, Entry
from minidropbox.core import errors
from minidropbox.core.chunking import iter_chunks
from minidropbox.core.paths import normalize_path

MiB = 1024 * 1024
SMALL_CHUNK = 1 * MiB  # below this a chunk shares a batch request; above, its own PUT
WINDOW_BYTES = 16 * MiB  # file bytes chunked before asking which chunks are missing
INFLIGHT_BYTES = 32 * MiB  # chunk bytes queued or on the wire at once
WORKERS = 4
READ_ATTEMPTS = 3  # tries before a file that keeps changing under us is reported


# Local paths as given on the command line, relative to the working directory or absolute.
HOST_FOLDER = RealFolder(Path())


class LocalFileChanged(errors.MiniDropboxError):
    """The local file changed while it was being read; try again once it is settled."""

    code = "local_file_changed"
    exit_code = 5


class ChunkSender:
    """Sends chunks with several requests in flight and a cap on the bytes waiting.

    Errors are kept per hash rather than raised from the worker, so ``upload_many`` can fail
    only the files that needed a chunk that could not be stored.
    """

    def __init__(self, remote: Remote, stats: TransferStats, progress: Progress | None = None,
                 workers: int = WORKERS, inflight_limit: int = INFLIGHT_BYTES) -> None:
        self.remote = remote
        self.stats = stats
        self.progress = progress
        # One worker: every chunk is sent in the calling thread, in order (the simulation).
        self.pool = (ThreadPoolExecutor(workers, thread_name_prefix="minidropbox-upload")
                     if workers > 1 else None)
        self.limit = inflight_limit
        self.inflight = 0
        self.cond = threading.Condition()
        self.futures: list[Future[None]] = []
        self.failed: dict[str, errors.MiniDropboxError] = {}

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ChunkSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, chunks: Sequence[tuple[str, bytes]]) -> None:
        """Queue chunks for upload; blocks while too many bytes are already waiting."""
        # Refresh the token here, in one thread, so workers never race to spend the
        # refresh token at the same moment.
        self.remote.api.access_token()
        small = [c for c in chunks if len(c[1]) < SMALL_CHUNK]
        for chunk in chunks:
            if len(chunk[1]) >= SMALL_CHUNK:
                self._submit([chunk])
        for group in pack_by_size(small, lambda c: len(c[1])):
            self._submit(group)

    def wait(self) -> None:
        """Wait for everything queued; raise the first failure, if any."""
        for future in self.futures:
            future.result()
        self.futures.clear()
        if self.failed:
            raise next(iter(self.failed.values()))

    def _submit(self, group: list[tuple[str, bytes]]) -> None:
        nbytes = sum(len(data) for _, data in group)
        with self.cond:
            while self.inflight and self.inflight + nbytes > self.limit:
                self.cond.wait()
            self.inflight += nbytes
        if self.pool is None:
            self._upload(group, nbytes)
            return
        future = self.pool.submit(self._upload, group, nbytes)
        self.futures.append(future)

    def _upload(self, group: list[tuple[str, bytes]], nbytes: int) -> None:
        try:
            if len(group) == 1:
                self.remote.put_chunk(*group[0])
            else:
                self.remote.put_chunks(group)
            self.stats.add(requests=1, chunks_sent=len(group), bytes_sent=nbytes)
            if self.progress:
                self.progress(nbytes)
        except errors.MiniDropboxError as exc:
            for h, _ in group:
                self.failed[h] = exc
        finally:
            with self.cond:
                self.inflight -= nbytes
                self.cond.notify_all()


def missing_chunks(remote: Remote, hashes: Sequence[str], stats: TransferStats) -> set[str]:
    """The subset of ``hashes`` this user still has to send, counted in ``stats``."""
    missing, requests = remote.missing_chunks(hashes)
    stats.add(requests=requests)
    return missing


def _identity(info: FileInfo) -> tuple[int, int, int]:
    return (info.ino, info.size, info.mtime_ns)


def check_unchanged(folder: LocalFolder, name: str, before: FileInfo, after: FileInfo,
                    read: int) -> None:
    """Raise ``LocalFileChanged`` unless the file is the one, and as long as, we started on."""
    try:
        now = folder.info(name)
    except FileNotFoundError as exc:
        raise LocalFileChanged(f"{name} disappeared while it was being read.") from exc
    if read != before.size or not (_identity(before) == _identity(after) == _identity(now)):
        raise LocalFileChanged(f"{name} changed while it was being read; try again once it "
                               "is no longer being written.")


def _send_file(folder: LocalFolder, name: str, sender: ChunkSender, seen: set[str],
               progress: Progress | None) -> tuple[list[str], int, float]:
    """Chunk one file and send what the server lacks. Returns (hashes, size, mtime)."""
    remote, stats = sender.remote, sender.stats
    hashes: list[str] = []
    window: list[tuple[str, bytes]] = []
    window_bytes = 0

    def flush() -> None:
        nonlocal window, window_bytes
        fresh = list(dict.fromkeys(h for h, _ in window if h not in seen))
        missing = missing_chunks(remote, fresh, stats) if fresh else set()
        to_send: list[tuple[str, bytes]] = []
        skipped = 0
        for h, data in window:
            if h in missing and h not in seen:
                to_send.append((h, data))
            else:
                skipped += len(data)
                stats.add(chunks_skipped=1)
            seen.add(h)
        if progress and skipped:
            progress(skipped)
        sender.send(to_send)
        window, window_bytes = [], 0

    with folder.open_read(name) as fh:
        before = fh.info()
        size = 0
        for ref, data in iter_chunks(fh):
            hashes.append(ref.hash)
            window.append((ref.hash, bytes(data)))  # the view dies with the next chunk
            window_bytes += ref.length
            size += ref.length
            if window_bytes >= WINDOW_BYTES:
                flush()
        flush()
        after = fh.info()
    stats.add(chunks_total=len(hashes))
    check_unchanged(folder, name, before, after, size)
    sender.wait()
    return hashes, size, before.mtime_ns / 1e9


def upload_file(remote: Remote, local_path: Path | str, remote_path: str,
                parent_version: ParentVersion = None, progress: Progress | None = None, *,
                stats: TransferStats | None = None, device: str | None = None,
                seen: set[str] | None = None, folder: LocalFolder = HOST_FOLDER) -> Entry:
    """Upload one file as a new version of ``remote_path`` and return its entry.

    ``parent_version`` is the version this content replaces: ``None`` for a new file
    (``VersionConflict`` if one exists), an int for an update (``VersionConflict`` if the
    file moved on), or ``"auto"`` for "on top of the current version, whatever it is".
    ``stats`` (if given) is added to; ``seen`` holds chunks already known to be sent.
    ``local_path`` is a name in ``folder`` (by default: a path on this machine).
    """
    path = normalize_path(remote_path)
    local = str(local_path)
    stats = stats if stats is not None else TransferStats()
    if parent_version == "auto":
        current = remote.find(path)
        stats.add(requests=1)
        if current is not None and not current.is_file:
            raise errors.AlreadyExists(f"{path} is a folder on the server.")
        parent_version = current.version if current else None
    seen = seen if seen is not None else set()
    # Two rounds: a chunk can vanish between `missing` and the commit (garbage collected,
    # or its last intact copy lost); the server then answers MissingChunk and one more
    # round sends it again.
    for round_ in range(2):
        with ChunkSender(remote, stats, progress) as sender:
            for attempt in range(READ_ATTEMPTS):
                try:
                    hashes, size, mtime = _send_file(folder, local, sender, seen, progress)
                    break
                except LocalFileChanged:
                    if attempt == READ_ATTEMPTS - 1:
                        raise
                    time.sleep(0.2 * (attempt + 1))
        request = CommitRequest(path, size, tuple(hashes), parent_version, mtime, device)
        try:
            stats.add(requests=1)
            entry = remote.commit(request)
        except errors.MissingChunk:
            if round_ == 1:
                raise
            seen.difference_update(hashes)
            continue
        stats.add(files=1, bytes_total=size)
        return entry
    raise AssertionError("unreachable")
