"""Moving file bytes between this machine and the API: delta upload and verified download.

Upload follows the protocol's delta path: cut the file with the shared FastCDC chunker, ask
``/chunks/missing`` which chunks this user still has to send, send only those (large ones with
one PUT each, several in flight; small ones packed into multipart ``/chunks/batch`` requests),
then commit the ordered hash list. Uploading the same bytes twice sends no chunk.
``upload_many`` does the same for thousands of small files with one ``missing`` call, a few
batches and one ``commit_batch`` per thousand files, so they cost tens of requests.

Memory stays flat: a big file is read in windows of ``WINDOW_BYTES``, and at most
``INFLIGHT_BYTES`` of chunk data waits for the network at once.

Download streams into a temp file next to the destination, checks size and content hash,
fsyncs and renames: nobody sees a half-written file, and a failed download leaves the old file
as it was. Names that come from the server are checked before they touch the local disk
(``safe_join``), so a hostile or buggy server cannot make ``get`` write outside its target.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx

from minidropbox.client.api import ApiClient, ServerUnreachable
from minidropbox.core import errors
from minidropbox.core.chunking import chunk_bytes, content_hash, iter_chunks
from minidropbox.core.paths import normalize_path, path_key
from minidropbox.durable import fsync_dir_best_effort

MiB = 1024 * 1024
MISSING_BATCH = 10_000  # hashes per /chunks/missing: the server's limit
COMMIT_BATCH = 1_000  # commits per /files/commit_batch: the server's limit
BATCH_BYTES = 4 * MiB  # chunk bytes per /chunks/batch request; the server takes 8
SMALL_CHUNK = 1 * MiB  # below this a chunk shares a batch request; above, its own PUT
WINDOW_BYTES = 16 * MiB  # file bytes chunked before asking which chunks are missing
INFLIGHT_BYTES = 32 * MiB  # chunk bytes queued or on the wire at once
WORKERS = 4
SMALL_FILE = 8 * MiB  # upload_many reads files up to this size whole; bigger go one by one
GROUP_BYTES = 64 * MiB  # file bytes prepared per upload_many round
READ_ATTEMPTS = 3  # tries before a file that keeps changing under us is reported
TMP_PREFIX = ".minidropbox-tmp-"
RETRIES = 4
RATE_LIMIT_PATIENCE = 300.0  # seconds a transfer may spend waiting out 429s

Progress = Callable[[int], None]
"""Called with a number of bytes each time that many more are done (from any thread)."""
ParentVersion = int | None | Literal["auto"]
T = TypeVar("T")


class LocalFileChanged(errors.MiniDropboxError):
    """The local file changed while it was being read; try again once it is settled."""

    exit_code = 5


class UnsafeName(errors.MiniDropboxError):
    """The server sent a name that is not safe to write to this disk."""

    exit_code = 2


class DownloadMismatch(errors.MiniDropboxError):
    """The downloaded bytes do not match the file's size or content hash."""

    exit_code = 7


@dataclass
class TransferStats:
    """What a transfer cost. ``chunks_sent + chunks_skipped == chunks_total``."""

    files: int = 0
    bytes_total: int = 0  # size of the files uploaded or downloaded
    bytes_sent: int = 0  # chunk bytes actually uploaded
    bytes_received: int = 0
    chunks_total: int = 0
    chunks_sent: int = 0
    chunks_skipped: int = 0  # the server had them, or they repeat inside this upload
    requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


@dataclass(frozen=True)
class UploadItem:
    """One file to upload. ``parent_version="auto"`` means "on top of whatever is there"."""

    local_path: Path
    remote_path: str
    parent_version: ParentVersion = "auto"


@dataclass(frozen=True)
class Failure:
    """One file that did not make it, and why; the others carry on."""

    local_path: str
    remote_path: str
    code: str
    message: str
    exit_code: int = 1


