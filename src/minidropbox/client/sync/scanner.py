"""The local side of a reconcile: walk the sync folder and say what is there.

A file whose size, mtime, ctime and inode equal those recorded in the base keeps the base's
content hash without being read; any other file is hashed with the same chunker as the server
(so hashes compare). A file that changed within the last ``SETTLE_SECONDS``, or changes while
it is being read, is reported with ``hash=None``: the planner leaves it alone until it holds
still, so half-written files are never uploaded, and it never counts as deleted either.

A file its writer has closed (the watcher saw the close, and no write since: ``closed``) only
needs to have held still for ``QUICK_SETTLE_SECONDS``: its mtime, the time of its last write,
is that old, and its stat is the same before, during and after the read. A file still open
for writing, or one the watcher knows nothing about, waits the full ``SETTLE_SECONDS``.

Why the stat shortcut is safe: a stat is recorded only if its mtime is at least
``RACY_SECONDS`` away from the time of recording (``trusted_stat``), so a later write, which
gets the time of writing as its mtime, cannot keep it; and a download records the stat only
if the renamed file still has the inode, size and mtime of the temp file it wrote. A stat
not recorded makes the next scan read the file once more ("racily clean", as git says).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from minidropbox.client.localfolder import FileInfo, LocalFolder, join
from minidropbox.client.sync.ignore import IgnoreRules
from minidropbox.client.sync.state import BaseRow, LocalStat
from minidropbox.core.chunking import content_hash, iter_chunks
from minidropbox.core.errors import InvalidPath
from minidropbox.core.paths import normalize_path, path_key
from minidropbox.core.reconcile import Item
from minidropbox.core.sync_names import MAX_CASE_CONFLICTS, case_conflict_name

SETTLE_SECONDS = 0.4
QUICK_SETTLE_SECONDS = 0.1
RECHECK_MIN = 0.02  # seconds: the soonest a round looks again at a settling file
# File systems keep mtimes to a clock tick (a few ms on Linux, 100 ns on NTFS): a write within
# this much of a recorded mtime could leave size, mtime and inode all as they were.
RACY_SECONDS = 0.1

# Whether the watcher saw the last writer of a file close it, with no write since; called
# with the file's name in the sync folder.
ClosedCheck = Callable[[str], bool]


def stat_of(info: FileInfo) -> LocalStat:
    return LocalStat(info.size, info.mtime_ns, info.ctime_ns, info.ino)


def trusted_stat(st: LocalStat | None, now_ns: int) -> LocalStat | None:
    """``st`` if a later write is sure to change it, else None (the file is read again)."""
    if st is None or abs(now_ns - st.mtime_ns) < RACY_SECONDS * 1e9:
        return None
    return st


def hash_file(folder: LocalFolder, name: str) -> tuple[str, LocalStat] | None:
    """The content hash of a file and the stat it had throughout, or None if it changed
    while being read."""
    with folder.open_read(name) as fh:
        before = fh.info()
        digest = content_hash(ref.hash for ref, _ in iter_chunks(fh))
        after = fh.info()
    now = folder.info(name)
    if not (stat_of(before) == stat_of(after) == stat_of(now)):
        return None
    return digest, stat_of(before)


@dataclass
class LocalScan:
    """The local tree, keyed like the planner's trees, plus how to find each item on disk."""

    items: dict[str, Item] = field(default_factory=dict)
    stats: dict[str, LocalStat] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)  # key -> its name in the folder
    hashed: int = 0  # files read this scan
    skipped: list[str] = field(default_factory=list)  # could not be synced, and why
    unsettled: int = 0  # files still being written: look again shortly
    unreadable: set[str] = field(default_factory=set)  # paths left alone until readable
    recheck: float | None = None  # seconds until the soonest unsettled file may settle
    quick: int = 0  # files hashed early because their writer closed them
    case_conflicts: list[str] = field(default_factory=list)  # renamed apart, for the user
    # Each folder walked -> (mtime, ctime, inode) from just before it was listed: a name
    # added to or removed from it since changes them (``moved_during``).
    folders: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    # When the walk began (epoch ns): every stat in ``stats`` was seen at this time or later,
    # so one that is ``trusted_stat`` against it was not racy when it was seen.
    started_ns: int = 0

    def settling(self, seconds: float) -> None:
        wait = max(seconds, RECHECK_MIN)
        self.recheck = wait if self.recheck is None else min(self.recheck, wait)


@dataclass(frozen=True)
class _Walk:
    folder: LocalFolder
    rules: IgnoreRules
    base: Mapping[str, BaseRow]
    settle: float
    closed: ClosedCheck | None
    clock: Callable[[], int]
    rename_case_clashes: bool


