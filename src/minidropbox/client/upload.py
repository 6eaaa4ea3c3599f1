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

import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from minidropbox.client.batch import (
    ParentVersion,
    Progress,
    TransferStats,
    pack_by_size,
)
from minidropbox.client.interruptible import WAKE_EVERY, result_of
from minidropbox.client.localfolder import FileInfo, LocalFolder, RealFolder
from minidropbox.client.nodes import NodeFault, UploadGrant
from minidropbox.client.remote import Remote, RetryPolicy
from minidropbox.client.values import CommitRequest, Entry
from minidropbox.core import errors
from minidropbox.core.chunking import content_hash, iter_chunks
from minidropbox.core.paths import normalize_path

MiB = 1024 * 1024
SMALL_CHUNK = 1 * MiB  # below this a chunk shares a batch request; above, its own PUT
WINDOW_BYTES = 16 * MiB  # file bytes chunked before asking which chunks are missing
INFLIGHT_BYTES = 32 * MiB  # chunk bytes queued or on the wire at once
WORKERS = 4
RECEIPTS_PER_COMMIT = 1_000  # the most a commit carries; more are presented on their own
RECEIPT_AGE = 120.0  # seconds a receipt waits for its commit before it is presented alone
READ_ATTEMPTS = 3  # tries before a file that keeps changing under us is reported


# Local paths as given on the command line, relative to the working directory or absolute.
HOST_FOLDER = RealFolder(Path())


class LocalFileChanged(errors.MiniDropboxError):
    """The local file changed while it was being read; try again once it is settled."""

    code = "local_file_changed"
    exit_code = 5