@dataclass
class BatchResult:
    entries: list[dict[str, Any]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    stats: TransferStats = field(default_factory=TransferStats)

    def as_dict(self) -> dict[str, Any]:
        return {"entries": self.entries, "failures": [vars(f) for f in self.failures],
                "stats": self.stats.as_dict()}


def _failure(local: Path | str, remote: str, exc: BaseException) -> Failure:
    if isinstance(exc, errors.MiniDropboxError):
        return Failure(str(local), remote, exc.code, exc.message, exc.exit_code)
    if isinstance(exc, OSError):
        return Failure(str(local), remote, "local_error", f"{local}: {exc.strerror or exc}", 1)
    raise exc


# -- pure rules ---------------------------------------------------------------------------

def split_every(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def pack_by_size(items: Iterable[T], size_of: Callable[[T], int],
                 max_bytes: int = BATCH_BYTES, max_count: int = 1000) -> list[list[T]]:
    """Group items in order so each group totals at most ``max_bytes`` (one oversized item
    makes a group of its own) and holds at most ``max_count`` items."""
    groups: list[list[T]] = []
    current: list[T] = []
    current_bytes = 0
    for item in items:
        n = size_of(item)
        if current and (current_bytes + n > max_bytes or len(current) >= max_count):
            groups.append(current)
            current, current_bytes = [], 0
        current.append(item)
        current_bytes += n
    if current:
        groups.append(current)
    return groups


def check_name(name: str) -> str:
    """Return ``name`` if it is safe as one local file name, else raise ``UnsafeName``."""
    bad = (name in ("", ".", "..") or "/" in name or "\\" in name
           or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name)
           or os.sep in name or (os.altsep is not None and os.altsep in name)
           # "C:x" is an ordinary name on POSIX but means "drive C" on Windows.
           or (os.name == "nt" and ":" in name))
    if bad:
        raise UnsafeName(f"Refusing to write a file named {name!r} from the server.")
    return name


def safe_join(root: Path, relative: str) -> Path:
    """``root`` joined with a ``/``-separated relative path from the server, every segment
    checked: never absolute, never ``..``, never a backslash or drive letter."""
    if relative.startswith("/"):
        raise UnsafeName(f"Refusing the absolute path {relative!r} from the server.")
    return root.joinpath(*(check_name(part) for part in relative.split("/")))


def relative_remote(path: str, folder: str) -> str:
    """The part of remote ``path`` below remote ``folder`` ("" for the folder itself).

    Compared segment by segment (case-insensitively, as the server does) rather than by
    string prefix, so ``/Docsx`` is not inside ``/Docs`` and ``/Docs//x`` keeps its empty
    segment for ``safe_join`` to refuse.
    """
    parts = path.split("/")[1:] if path != "/" else []
    prefix = folder.split("/")[1:] if folder != "/" else []
    head = parts[: len(prefix)]
    if (not path.startswith("/") or len(parts) < len(prefix)
            or path_key("/".join(head)) != path_key("/".join(prefix))):
        raise UnsafeName(f"The server listed {path!r}, which is not inside {folder!r}.")
    return "/".join(parts[len(prefix) :])


def ensure_inside(root: Path, path: Path) -> None:
    """Refuse ``path`` if, with symlinks resolved, it lies outside ``root``."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise UnsafeName(f"Refusing to write {path}: it resolves outside {root}.")


# -- small API helpers --------------------------------------------------------------------

def _retrying(call: Callable[..., T], *args: Any, idempotent: bool = True, **kwargs: Any) -> T:
    """Run a request, waiting out rate limits and retrying brief outages.

    A 429 means the server did nothing, so any request may wait (``Retry-After``, up to
    ``RATE_LIMIT_PATIENCE`` seconds in all): a big ``get`` can outrun the per-user rate cap
    and should slow down, not fail. Unreachable or 503 is retried only for idempotent calls.
    """
    waited = 0.0
    attempt = 0
    while True:
        try:
            return call(*args, **kwargs)
        except errors.TooManyRequests as exc:
            pause = float(min(max(exc.retry_after, 1), 30))
            if waited + pause > RATE_LIMIT_PATIENCE:
                raise
            time.sleep(pause)
            waited += pause
        except (ServerUnreachable, errors.StorageUnavailable):
            attempt += 1
            if not idempotent or attempt >= RETRIES:
                raise
            time.sleep(0.5 * 2**attempt)


def get_metadata(api: ApiClient, path: str) -> dict[str, Any]:
    """The entry at ``path``; the root is always a folder."""
    path = normalize_path(path)
    if path == "/":
        return {"path": "/", "name": "", "type": "folder", "size": None, "version": None,
                "modified": None, "content_hash": None}
    entry: dict[str, Any] = _retrying(api.request_json, "GET", "/api/v1/files/metadata",
                                      params={"path": path})
    return entry


def find_entry(api: ApiClient, path: str) -> dict[str, Any] | None:
    try:
        return get_metadata(api, path)
    except errors.NotFound:
        return None


def list_folder(api: ApiClient, path: str, recursive: bool = False) -> Iterator[dict[str, Any]]:
    """Every entry in a remote folder, following the server's pages."""
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"path": normalize_path(path),
                                  "recursive": "true" if recursive else "false"}
        if cursor:
            params["cursor"] = cursor
        page = _retrying(api.request_json, "GET", "/api/v1/files/list", params=params)
        yield from page["entries"]
        cursor = page.get("cursor")
        if not cursor:
            return