# One listed name in ``_walk``: (not spelled as its base row, name, info, raw path, path or
# why it is invalid, key, base row).
_Named = tuple[bool, str, FileInfo, str, str | InvalidPath, str, BaseRow | None]


def scan(folder: LocalFolder, rules: IgnoreRules, base: Mapping[str, BaseRow],
         settle: float = SETTLE_SECONDS, closed: ClosedCheck | None = None,
         clock: Callable[[], int] = time.time_ns,
         rename_case_clashes: bool = True) -> LocalScan:
    """Walk ``folder`` (without following symlinks) and describe every file and folder;
    ``clock`` (epoch ns) says how old an mtime is. ``rename_case_clashes=False`` (a dry run)
    reports a case clash as skipped instead of renaming one side."""
    out = LocalScan(started_ns=clock())
    with contextlib.suppress(OSError):  # the root's own checks report a missing root
        out.folders[""] = _identity(folder.info(""))
    _walk("", "", _Walk(folder, rules, base, settle, closed, clock, rename_case_clashes), out)
    return out


def _walk(name: str, rel: str, how: _Walk, out: LocalScan) -> None:
    rules, base = how.rules, how.base
    try:
        entries = how.folder.list(name)
    except FileNotFoundError:
        # Moved or removed while we walked: what it held may be elsewhere now, where the
        # walk has been already. Unknown is not empty: nothing in it counts as deleted this
        # round; the next scan, shortly, sees where it went.
        _unknown_under(rel, base, out)
        out.unsettled += 1
        out.settling(QUICK_SETTLE_SECONDS)
        return
    except OSError as exc:
        # Unknown is not empty: keep what the base says is in there, marked as unsettled, so
        # nothing under an unreadable folder is deleted anywhere.
        out.skipped.append(f"{rel or '/'}: {exc.strerror or exc}")
        out.unreadable.update(_unknown_under(rel, base, out))
        return
    # Of two names that differ only in case, the one synced before keeps its name and the
    # newcomer is renamed apart: renaming the known one would make what the base holds
    # under it look deleted (and a user moving it in the same round, a delete + upload).
    # Each name is normalised and keyed once, here, for the sort and the loop below.
    named: list[_Named] = []
    for child, info in entries:
        raw = f"{rel}/{child}"
        path, key = _keyed(raw)
        row = base.get(key) if key else None
        named.append((row is None or row.item.path != path, child, info, raw, path, key, row))
    named.sort(key=_newcomer)  # stable: by name within each group, as listed
    for _, child, info, raw, path, key, row in named:
        is_dir = info.kind == "folder"
        if rules.ignored(raw, is_dir):
            continue
        if info.kind not in ("file", "folder"):
            out.skipped.append(f"{raw}: not a regular file or folder")
            continue
        if isinstance(path, InvalidPath):
            out.skipped.append(f"{raw}: {path.message}")
            continue
        if key in out.items:
            # Two names the server cannot tell apart (a case-sensitive disk): skipping one
            # would make it look deleted; keep it under a name of its own instead.
            if not how.rename_case_clashes:
                out.skipped.append(f"{join(name, child)}: differs only in case from "
                                   f"{out.items[key].path} (a sync renames it apart)")
                continue
            renamed = _part_case_clash(how.folder, name, child, info, out.items[key].path, out)
            if renamed is None:
                continue
            child, info = renamed
            with contextlib.suppress(OSError):  # its own rename is not someone else's change
                out.folders[name] = _identity(how.folder.info(name))
            raw = f"{rel}/{child}"
            path = normalize_path(raw)
            key = path_key(path)
            row = base.get(key)
        local = join(name, child)
        out.paths[key] = local
        if is_dir:
            out.items[key] = Item(path, "folder")
            out.folders[local] = _identity(info)
            _walk(local, raw, how, out)
            continue
        out.items[key] = _file_item(path, key, local, info, row, how, out)


MAX_REMEMBERED = 200_000  # names ``_keyed`` keeps; forgotten all at once past it
_KEYED: dict[str, tuple[str | InvalidPath, str]] = {}


def _keyed(raw: str) -> tuple[str | InvalidPath, str]:
    """``normalize_path(raw)`` (or why it is invalid) and its ``path_key`` (``""`` if
    invalid), remembered: both depend only on ``raw``, and every round asks again about
    every name in the tree."""
    hit = _KEYED.get(raw)
    if hit is None:
        try:
            path = normalize_path(raw)
            hit = (path, path_key(path))
        except InvalidPath as exc:
            hit = (exc.with_traceback(None), "")  # kept: not the frames it was raised in
        if len(_KEYED) >= MAX_REMEMBERED:
            _KEYED.clear()
        _KEYED[raw] = hit
    return hit