class ChunkSender:
    """Sends chunks with several requests in flight and a cap on the bytes waiting.

    A chunk with an ``UploadGrant`` goes straight to the storage nodes the grant names, until
    ``copies`` of them hold it (a failed node's place goes to the next); their receipts are
    kept for the commit (``take_receipts``). Any other chunk, or one the nodes could not take,
    goes through the API. Errors are kept per hash rather than raised from the worker, so
    ``upload_many`` can fail only the files that needed a chunk that could not be stored.
    """

    def __init__(self, remote: Remote, stats: TransferStats, progress: Progress | None = None,
                 workers: int = WORKERS, inflight_limit: int = INFLIGHT_BYTES,
                 on_sent: Callable[[list[str]], None] | None = None) -> None:
        self.remote = remote
        self.stats = stats
        self.progress = progress
        self.on_sent = on_sent  # called with the hashes of each request that succeeded
        # One worker: every chunk is sent in the calling thread, in order (the simulation).
        self.pool = (ThreadPoolExecutor(workers, thread_name_prefix="minidropbox-upload")
                     if workers > 1 else None)
        self.limit = inflight_limit
        self.inflight = 0
        self.cond = threading.Condition()
        self.futures: list[Future[None]] = []
        self.failed: dict[str, errors.MiniDropboxError] = {}
        self.receipts: list[str] = []
        self._receipts_since = 0.0
        # Fan-out: the R copies of a chunk are written side by side, as the API does.
        self.node_pool = (ThreadPoolExecutor(workers * 2, thread_name_prefix="minidropbox-put")
                          if workers > 1 else None)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        if self.node_pool is not None:
            self.node_pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ChunkSender:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        interrupted = exc_type is not None and issubclass(exc_type, KeyboardInterrupt)
        if interrupted and self.remote.bandwidth is not None:
            self.remote.bandwidth.stop()  # workers waiting for their turn (--bwlimit) stop
        self.close()
        if interrupted:
            self._keep_for_resume()

    def _keep_for_resume(self) -> None:
        """Ctrl-C: hand the receipts of the chunks the nodes already hold to the API (one
        try, no retry), so the next upload of the file skips them instead of sending all."""
        receipts = self.take_receipts()
        if receipts:
            once = Remote(self.remote.api, RetryPolicy(attempts=1, patience=0))
            with contextlib.suppress(errors.MiniDropboxError):
                once.present_receipts(receipts)

    def send(self, chunks: Sequence[tuple[str, bytes]],
             grants: Mapping[str, UploadGrant] | None = None) -> None:
        """Queue chunks for upload; blocks while too many bytes are already waiting."""
        # Refresh the token here, in one thread, so workers never race to spend the
        # refresh token at the same moment.
        self.remote.api.access_token()
        grants = grants or {}
        self._present_old_receipts()
        small = [c for c in chunks if len(c[1]) < SMALL_CHUNK and c[0] not in grants]
        for chunk in chunks:
            if chunk[0] in grants:
                self._submit([chunk], grants[chunk[0]])
            elif len(chunk[1]) >= SMALL_CHUNK:
                self._submit([chunk])
        for group in pack_by_size(small, lambda c: len(c[1])):
            self._submit(group)

    def wait(self) -> None:
        """Wait for everything queued; raise the first failure, if any."""
        for future in self.futures:
            result_of(future)
        self.futures.clear()
        if self.failed:
            raise next(iter(self.failed.values()))

    def take_receipts(self) -> list[str]:
        """The receipts not yet handed to the API (for the commit to carry)."""
        with self.cond:
            taken, self.receipts = self.receipts, []
        return taken

    def _present_old_receipts(self) -> None:
        """Hand receipts to the API before there are more than a commit carries, or before
        they age (the API accepts them for minutes): a long upload records as it goes."""
        with self.cond:
            due = len(self.receipts) >= RECEIPTS_PER_COMMIT or (
                self.receipts and time.monotonic() - self._receipts_since > RECEIPT_AGE)
        if due:
            receipts = self.take_receipts()
            _, requests = self.remote.present_receipts(receipts)
            self.stats.add(requests=requests)

    def _submit(self, group: list[tuple[str, bytes]], grant: UploadGrant | None = None,
                ) -> None:
        nbytes = sum(len(data) for _, data in group)
        with self.cond:
            while self.inflight and self.inflight + nbytes > self.limit:
                self.cond.wait(WAKE_EVERY)
            self.inflight += nbytes
        if self.pool is None:
            self._upload(group, nbytes, grant)
            return
        future = self.pool.submit(self._upload, group, nbytes, grant)
        self.futures.append(future)

    def _upload(self, group: list[tuple[str, bytes]], nbytes: int,
                grant: UploadGrant | None) -> None:
        try:
            if grant is not None and self._send_direct(*group[0], grant):
                pass
            elif len(group) == 1:
                self.remote.put_chunk(*group[0])
                self.stats.add(requests=1)
            else:
                self.remote.put_chunks(group)
                self.stats.add(requests=1)
            self.stats.add(chunks_sent=len(group), bytes_sent=nbytes)
            if self.on_sent:
                self.on_sent([h for h, _ in group])
            if self.progress:
                self.progress(nbytes)
        except errors.MiniDropboxError as exc:
            for h, _ in group:
                self.failed[h] = exc
        finally:
            with self.cond:
                self.inflight -= nbytes
                self.cond.notify_all()

    def _send_direct(self, chunk_hash: str, data: bytes, grant: UploadGrant) -> bool:
        """Put the chunk on ``grant.copies`` of the granted nodes, a failed node's place going
        to the next; False (go through the API) when fewer could take it or the grant is
        refused. With ``Remote.chain`` the first node passes it on to the next ones (chain
        replication); the client sends it itself only to make up for a short chain.
        Otherwise the copies are written side by side (fan-out)."""
        nodes = self.remote.nodes
        spare = [(i, u) for i, u in enumerate(grant.nodes) if nodes.reachable(u)]
        receipts: dict[int, str] = {}
        refused = False

        def put(place: tuple[int, str], copies: int = 1) -> dict[int, str]:
            nonlocal refused
            position, url = place
            self.stats.add(node_requests=1)
            try:
                if copies > 1:
                    return nodes.put_chain(url, chunk_hash, data, grant.grant, copies,
                                           position)
                return {position: nodes.put(url, chunk_hash, data, grant.grant)}
            except NodeFault:
                return {}
            except errors.InvalidGrant:
                refused = True
                return {}

        if self.remote.chain and grant.copies > 1 and spare:
            receipts.update(put(spare.pop(0), grant.copies))
            spare = [p for p in spare if p[0] not in receipts]
        while len(receipts) < grant.copies and spare and not refused:
            batch = [spare.pop(0) for _ in range(min(grant.copies - len(receipts), len(spare)))]
            if self.node_pool is None or len(batch) == 1:
                answers = [put(p) for p in batch]
            else:
                answers = [result_of(f) for f in [self.node_pool.submit(put, p)
                                                  for p in batch]]
            for answer in answers:
                receipts.update(answer)
        if refused or len(receipts) < grant.copies:
            return False
        with self.cond:
            if not self.receipts:
                self._receipts_since = time.monotonic()
            self.receipts.extend(receipts.values())
        return True