def _missing(api: ApiClient, hashes: Sequence[str], stats: TransferStats) -> set[str]:
    """The subset of ``hashes`` this user still has to send."""
    wanted = set(hashes)
    missing: set[str] = set()
    for part in split_every(list(hashes), MISSING_BATCH):
        body = _retrying(api.request_json, "POST", "/api/v1/chunks/missing",
                         json={"hashes": list(part)})
        stats.add(requests=1)
        missing.update(h for h in body["missing"] if h in wanted)
    return missing


# -- sending chunks -----------------------------------------------------------------------

class ChunkSender:
    """Sends chunks with several requests in flight and a cap on the bytes waiting.

    Errors are kept per hash rather than raised from the worker, so ``upload_many`` can fail
    only the files that needed a chunk that could not be stored.
    """

    def __init__(self, api: ApiClient, stats: TransferStats, progress: Progress | None = None,
                 workers: int = WORKERS, inflight_limit: int = INFLIGHT_BYTES) -> None:
        self.api = api
        self.stats = stats
        self.progress = progress
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="minidropbox-upload")
        self.limit = inflight_limit
        self.inflight = 0
        self.cond = threading.Condition()
        self.futures: list[Future[None]] = []
        self.failed: dict[str, errors.MiniDropboxError] = {}

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ChunkSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, chunks: Sequence[tuple[str, bytes]]) -> None:
        """Queue chunks for upload; blocks while too many bytes are already waiting."""
        # Refresh the token here, in one thread, so workers never race to spend the
        # refresh token at the same moment.
        self.api.access_token()
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
        future = self.pool.submit(self._upload, group, nbytes)
        self.futures.append(future)

    def _upload(self, group: list[tuple[str, bytes]], nbytes: int) -> None:
        try:
            if len(group) == 1:
                h, data = group[0]
                _retrying(self.api.request, "PUT", f"/api/v1/chunks/{h}", content=data,
                          headers={"Content-Type": "application/octet-stream"})
            else:
                files = [(h, (h, data, "application/octet-stream")) for h, data in group]
                _retrying(self.api.request, "POST", "/api/v1/chunks/batch", files=files)
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


def _stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _check_unchanged(path: Path, before: os.stat_result, after: os.stat_result,
                     read: int) -> None:
    """Raise ``LocalFileChanged`` unless the file is the one, and as long as, we started on."""
    try:
        now = os.stat(path)
    except FileNotFoundError as exc:
        raise LocalFileChanged(f"{path} disappeared while it was being read.") from exc
    if read != before.st_size or not (_stat_key(before) == _stat_key(after) == _stat_key(now)):
        raise LocalFileChanged(f"{path} changed while it was being read; try again once it "
                               "is no longer being written.")