def _newcomer(named: _Named) -> bool:
    """Sort key of ``_walk``'s entries: names spelled as their base row come first."""
    return named[0]


def _identity(info: FileInfo) -> tuple[int, int, int]:
    return info.mtime_ns, info.ctime_ns, info.ino


def moved_during(folder: LocalFolder, out: LocalScan) -> bool:
    """Whether a name was added to or removed from a folder after the scan listed it (one
    ``lstat`` per folder). A file moved from a folder not yet walked into one walked already
    is then in neither listing: it looks deleted, and a delete planned from such a scan
    would lose its versions when it is found again as a new file."""
    for name, seen in out.folders.items():
        try:
            if _identity(folder.info(name)) != seen:
                return True
        except OSError:
            return True
    return False


def _unknown_under(rel: str, base: Mapping[str, BaseRow], out: LocalScan) -> list[str]:
    """Whatever the base says is under folder ``rel``, as unsettled items (nothing there is
    deleted or replaced); their paths."""
    prefix = path_key(rel) + "/" if rel else "/"
    kept = []
    for key, row in base.items():
        if key.startswith(prefix) and key not in out.items:
            out.items[key] = Item(row.item.path, row.item.kind, None)
            kept.append(row.item.path)
    return kept


def _part_case_clash(folder: LocalFolder, name: str, child: str, info: FileInfo, other: str,
                     out: LocalScan) -> tuple[str, FileInfo] | None:
    """Rename ``child`` of folder ``name`` to a free ``(case conflict)`` name; its new name
    and info, or None (reported in ``skipped``) if no name was free or the rename failed."""
    taken = {path_key("/" + n) for n, _ in folder.list(name)}
    for attempt in range(1, MAX_CASE_CONFLICTS + 1):
        new = case_conflict_name(child, info.kind, attempt)
        if path_key("/" + new) in taken:
            continue
        try:
            folder.rename(join(name, child), join(name, new), replace=False)
            renamed = folder.info(join(name, new))
        except FileExistsError:
            continue
        except OSError:
            break
        out.case_conflicts.append(f"{join(name, child)} differs only in case from {other}: "
                                  f"renamed to {join(name, new)}")
        return new, renamed
    out.skipped.append(f"{join(name, child)}: differs only in case from {other}")
    return None


def _file_item(path: str, key: str, local: str, info: FileInfo, row: BaseRow | None,
               how: _Walk, out: LocalScan) -> Item:
    if row is not None and row.item.kind == "file" and (known := row.stat) is not None \
            and (known.size, known.mtime_ns, known.ctime_ns, known.ino) \
            == (info.size, info.mtime_ns, info.ctime_ns, info.ino):
        # The stat the base recorded (``stat_of(info) == row.stat``, without making one).
        out.stats[key] = known
        return Item(path, "file", row.item.hash, size=info.size)
    st = stat_of(info)
    age = (how.clock() - st.mtime_ns) / 1e9
    wait = 0.0
    if age < how.settle:
        quick = how.closed is not None and how.closed(local)
        wait = min(how.settle, QUICK_SETTLE_SECONDS) if quick else how.settle
    # A file recorded without a stat (placed or sent in the same clock tick as a possible
    # write) is read at once: if it still holds the recorded content there is nothing to
    # wait for, and only a file that differs is left to settle.
    recorded = row.item.hash if row is not None and row.item.kind == "file" else None
    read_now = recorded is not None and row is not None and row.stat is None
    if age < wait and not read_now:
        out.unsettled += 1
        out.settling(wait - age)
        return Item(path, "file", None, size=st.size)
    try:
        hashed = hash_file(how.folder, local)
    except FileNotFoundError:
        out.unsettled += 1  # gone meanwhile: the next scan sees it
        out.settling(QUICK_SETTLE_SECONDS)
        return Item(path, "file", None, size=st.size)
    except OSError as exc:
        out.skipped.append(f"{path}: {exc.strerror or exc}")
        out.unreadable.add(path)
        return Item(path, "file", None, size=st.size)
    out.hashed += 1
    if hashed is None:
        out.unsettled += 1
        out.settling(QUICK_SETTLE_SECONDS)
        return Item(path, "file", None, size=st.size)
    digest, seen = hashed
    if age < wait:
        if digest != recorded:
            out.unsettled += 1
            out.settling(wait - age)
            return Item(path, "file", None, size=st.size)
    elif age < how.settle:
        out.quick += 1
    out.stats[key] = seen
    return Item(path, "file", digest, size=seen.size)