def missing_chunks(remote: Remote, hashes: Sequence[str], stats: TransferStats) -> set[str]:
    """The subset of ``hashes`` this user still has to send, counted in ``stats``."""
    missing, requests = remote.missing_chunks(hashes)
    stats.add(requests=requests)
    return missing


def missing_and_grants(remote: Remote, chunks: Sequence[tuple[str, int]],
                       stats: TransferStats) -> tuple[set[str], dict[str, UploadGrant]]:
    """The chunks (hash, size) this user still has to send, and grants to send them to the
    storage nodes directly (when the remote uses direct transfers)."""
    if remote.direct:
        try:
            missing, grants, requests = remote.missing_with_grants(chunks)
        except errors.InvalidInput:
            # A server from before direct transfers refuses the sizes: speak its protocol.
            remote.direct = False
            stats.add(requests=1)
        else:
            stats.add(requests=requests)
            return missing, grants
    return missing_chunks(remote, [h for h, _ in chunks], stats), {}


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


def check_expected(name: str, expect_hash: str | None, chunk_hashes: list[str]) -> None:
    """Raise ``LocalFileChanged`` if the file read is not the content the caller planned to
    upload (it was written again since the caller looked): committing it would record content
    the caller never saw under the hash it did."""
    if expect_hash is not None and content_hash(chunk_hashes) != expect_hash:
        raise LocalFileChanged(f"{name} changed since it was scanned; its new content is "
                               "uploaded next time.")


def _send_file(folder: LocalFolder, name: str, sender: ChunkSender, seen: set[str],
               progress: Progress | None) -> tuple[list[str], int, float]:
    """Chunk one file and send what the server lacks. Returns (hashes, size, mtime)."""
    remote, stats = sender.remote, sender.stats
    hashes: list[str] = []
    window: list[tuple[str, bytes]] = []
    window_bytes = 0

    def flush() -> None:
        nonlocal window, window_bytes
        fresh = list({h: len(data) for h, data in window if h not in seen}.items())
        missing, grants = missing_and_grants(remote, fresh, stats) if fresh else (set(), {})
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
        sender.send(to_send, grants)
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
                seen: set[str] | None = None, folder: LocalFolder = HOST_FOLDER,
                expect_hash: str | None = None) -> Entry:
    """Upload one file as a new version of ``remote_path`` and return its entry.

    ``parent_version`` is the version this content replaces: ``None`` for a new file
    (``VersionConflict`` if one exists), an int for an update (``VersionConflict`` if the
    file moved on), or ``"auto"`` for "on top of the current version, whatever it is".
    ``stats`` (if given) is added to; ``seen`` holds chunks already known to be sent.
    ``local_path`` is a name in ``folder`` (by default: a path on this machine).
    ``expect_hash``: commit only that content (``UploadItem.expect_hash``).
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
            receipts = sender.take_receipts()
        check_expected(local, expect_hash, hashes)
        request = CommitRequest(path, size, tuple(hashes), parent_version, mtime, device)
        try:
            stats.add(requests=1)
            # The nodes' receipts ride on the commit: a chunk whose receipts are refused is
            # reported missing, and the next round sends it again.
            entry = remote.commit(request, receipts)
        except errors.MissingChunk:
            if round_ == 1:
                raise
            seen.difference_update(hashes)
            continue
        stats.add(files=1, bytes_total=size)
        stats.file_sent(path)
        return entry
    raise AssertionError("unreachable")