def _send_file(path: Path, sender: ChunkSender, seen: set[str],
               progress: Progress | None) -> tuple[list[str], int, float]:
    """Chunk one file and send what the server lacks. Returns (hashes, size, mtime)."""
    api, stats = sender.api, sender.stats
    hashes: list[str] = []
    window: list[tuple[str, bytes]] = []
    window_bytes = 0

    def flush() -> None:
        nonlocal window, window_bytes
        fresh = list(dict.fromkeys(h for h, _ in window if h not in seen))
        missing = _missing(api, fresh, stats) if fresh else set()
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

    with open(path, "rb") as fh:
        before = os.fstat(fh.fileno())
        size = 0
        for ref, data in iter_chunks(fh):
            hashes.append(ref.hash)
            window.append((ref.hash, bytes(data)))  # the view dies with the next chunk
            window_bytes += ref.length
            size += ref.length
            if window_bytes >= WINDOW_BYTES:
                flush()
        flush()
        after = os.fstat(fh.fileno())
    stats.add(chunks_total=len(hashes))
    _check_unchanged(path, before, after, size)
    sender.wait()
    return hashes, size, before.st_mtime


def _commit(api: ApiClient, commit: dict[str, Any], stats: TransferStats) -> dict[str, Any]:
    stats.add(requests=1)
    entry: dict[str, Any] = _retrying(api.request_json, "POST", "/api/v1/files/commit",
                                      json=commit, idempotent=False)
    return entry


def upload_file(api: ApiClient, local_path: Path | str, remote_path: str,
                parent_version: ParentVersion = None, progress: Progress | None = None, *,
                stats: TransferStats | None = None, device: str | None = None,
                _seen: set[str] | None = None) -> dict[str, Any]:
    """Upload one file as a new version of ``remote_path`` and return its entry.

    ``parent_version`` is the version this content replaces: ``None`` for a new file (409 if
    one exists), an int for an update (409 if the file moved on), or ``"auto"`` for "on top of
    the current version, whatever it is". ``stats`` (if given) is added to.
    """
    remote = normalize_path(remote_path)
    local = Path(local_path)
    stats = stats if stats is not None else TransferStats()
    if parent_version == "auto":
        current = find_entry(api, remote)
        stats.add(requests=1)
        if current is not None and current["type"] != "file":
            raise errors.AlreadyExists(f"{remote} is a folder on the server.")
        parent_version = current["version"] if current else None
    seen = _seen if _seen is not None else set()
    # Two rounds: a chunk can vanish between `missing` and the commit (garbage collected,
    # or its last intact copy lost); the server then answers missing_chunk and one more
    # round sends it again.
    for round_ in range(2):
        with ChunkSender(api, stats, progress) as sender:
            for attempt in range(READ_ATTEMPTS):
                try:
                    hashes, size, mtime = _send_file(local, sender, seen, progress)
                    break
                except LocalFileChanged:
                    if attempt == READ_ATTEMPTS - 1:
                        raise
                    time.sleep(0.2 * (attempt + 1))
        commit: dict[str, Any] = {"path": remote, "size": size, "chunks": hashes,
                                  "parent_version": parent_version, "mtime": mtime}
        if device:
            commit["device"] = device
        try:
            entry = _commit(api, commit, stats)
        except errors.MissingChunk:
            if round_ == 1:
                raise
            seen.difference_update(hashes)
            continue
        stats.add(files=1, bytes_total=size)
        return entry
    raise AssertionError("unreachable")


# -- many small files ---------------------------------------------------------------------

@dataclass
class _Prepared:
    item: UploadItem
    remote: str
    size: int
    mtime: float
    chunks: list[tuple[str, bytes]]


