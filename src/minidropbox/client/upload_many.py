"""Many small files with few requests: one ``missing`` call, a few chunk batches and one
``commit_batch`` per round of up to 1,000 files, so thousands of files cost tens of requests.

A file that fails is collected as a ``Failure`` in the result, never raised: the others carry
on. Files over ``SMALL_FILE`` go through ``upload_file`` one at a time.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from minidropbox.client.batch import (
    BatchResult,
    Progress,
    TransferStats,
    UploadItem,
    failure,
    split_every,
)
from minidropbox.client.localfolder import LocalFolder
from minidropbox.client.remote import Remote
from minidropbox.client.upload import (
    HOST_FOLDER,
    READ_ATTEMPTS,
    RECEIPTS_PER_COMMIT,
    WORKERS,
    ChunkSender,
    LocalFileChanged,
    check_expected,
    check_unchanged,
    missing_and_grants,
    upload_file,
)
from minidropbox.client.values import CommitRequest, Entry
from minidropbox.core import errors
from minidropbox.core.chunking import chunk_bytes
from minidropbox.core.paths import normalize_path

MiB = 1024 * 1024
COMMIT_BATCH = 1_000  # commits per /files/commit_batch: the server's limit
SMALL_FILE = 8 * MiB  # read whole; bigger files go one by one
GROUP_BYTES = 64 * MiB  # file bytes prepared per round


@dataclass
class _Prepared:
    item: UploadItem
    remote: str
    size: int
    mtime: float
    chunks: list[tuple[str, bytes]]


def _read_small(folder: LocalFolder, item: UploadItem) -> _Prepared:
    """Read and chunk a small file whole, retrying if it changes under us."""
    remote = normalize_path(item.remote_path)
    name = str(item.local_path)
    for attempt in range(READ_ATTEMPTS):
        with folder.open_read(name) as fh:
            before = fh.info()
            data = fh.read()
            after = fh.info()
        try:
            check_unchanged(folder, name, before, after, len(data))
        except LocalFileChanged:
            if attempt == READ_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
            continue
        chunks = [(ref.hash, piece) for ref, piece in chunk_bytes(data)]
        check_expected(name, item.expect_hash, [h for h, _ in chunks])
        return _Prepared(item, remote, len(data), before.mtime_ns / 1e9, chunks)
    raise AssertionError("unreachable")


def _commit_group(remote: Remote, ready: list[_Prepared], result: BatchResult,
                  device: str | None, receipts: list[str]) -> None:
    """Commit prepared files 1,000 per request; "auto" parents are resolved by retrying the
    ones that conflict on top of the version the server names (or reports on request).
    The storage nodes' ``receipts`` ride on the first request."""
    stats = result.stats
    parents: dict[int, int | None] = {}
    for i, prep in enumerate(ready):
        pv = prep.item.parent_version
        parents[i] = None if pv == "auto" else pv
    pending = list(range(len(ready)))
    for round_ in range(2):
        retry: list[int] = []
        for part in split_every(pending, COMMIT_BATCH):
            requests = [CommitRequest(ready[i].remote, ready[i].size,
                                      tuple(h for h, _ in ready[i].chunks), parents[i],
                                      ready[i].mtime, device) for i in part]
            answers = remote.commit_batch(requests, receipts)
            receipts = []
            stats.add(requests=1)
            for i, answer in zip(part, answers, strict=True):
                prep = ready[i]
                if isinstance(answer, Entry):
                    result.entries.append(answer)
                    stats.add(files=1, bytes_total=prep.size)
                    continue
                if (isinstance(answer, errors.VersionConflict) and round_ == 0
                        and prep.item.parent_version == "auto"):
                    current = answer.details.get("current_version")
                    if current is None:
                        found = remote.find(prep.remote)
                        stats.add(requests=1)
                        current = found.version if found else None
                    parents[i] = current
                    retry.append(i)
                    continue
                result.failures.append(failure(prep.item.local_path, prep.remote, answer))
        pending = retry
        if not pending:
            return


