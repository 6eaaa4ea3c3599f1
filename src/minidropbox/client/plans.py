"""``put`` and ``get`` of files and folders, the way ``cp -r`` would: first a plan (what goes
where, checked), then a run that carries it out and collects per-file failures.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from pathlib import Path

from minidropbox.client.batch import (
    BatchResult,
    Failure,
    NotARegularFile,
    Progress,
    TransferStats,
    UploadItem,
    failure,
    stoppable,
)
from minidropbox.client.download import download_file
from minidropbox.client.excludes import Excludes
from minidropbox.client.interruptible import result_of
from minidropbox.client.local_copy import LocalCopy, LocalEdits, compare_local
from minidropbox.client.localpaths import (
    TMP_PREFIX,
    check_name,
    ensure_inside,
    relative_remote,
    safe_join,
)
from minidropbox.client.remote import Remote
from minidropbox.client.upload import WORKERS
from minidropbox.client.upload_many import upload_many
from minidropbox.client.values import Entry
from minidropbox.core import errors
from minidropbox.core.paths import name_of, normalize_path, path_key

STOP_GRACE = 5.0  # seconds Ctrl-C waits for running downloads to remove their temp files


@dataclass
class PutPlan:
    """What ``put`` will do: folders to create, files to upload, and what was skipped."""

    folders: list[str] = field(default_factory=list)
    items: list[UploadItem] = field(default_factory=list)
    skipped: list[Failure] = field(default_factory=list)
    existing: dict[str, Entry] = field(default_factory=dict)  # path_key -> the file there now

    @property
    def total_bytes(self) -> int:
        total = 0
        for item in self.items:
            with contextlib.suppress(OSError):
                total += Path(item.local_path).stat().st_size
        return total


def _walk_local(source: Path, base: str, plan: PutPlan, exclude: Excludes) -> None:
    """Add every file under ``source`` to ``plan``, as ``base/<relative path>``, except
    those ``exclude`` leaves out."""
    for dirpath, dirnames, filenames in os.walk(source, followlinks=False):
        folder = Path(dirpath)
        rel = folder.relative_to(source).as_posix()
        remote_dir = base if rel == "." else f"{base.rstrip('/')}/{rel}"
        inner = "" if rel == "." else rel + "/"
        # Symlinked folders are not followed: they could loop, or lead out of the tree.
        dirnames[:] = sorted(d for d in dirnames if not (folder / d).is_symlink()
                             and not exclude.excluded(inner + d, is_dir=True))
        files = sorted(f for f in filenames if not f.startswith(TMP_PREFIX)
                       and not exclude.excluded(inner + f))
        if not dirnames and not files:
            plan.folders.append(normalize_path(remote_dir))
        for name in files:
            local = folder / name
            remote = f"{remote_dir.rstrip('/')}/{name}"
            if not local.is_file():
                plan.skipped.append(Failure(str(local), remote, NotARegularFile(
                    f"{local} is not a regular file; skipped.")))
                continue
            try:
                plan.items.append(UploadItem(local, normalize_path(remote)))
            except errors.InvalidPath as exc:
                plan.skipped.append(failure(local, remote, exc))


def plan_put(remote: Remote, sources: Sequence[Path | str], dest: str | None,
             exclude: Excludes | None = None) -> PutPlan:
    """Decide where each local file goes, the way ``cp -r`` would (a folder's files that
    ``exclude`` names are left out).

    Into ``dest`` when it is an existing folder, ends with ``/``, is the root, or several
    sources are given; otherwise a single source becomes ``dest`` itself.
    """
    raw = dest or "/"
    target = normalize_path(raw)
    target_entry = remote.find(target)
    is_folder = target_entry is not None and target_entry.is_folder
    if len(sources) > 1 and target_entry is not None and not is_folder:
        raise errors.AlreadyExists(f"{target} is a file; several sources need a folder.")
    into = is_folder or raw.endswith("/") or len(sources) > 1
    plan = PutPlan()
    folder_bases: list[str] = []
    for source in map(Path, sources):
        if not source.exists():
            raise errors.NotFound(f"No such local file or folder: {source}")
        name = source.resolve().name
        base = f"{target.rstrip('/')}/{name}" if into and name else target
        if source.is_dir():
            folder_bases.append(normalize_path(base))
            _walk_local(source, base, plan, exclude or Excludes())
        elif base == "/":
            raise errors.InvalidPath("A file cannot replace the root folder.")
        else:
            plan.items.append(UploadItem(source, normalize_path(base)))
    _refuse_case_clashes(remote, plan, target_entry, target, folder_bases)
    return plan


def _refuse_case_clashes(remote: Remote, plan: PutPlan, target_entry: Entry | None,
                         target: str, folder_bases: list[str]) -> None:
    """Refuse a put that would land on an existing entry spelled differently.

    The server compares paths case-insensitively, so ``report.txt`` would silently become a
    new version of ``/Report.txt``. Naming the existing spelling lets the user choose: put to
    that spelling on purpose, or rename. Only the file's own name counts: a folder above it
    spelled differently is the same folder. One listing per destination folder, not per file.
    The files found are kept in ``plan.existing``: ``run_put`` tells from them which uploads
    changed nothing.
    """
    spelled: dict[str, Entry] = {}
    if target_entry is not None and target != "/":
        spelled[path_key(target_entry.path)] = target_entry
    if target_entry is not None and target_entry.is_folder:
        for entry in remote.list_folder(target):
            spelled[path_key(entry.path)] = entry
    for base in folder_bases:
        existing = spelled.get(path_key(base))
        if existing is not None:
            for entry in remote.list_folder(existing.path, recursive=True):
                spelled[path_key(entry.path)] = entry
    for item in plan.items:
        found = spelled.get(path_key(item.remote_path))
        if found is not None and name_of(found.path) != name_of(item.remote_path):
            raise errors.Conflict(
                f"{item.remote_path} differs only in case from the existing {found.path}; "
                f"put to {found.path} to update it, or rename the local file.")
        if found is not None and found.is_file:
            plan.existing[path_key(item.remote_path)] = found


def run_put(remote: Remote, plan: PutPlan, progress: Progress | None = None, *,
            device: str | None = None, stats: TransferStats | None = None) -> BatchResult:
    """Create the plan's folders and upload its files on top of whatever is there.

    ``stats`` (if given) is counted into as the upload goes, for a progress display."""
    result = BatchResult(failures=list(plan.skipped),
                         stats=stats if stats is not None else TransferStats())
    for folder in plan.folders:
        if folder == "/":
            continue
        try:
            remote.make_folder(folder)
            result.stats.add(requests=1)
        except errors.MiniDropboxError as exc:
            result.failures.append(failure("", folder, exc))
    many = upload_many(remote, plan.items, progress, device=device, stats=result.stats)
    result.entries.extend(many.entries)
    result.failures.extend(many.failures)
    # The server keeps the version when the bytes are the same: nothing changed there.
    for entry in many.entries:
        before = plan.existing.get(path_key(entry.path))
        if before is not None and before.version == entry.version:
            result.stats.add(unchanged=1)
    return result


@dataclass
class GetPlan:
    """What ``get`` will do: the local root, folders to create, files to download."""

    remote: str
    root: Path
    folders: list[Path] = field(default_factory=list)
    files: list[tuple[Entry, Path]] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(entry.size or 0 for entry, _ in self.files)


def plan_get(remote: Remote, path: str, local: Path | str | None = None,
             exclude: Excludes | None = None) -> GetPlan:
    """Decide where each remote file goes, the way ``cp -r`` would; server names are checked
    (a folder's files that ``exclude`` names are left out)."""
    exclude = exclude or Excludes()
    path = normalize_path(path)
    entry = remote.metadata(path)
    target = Path(local) if local is not None else None
    if entry.is_file:
        name = check_name(entry.name or path.rsplit("/", 1)[-1])
        if target is None:
            target = Path.cwd() / name
        elif target.is_dir():
            target = target / name
        return GetPlan(path, target.parent, files=[(entry, target)])
    if path == "/":
        root = target if target is not None else Path.cwd()
    else:
        name = check_name(entry.name or path.rsplit("/", 1)[-1])
        if target is None:
            root = Path.cwd() / name
        elif target.is_dir():
            root = target / name
        else:
            root = target
    plan = GetPlan(path, root, folders=[root])
    for child in remote.list_folder(path, recursive=True):
        rel = relative_remote(child.path, path)
        if not rel or exclude.excluded(rel, is_dir=child.is_folder):
            continue
        dest = safe_join(root, rel)
        if child.is_folder:
            plan.folders.append(dest)
        else:
            plan.files.append((child, dest))
    return plan


def run_get(remote: Remote, plan: GetPlan, progress: Progress | None = None, *,
            version: int | None = None, workers: int = WORKERS,
            force: bool = False, stats: TransferStats | None = None) -> BatchResult:
    """Create the plan's folders and download its files, several at a time.

    A local file that already holds the content is skipped (``stats.unchanged``); one with
    content the server never had is a ``LocalEdits`` failure unless ``force``
    (``client/local_copy.py``). ``stats`` as for ``run_put``."""
    result = BatchResult(stats=stats if stats is not None else TransferStats())
    for folder in plan.folders:
        try:
            ensure_inside(plan.root, folder)
            folder.mkdir(parents=True, exist_ok=True)
        except (OSError, errors.MiniDropboxError) as exc:
            result.failures.append(failure(folder, plan.remote, exc))

    def fetch(entry: Entry, dest: Path, tick: Progress) -> Entry:
        ensure_inside(plan.root, dest.parent)
        result.stats.started(entry.path)
        if not force:
            state = compare_local(remote, entry, dest)
            if state is LocalCopy.SAME and version is None:
                result.stats.add(unchanged=1)
                tick(entry.size or 0)
                return entry
            if state is LocalCopy.EDITED:
                raise LocalEdits(f"{dest} has changes the server does not have; it was "
                                 "not replaced (--force replaces it).")
        return download_file(remote, entry.path, dest, version, tick, entry=entry,
                             stats=result.stats)

    remote.api.access_token()  # refresh once here rather than racing in the workers
    stop = threading.Event()
    tick = stoppable(progress, stop)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="minidropbox-download")
    futures: list[tuple[Future[Entry], Entry, Path]] = []
    try:
        futures += [(pool.submit(fetch, entry, dest, tick), entry, dest)
                   for entry, dest in plan.files]
        for future, entry, dest in futures:
            try:
                result.entries.append(result_of(future))
            except (OSError, errors.MiniDropboxError) as exc:
                result.failures.append(failure(dest, entry.path, exc))
    except BaseException:
        # Ctrl-C (or anything unexpected): files not started are dropped, the running ones
        # stop at their next block and remove their temp files before we return. A worker
        # stuck in a read (a stalled server) is not waited for beyond STOP_GRACE.
        stop.set()
        if remote.bandwidth is not None:
            remote.bandwidth.stop()  # workers waiting for their turn (--bwlimit) stop too
        pool.shutdown(wait=False, cancel_futures=True)
        wait_futures([f for f, _, _ in futures], timeout=STOP_GRACE)
        raise
    pool.shutdown(wait=True)
    return result