def _read_small(item: UploadItem) -> _Prepared:
    """Read and chunk a small file whole, retrying if it changes under us."""
    remote = normalize_path(item.remote_path)
    for attempt in range(READ_ATTEMPTS):
        with open(item.local_path, "rb") as fh:
            before = os.fstat(fh.fileno())
            data = fh.read()
            after = os.fstat(fh.fileno())
        try:
            _check_unchanged(item.local_path, before, after, len(data))
        except LocalFileChanged:
            if attempt == READ_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
            continue
        chunks = [(ref.hash, piece) for ref, piece in chunk_bytes(data)]
        return _Prepared(item, remote, len(data), before.st_mtime, chunks)
    raise AssertionError("unreachable")


def _commit_group(api: ApiClient, ready: list[_Prepared], result: BatchResult,
                  device: str | None) -> None:
    """Commit prepared files 1,000 per request; "auto" parents are resolved by retrying the
    ones that conflict on top of the version the server names (or reports on request)."""
    stats = result.stats
    parents: dict[int, int | None] = {}
    for i, prep in enumerate(ready):
        pv = prep.item.parent_version
        parents[i] = None if pv == "auto" else pv
    pending = list(range(len(ready)))
    for round_ in range(2):
        retry: list[int] = []
        for part in split_every(pending, COMMIT_BATCH):
            commits = []
            for i in part:
                prep = ready[i]
                commit: dict[str, Any] = {
                    "path": prep.remote, "size": prep.size, "chunks": [h for h, _ in prep.chunks],
                    "parent_version": parents[i], "mtime": prep.mtime}
                if device:
                    commit["device"] = device
                commits.append(commit)
            body = _retrying(api.request_json, "POST", "/api/v1/files/commit_batch",
                             json={"commits": commits}, idempotent=False)
            stats.add(requests=1)
            for i, answer in zip(part, body["results"], strict=True):
                prep = ready[i]
                if answer.get("ok"):
                    result.entries.append(answer["entry"])
                    stats.add(files=1, bytes_total=prep.size)
                    continue
                err = answer.get("error") or {}
                if (err.get("code") == "version_conflict" and round_ == 0
                        and prep.item.parent_version == "auto"):
                    current = err.get("current_version")
                    if current is None:
                        found = find_entry(api, prep.remote)
                        stats.add(requests=1)
                        current = found["version"] if found else None
                    parents[i] = current
                    retry.append(i)
                    continue
                exit_code = 5 if err.get("code") in ("version_conflict", "already_exists") else 1
                result.failures.append(Failure(str(prep.item.local_path), prep.remote,
                                               err.get("code", "error"),
                                               err.get("message", "commit failed"), exit_code))
        pending = retry
        if not pending:
            return


def _upload_group(api: ApiClient, group: list[_Prepared], result: BatchResult,
                  seen: set[str], progress: Progress | None, device: str | None) -> None:
    stats = result.stats
    unique: dict[str, bytes] = {}
    for prep in group:
        for h, data in prep.chunks:
            if h not in seen:
                unique.setdefault(h, data)
    missing = _missing(api, list(unique), stats) if unique else set()
    to_send = [(h, data) for h, data in unique.items() if h in missing]
    total = sum(len(p.chunks) for p in group)
    stats.add(chunks_total=total, chunks_skipped=total - len(to_send))
    with ChunkSender(api, stats) as sender:
        sender.send(to_send)
        # The files that needed a chunk that failed are reported below, one by one.
        with contextlib.suppress(errors.MiniDropboxError):
            sender.wait()
    seen.update(h for h, _ in to_send if h not in sender.failed)
    seen.update(h for h in unique if h not in missing)
    ready = []
    for prep in group:
        bad = next((sender.failed[h] for h, _ in prep.chunks if h in sender.failed), None)
        if bad is None:
            ready.append(prep)
        else:
            result.failures.append(_failure(prep.item.local_path, prep.remote, bad))
    try:
        _commit_group(api, ready, result, device)
    finally:
        if progress:
            progress(sum(p.size for p in group))