def _upload_group(remote: Remote, group: list[_Prepared], result: BatchResult,
                  seen: set[str], progress: Progress | None, device: str | None,
                  workers: int) -> None:
    stats = result.stats
    unique: dict[str, bytes] = {}
    for prep in group:
        for h, data in prep.chunks:
            if h not in seen:
                unique.setdefault(h, data)
    missing, grants = missing_and_grants(
        remote, [(h, len(data)) for h, data in unique.items()], stats) if unique else (set(), {})
    to_send = [(h, data) for h, data in unique.items() if h in missing]
    total = sum(len(p.chunks) for p in group)
    stats.add(chunks_total=total, chunks_skipped=total - len(to_send))
    # Progress as the chunks go: the bytes the server already has at once, the others with
    # each request; a file counts as sent with the last of its chunks.
    if progress:
        progress(sum(p.size for p in group) - sum(len(data) for _, data in to_send))
    on_sent = _files_sent_tracker(group, {h for h, _ in to_send}, stats)
    with ChunkSender(remote, stats, progress, workers=workers, on_sent=on_sent) as sender:
        sender.send(to_send, grants)
        # The files that needed a chunk that failed are reported below, one by one.
        with contextlib.suppress(errors.MiniDropboxError):
            sender.wait()
        receipts = sender.take_receipts()
    if len(receipts) > RECEIPTS_PER_COMMIT:
        _, requests = remote.present_receipts(receipts)
        stats.add(requests=requests)
        receipts = []
    seen.update(h for h, _ in to_send if h not in sender.failed)
    seen.update(h for h in unique if h not in missing)
    ready = []
    for prep in group:
        bad = next((sender.failed[h] for h, _ in prep.chunks if h in sender.failed), None)
        if bad is None:
            ready.append(prep)
        else:
            result.failures.append(failure(prep.item.local_path, prep.remote, bad))
    _commit_group(remote, ready, result, device, receipts)


def _files_sent_tracker(group: list[_Prepared], sending: set[str], stats: TransferStats
                        ) -> Callable[[list[str]], None]:
    """Counts each file of ``group`` as sent (``stats.file_sent``) once none of its chunks
    in ``sending`` is left: at once for those with none, else from the sender's threads."""
    left: list[set[str]] = []
    needed_by: dict[str, list[int]] = {}
    for i, prep in enumerate(group):
        mine = {h for h, _ in prep.chunks if h in sending}
        left.append(mine)
        for h in mine:
            needed_by.setdefault(h, []).append(i)
        if not mine:
            stats.file_sent(prep.remote)
    lock = threading.Lock()

    def sent(hashes: list[str]) -> None:
        done: list[str] = []
        with lock:
            for h in hashes:
                for i in needed_by.pop(h, ()):
                    left[i].discard(h)
                    if not left[i]:
                        done.append(group[i].remote)
        for name in done:
            stats.file_sent(name)

    return sent


def upload_many(remote: Remote, pairs: Iterable[UploadItem | tuple[Path | str, str]],
                progress: Progress | None = None, *, device: str | None = None,
                stats: TransferStats | None = None,
                folder: LocalFolder = HOST_FOLDER, workers: int = WORKERS) -> BatchResult:
    """Upload many files with few requests; a file that fails is reported, not fatal.

    Small files are read whole, up to ``GROUP_BYTES`` or 1,000 files per round; each round is
    one ``missing`` call, chunk batches of about 4 MiB, and one ``commit_batch``. Files over
    ``SMALL_FILE`` go through ``upload_file`` one at a time. Tuples mean ``parent="auto"``.
    Local paths are names in ``folder`` (by default: paths on this machine). ``workers``:
    chunk requests in flight (1: all in this thread, in order).
    """
    result = BatchResult(stats=stats if stats is not None else TransferStats())
    seen: set[str] = set()
    big: list[UploadItem] = []
    group: list[_Prepared] = []
    group_bytes = 0
    for pair in pairs:
        item = pair if isinstance(pair, UploadItem) else UploadItem(Path(pair[0]), pair[1])
        result.stats.started(item.remote_path)
        try:
            if folder.info(str(item.local_path)).size > SMALL_FILE:
                big.append(item)
                continue
            prep = _read_small(folder, item)
        except (OSError, errors.MiniDropboxError) as exc:
            result.failures.append(failure(item.local_path, item.remote_path, exc))
            continue
        group.append(prep)
        group_bytes += prep.size
        if group_bytes >= GROUP_BYTES or len(group) >= COMMIT_BATCH:
            _upload_group(remote, group, result, seen, progress, device, workers)
            group, group_bytes = [], 0
    if group:
        _upload_group(remote, group, result, seen, progress, device, workers)
    for item in big:
        result.stats.started(item.remote_path)
        try:
            result.entries.append(upload_file(remote, item.local_path, item.remote_path,
                                              item.parent_version, progress,
                                              stats=result.stats, device=device, seen=seen,
                                              folder=folder, expect_hash=item.expect_hash))
        except (OSError, errors.MiniDropboxError) as exc:
            result.failures.append(failure(item.local_path, item.remote_path, exc))
    return result