def upload_many(api: ApiClient, pairs: Iterable[UploadItem | tuple[Path | str, str]],
                progress: Progress | None = None, *, device: str | None = None,
                stats: TransferStats | None = None) -> BatchResult:
    """Upload many files with few requests; a file that fails is reported, not fatal.

    Small files are read whole, up to ``GROUP_BYTES`` or 1,000 files per round; each round is
    one ``missing`` call, chunk batches of about 4 MiB, and one ``commit_batch``. Files over
    ``SMALL_FILE`` go through ``upload_file`` one at a time. Tuples mean ``parent="auto"``.
    """
    result = BatchResult(stats=stats if stats is not None else TransferStats())
    seen: set[str] = set()
    big: list[UploadItem] = []
    group: list[_Prepared] = []
    group_bytes = 0
    for pair in pairs:
        item = pair if isinstance(pair, UploadItem) else UploadItem(Path(pair[0]), pair[1])
        try:
            if os.stat(item.local_path).st_size > SMALL_FILE:
                big.append(item)
                continue
            prep = _read_small(item)
        except (OSError, errors.MiniDropboxError) as exc:
            result.failures.append(_failure(item.local_path, item.remote_path, exc))
            continue
        group.append(prep)
        group_bytes += prep.size
        if group_bytes >= GROUP_BYTES or len(group) >= COMMIT_BATCH:
            _upload_group(api, group, result, seen, progress, device)
            group, group_bytes = [], 0
    if group:
        _upload_group(api, group, result, seen, progress, device)
    for item in big:
        try:
            result.entries.append(upload_file(api, item.local_path, item.remote_path,
                                              item.parent_version, progress,
                                              stats=result.stats, device=device, _seen=seen))
        except (OSError, errors.MiniDropboxError) as exc:
            result.failures.append(_failure(item.local_path, item.remote_path, exc))
    return result


# -- download -----------------------------------------------------------------------------

class _BlockReader:
    """``readinto`` over an iterator of byte blocks, so the chunker can cut a download as it
    arrives (one pass over the bytes instead of writing them and reading them back)."""

    def __init__(self, blocks: Iterator[bytes], progress: Progress | None) -> None:
        self.blocks = blocks
        self.progress = progress
        self.pending = memoryview(b"")
        self.total = 0

    def readinto(self, buffer: memoryview, /) -> int:
        while not self.pending:
            block = next(self.blocks, None)
            if block is None:
                return 0
            self.pending = memoryview(block)
            self.total += len(block)
            if self.progress:
                self.progress(len(block))
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


def _fetch(api: ApiClient, params: dict[str, Any], tmp: Path, progress: Progress | None,
           stats: TransferStats, verify: bool) -> tuple[int, httpx.Headers, str | None]:
    """Stream a file's bytes into ``tmp`` (from the start: a retry rewrites it) and fsync.

    Returns the bytes written, the headers and, with ``verify``, the content hash of what was
    written: the bytes are cut into chunks and hashed on their way to the file."""
    hashes: list[str] = []
    with open(tmp, "wb") as out, api.stream("GET", "/api/v1/files/content",
                                            params=params) as response:
        stats.add(requests=1)
        reader = _BlockReader(response.iter_bytes(), progress)
        if verify:
            for ref, data in iter_chunks(reader):
                out.write(data)
                hashes.append(ref.hash)
        else:
            for block in reader.blocks:
                out.write(block)
                reader.total += len(block)
                if progress:
                    progress(len(block))
        out.flush()
        os.fsync(out.fileno())
    return reader.total, response.headers, content_hash(hashes) if verify else None


def download_file(api: ApiClient, remote_path: str, local_path: Path | str,
                  version: int | None = None, progress: Progress | None = None, *,
                  entry: dict[str, Any] | None = None, stats: TransferStats | None = None,
                  verify: bool = True) -> dict[str, Any]:
    """Download a file (its current version, or ``version``) to ``local_path``.

    The bytes go to ``.minidropbox-tmp-*`` in the destination folder, are checked against
    the size and (with ``verify``) the content hash, fsynced, and renamed into place with the
    version's mtime. Returns the entry that was downloaded.
    """
    remote = normalize_path(remote_path)
    stats = stats if stats is not None else TransferStats()
    if entry is None:
        entry = get_metadata(api, remote)
        stats.add(requests=1)
    if entry["type"] != "file":
        raise errors.InvalidInput(f"{remote} is a folder; use `get` on it to fetch its files.")
    target = Path(local_path)
    if target.is_dir():
        raise errors.AlreadyExists(f"{target} is a folder here; it was not replaced.")
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    # Pin the version from the entry so the bytes and the metadata we check them against
    # agree even if someone commits a new version meanwhile.
    wanted = version if version is not None else entry.get("version")
    params: dict[str, Any] = {"path": remote}
    if wanted is not None:
        params["version"] = wanted
    tmp = folder / f"{TMP_PREFIX}{secrets.token_hex(8)}"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        written, headers, got_hash = _retrying(_fetch, api, params, tmp, progress, stats,
                                               verify)
        length = headers.get("content-length")
        etag = headers.get("etag", "").strip('"').removeprefix('W/"')
        last_modified = headers.get("last-modified")
        expected = int(length) if length is not None else None
        if version is None and entry.get("size") is not None:
            expected = entry["size"]
        if expected is not None and written != expected:
            raise DownloadMismatch(f"{remote}: received {written} bytes, expected {expected}.")
        want_hash = etag or (entry.get("content_hash") if version is None else None)
        if verify and want_hash and got_hash != want_hash:
            raise DownloadMismatch(f"{remote}: the downloaded bytes do not match the "
                                   "file's content hash.")
        mtime = entry.get("modified") if version is None else None
        if mtime is None and last_modified:
            mtime = parsedate_to_datetime(last_modified).timestamp()
        if mtime is not None:
            os.utime(tmp, (time.time(), float(mtime)))
        os.replace(tmp, target)
        fsync_dir_best_effort(folder)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    stats.add(files=1, bytes_total=written, bytes_received=written)
    return entry


# -- folders ------------------------------------------------------------------------------

@dataclass
class PutPlan:
    """What ``put`` will do: folders to create, files to upload, and what was skipped."""

    folders: list[str] = field(default_factory=list)
    items: list[UploadItem] = field(default_factory=list)
    skipped: list[Failure] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        total = 0
        for item in self.items:
            with contextlib.suppress(OSError):
                total += item.local_path.stat().st_size
        return total


def _walk_local(source: Path, base: str, plan: PutPlan) -> None:
    """Add every file under ``source`` to ``plan``, as ``base/<relative path>``."""
    for dirpath, dirnames, filenames in os.walk(source, followlinks=False):
        folder = Path(dirpath)
        rel = folder.relative_to(source).as_posix()
        remote_dir = base if rel == "." else f"{base.rstrip('/')}/{rel}"
        # Symlinked folders are not followed: they could loop, or lead out of the tree.
        dirnames[:] = sorted(d for d in dirnames if not (folder / d).is_symlink())
        files = sorted(f for f in filenames if not f.startswith(TMP_PREFIX))
        if not dirnames and not files:
            plan.folders.append(normalize_path(remote_dir))
        for name in files:
            local = folder / name
            remote = f"{remote_dir.rstrip('/')}/{name}"
            if not local.is_file():
                plan.skipped.append(Failure(str(local), remote, "not_a_file",
                                            f"{local} is not a regular file; skipped.", 1))
                continue
            try:
                plan.items.append(UploadItem(local, normalize_path(remote)))
            except errors.InvalidPath as exc:
                plan.skipped.append(_failure(local, remote, exc))


def plan_put(api: ApiClient, sources: Sequence[Path | str], remote: str | None) -> PutPlan:
    """Decide where each local file goes, the way ``cp -r`` would.

    Into ``remote`` when it is an existing folder, ends with ``/``, is the root, or several
    sources are given; otherwise a single source becomes ``remote`` itself.
    """
    raw = remote or "/"
    dest = normalize_path(raw)
    dest_entry = find_entry(api, dest)
    is_folder = dest_entry is not None and dest_entry["type"] == "folder"
    if len(sources) > 1 and dest_entry is not None and not is_folder:
        raise errors.AlreadyExists(f"{dest} is a file; several sources need a folder.")
    into = is_folder or raw.endswith("/") or len(sources) > 1
    plan = PutPlan()
    for source in map(Path, sources):
        if not source.exists():
            raise errors.NotFound(f"No such local file or folder: {source}")
        name = source.resolve().name
        base = f"{dest.rstrip('/')}/{name}" if into and name else dest
        if source.is_dir():
            _walk_local(source, base, plan)
        elif base == "/":
            raise errors.InvalidPath("A file cannot replace the root folder.")
        else:
            plan.items.append(UploadItem(source, normalize_path(base)))
    return plan


def run_put(api: ApiClient, plan: PutPlan, progress: Progress | None = None, *,
            device: str | None = None) -> BatchResult:
    """Create the plan's folders and upload its files on top of whatever is there."""
    result = BatchResult(failures=list(plan.skipped))
    for folder in plan.folders:
        if folder == "/":
            continue
        try:
            _retrying(api.request_json, "POST", "/api/v1/files/folder", json={"path": folder})
            result.stats.add(requests=1)
        except errors.MiniDropboxError as exc:
            result.failures.append(_failure("", folder, exc))
    many = upload_many(api, plan.items, progress, device=device, stats=result.stats)
    result.entries.extend(many.entries)
    result.failures.extend(many.failures)
    return result


@dataclass
class GetPlan:
    """What ``get`` will do: the local root, folders to create, files to download."""

    remote: str
    root: Path
    folders: list[Path] = field(default_factory=list)
    files: list[tuple[dict[str, Any], Path]] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(entry.get("size") or 0 for entry, _ in self.files)


def plan_get(api: ApiClient, remote: str, local: Path | str | None = None) -> GetPlan:
    """Decide where each remote file goes, the way ``cp -r`` would; server names are checked."""
    remote = normalize_path(remote)
    entry = get_metadata(api, remote)
    target = Path(local) if local is not None else None
    if entry["type"] == "file":
        name = check_name(entry.get("name") or remote.rsplit("/", 1)[-1])
        if target is None:
            target = Path.cwd() / name
        elif target.is_dir():
            target = target / name
        return GetPlan(remote, target.parent, files=[(entry, target)])
    if remote == "/":
        root = target if target is not None else Path.cwd()
    else:
        name = check_name(entry.get("name") or remote.rsplit("/", 1)[-1])
        if target is None:
            root = Path.cwd() / name
        elif target.is_dir():
            root = target / name
        else:
            root = target
    plan = GetPlan(remote, root, folders=[root])
    for child in list_folder(api, remote, recursive=True):
        rel = relative_remote(child["path"], remote)
        if not rel:
            continue
        dest = safe_join(root, rel)
        if child["type"] == "folder":
            plan.folders.append(dest)
        else:
            plan.files.append((child, dest))
    return plan


def run_get(api: ApiClient, plan: GetPlan, progress: Progress | None = None, *,
            version: int | None = None, workers: int = WORKERS) -> BatchResult:
    """Create the plan's folders and download its files, several at a time."""
    result = BatchResult()
    for folder in plan.folders:
        try:
            ensure_inside(plan.root, folder)
            folder.mkdir(parents=True, exist_ok=True)
        except (OSError, errors.MiniDropboxError) as exc:
            result.failures.append(_failure(folder, plan.remote, exc))

    def fetch(entry: dict[str, Any], dest: Path) -> dict[str, Any]:
        ensure_inside(plan.root, dest.parent)
        return download_file(api, entry["path"], dest, version, progress, entry=entry,
                             stats=result.stats)

    api.access_token()  # refresh once here rather than racing in the workers
    with ThreadPoolExecutor(workers, thread_name_prefix="minidropbox-download") as pool:
        futures = [(pool.submit(fetch, entry, dest), entry, dest) for entry, dest in plan.files]
        for future, entry, dest in futures:
            try:
                result.entries.append(future.result())
            except (OSError, errors.MiniDropboxError) as exc:
                result.failures.append(_failure(dest, entry["path"], exc))
    return result
