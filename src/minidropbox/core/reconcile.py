"""Three-way reconcile: from the local tree, the base and the remote tree, decide what to do.

The *base* is what both sides last agreed on (the sync state DB). Comparing each side with the
base says which side changed; that, not timestamps, decides the direction:

    local changed only   → upload / mkdir on the server / delete on the server
    remote changed only  → download / mkdir here / delete here
    both, same result    → agree (record the new base)
    both, different      → conflict: the local one is renamed to a conflicted copy, the server
                           version keeps the name; a delete against an edit loses (edit wins)

Safety invariants the planner guarantees (and ``tests/unit/test_reconcile_props.py`` checks):

- a file is deleted on a side only if that side still holds exactly the base content, so what
  is deleted was already on the server (in its history);
- a folder is deleted only if everything under it is deleted too;
- nothing is planned over a local file that is still being written (``hash is None``);
- a disappearance plus an appearance of the same content is a move, not delete + upload;
  while the appearance may still be that content (a new local file of the same size, still
  settling: renamed within the settle time of its mtime), the delete waits for it (``held``),
  unless the caller says that wait has lasted long enough (``hold_expired``);
- more deletions than ``DeleteLimits`` allows are held back unless explicitly allowed.

Paths are relative to the sync root in the server's form (``/a/b.txt``); trees are keyed by
``path_key`` so case and Unicode form compare as the server compares them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

from minidropbox.core.paths import is_within, join, name_of, parent_of, path_key
from minidropbox.core.sync_names import DeleteLimits, conflict_path

Kind = Literal["file", "folder"]


@dataclass(frozen=True)
class Item:
    """One file or folder as a side sees it.

    ``hash`` is the content hash of a file (``None`` for a folder, or for a local file that is
    still changing and must be left alone for now); ``version`` is the server version.
    """

    path: str
    kind: Kind = "file"
    hash: str | None = None
    version: int | None = None
    size: int | None = None

    @property
    def settled(self) -> bool:
        return self.kind == "folder" or self.hash is not None


Tree = Mapping[str, Item]


def tree(items: Iterable[Item]) -> dict[str, Item]:
    """A tree keyed the way the planner looks things up."""
    return {path_key(item.path): item for item in items}


class Op(StrEnum):
    MOVE_LOCAL = "move_local"
    MOVE_REMOTE = "move_remote"
    MKDIR_LOCAL = "mkdir_local"
    MKDIR_REMOTE = "mkdir_remote"
    CONFLICT = "conflict"  # rename the local item to ``dest``; the server's keeps the name
    UPLOAD = "upload"
    DOWNLOAD = "download"
    AGREE = "agree"  # both sides hold the same thing: record it as the base
    FORGET = "forget"  # both sides lost it: drop the base
    DELETE_LOCAL = "delete_local"
    DELETE_REMOTE = "delete_remote"


# Execution order: moves first (later actions name the new paths), then conflicted copies
# step aside (a folder may be created where a file was), deletes last, deepest first.
PHASE = {Op.MOVE_REMOTE: 0, Op.MOVE_LOCAL: 0, Op.CONFLICT: 1, Op.MKDIR_LOCAL: 2,
         Op.MKDIR_REMOTE: 2, Op.UPLOAD: 3, Op.DOWNLOAD: 3, Op.AGREE: 4, Op.FORGET: 4,
         Op.DELETE_LOCAL: 5, Op.DELETE_REMOTE: 5}


@dataclass(frozen=True)
class Action:
    """One step. ``local``, ``base`` and ``remote`` are what the planner saw at ``path``, so the
    executor can check that nothing moved on before it acts (and skip if it did)."""

    op: Op
    path: str
    kind: Kind = "file"
    dest: str | None = None
    local: Item | None = None
    base: Item | None = None
    remote: Item | None = None


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # local files still being written
    # Base paths gone locally whose delete waits: a new local file still settling may be
    # them, renamed (keyed as ``tree``; folders too, when a whole folder was renamed).
    held: list[str] = field(default_factory=list)
    local_deletes: int = 0  # files
    remote_deletes: int = 0
    refused: str | None = None  # set when deletions were held back by the rail

    @property
    def done(self) -> bool:
        """Both sides agree and nothing is pending."""
        return (not self.actions and not self.waiting and not self.held
                and self.refused is None)


def _depth(path: str) -> int:
    return path.count("/")


def _depth_first(key: str) -> tuple[int, str]:
    """Sort key: shallower paths first, then by key."""
    return key.count("/"), key


def _changed(side: Item | None, base: Item | None) -> bool:
    if side is None or base is None:
        return (side is None) != (base is None)
    if side.kind != base.kind:
        return True
    return side.kind == "file" and side.hash != base.hash


def _may_hold(item: Item, b: Item) -> bool | None:
    """Whether the file ``item`` holds the base file ``b``'s content: True, False, or None
    for "maybe" (a local file still settling, whose size is the base's)."""
    if item.kind != "file":
        return False
    if item.hash is not None:
        return item.hash == b.hash
    return None if item.size is not None and item.size == b.size else False


def _under(t: Tree, folder: str) -> list[str]:
    fkey = path_key(folder)
    return [k for k in t if k.startswith(fkey + "/")]


class _Planner:
    def __init__(self, local: Tree, base: Tree, remote: Tree, device: str,
                 now: datetime, trusted: bool = True,
                 hold_expired: frozenset[str] = frozenset()) -> None:
        self.local, self.base, self.remote = local, base, remote
        self.hold_expired = hold_expired
        self.held: list[str] = []
        self.settling_sizes: set[int] | None = None  # new local files still being written
        self.trusted = trusted  # False: nothing may be deleted (see ``reconcile``)
        self.device, self.now = device, now
        self.handled: set[str] = set()
        self.actions: dict[str, Action] = {}
        self.extra: list[Action] = []  # moves: keyed by neither end alone
        self.folder_dests: list[tuple[str, str]] = []  # (source, dest) keys of folder moves
        self.waiting: list[str] = []
        self.new_names: set[str] = set()

    # -- moves ------------------------------------------------------------------------------
    def _claim(self, *folders: str) -> None:
        for folder in folders:
            key = path_key(folder)
            self.handled.add(key)
            for t in (self.local, self.base, self.remote):
                self.handled.update(_under(t, folder))

    def folder_moves(self, gone_side: Tree, other: Tree, op: Op) -> None:
        """A folder missing on one side and a new folder there holding all its base files at
        the same relative paths: one move on the other side instead of many. While some of
        those files are still settling (renamed within the settle time of their mtime), the
        move may be real: both folders wait (``held``) until they settle."""
        # Only a base folder gone from one side and still a folder on the other can be one.
        gone = [k for k, b in self.base.items()
                if b.kind == "folder" and k not in gone_side
                and (o := other.get(k)) is not None and o.kind == "folder"]
        for src_key in sorted(gone, key=_depth_first):
            b = self.base[src_key]
            o = other[src_key]
            if src_key in self.handled:
                continue
            files = [(k[len(src_key):], self.base[k]) for k in _under(self.base, b.path)
                     if self.base[k].kind == "file"]
            if not files:
                continue
            may_wait = src_key not in self.hold_expired
            rel, first = files[0]
            for key, item in sorted(gone_side.items()):
                if not key.endswith(rel) or key in self.base:
                    continue
                same = _may_hold(item, first)
                if same is False or (same is None and not may_wait):
                    continue
                dst_key = key[: len(key) - len(rel)]
                dst = gone_side.get(dst_key)
                if (dst is None or dst.kind != "folder" or dst_key in self.base
                        or dst_key in other or dst_key in self.handled
                        or is_within(dst.path, b.path) or is_within(b.path, dst.path)):
                    continue
                found = [_may_hold(x, f) if (x := gone_side.get(dst_key + r)) else False
                         for r, f in files]
                if all(found):
                    src_path = o.path
                    self.extra.append(Action(op, src_path, "folder", dest=dst.path,
                                             base=b, local=self.local.get(src_key),
                                             remote=self.remote.get(src_key)))
                    self._claim(src_path, dst.path)
                    self.folder_dests.append((src_key, dst_key))
                    break
                if may_wait and False not in found:
                    # Nothing on either side is planned until the files settle.
                    self.held.append(src_key)
                    self._claim(o.path, dst.path)
                    break

    def file_moves(self, gone_side: Tree, other: Tree, op: Op) -> None:
        """A base file gone from one side whose content appears at a new path there (also
        when a folder took its old name there: what the folder holds waits a round, until
        the move has freed the name on the other side)."""
        fresh: dict[str, list[str]] = {}
        # Hashes of new files that are not move targets this round, but will be next round:
        # a name the other side holds with an empty folder (which yields this round), or a
        # file new in a folder moved this round (planned with the folder's contents).
        blocked: set[str] = set()
        new = [(k, h) for k, v in gone_side.items()
               if v.kind == "file" and (h := v.hash) is not None and k not in self.base]
        for key, h in sorted(new):
            if key in self.handled:
                if self._new_in_moved_folder(key):
                    blocked.add(h)
                continue
            if key not in other:
                fresh.setdefault(h, []).append(key)
            elif self.trusted and self._holds_nothing_new(key, other[key], other, gone_side):
                blocked.add(h)
        if not fresh and not blocked:
            return  # no new file there: nothing moved
        # Only a base file gone from that side (or a folder now) and a file on the other.
        gone = [(k, b) for k, b in self.base.items()
                if b.kind == "file"
                and ((now := gone_side.get(k)) is None or now.kind == "folder")
                and (o := other.get(k)) is not None and o.kind == "file"
                and not (op is Op.MOVE_LOCAL and not o.settled)]
        for src_key, b in sorted(gone):
            o = other[src_key]
            now = gone_side.get(src_key)
            if src_key in self.handled:
                continue
            if not fresh.get(b.hash or ""):
                if b.hash in blocked and now is None and src_key not in self.hold_expired:
                    # Moved where no move can take it this round: the delete waits, so next
                    # round, the name free or the folder moved, this is a move and the file
                    # keeps its versions.
                    self.held.append(src_key)
                    self.handled.add(src_key)
                continue
            candidates = fresh[b.hash or ""]
            # Into the folder that took its name: no one step does that (the old behaviour,
            # the swap, stands).
            dst_key = next((k for k in candidates
                            if now is None or not k.startswith(src_key + "/")), None)
            if dst_key is None:
                continue
            candidates.remove(dst_key)
            dst = gone_side[dst_key]
            self.extra.append(Action(op, o.path, "file", dest=dst.path, base=b,
                                     local=self.local.get(src_key),
                                     remote=self.remote.get(src_key)))
            self.handled.update((src_key, dst_key))
            if now is not None:
                self._claim(now.path)

    def _new_in_moved_folder(self, key: str) -> bool:
        """``key`` lies in the destination of a folder move planned this round, and the
        moved folder's base held nothing at its place: a file put there besides the move."""
        for src, dst in self.folder_dests:
            if key.startswith(dst + "/") and src + key[len(dst):] not in self.base:
                return True
        return False

    def case_renames(self) -> None:
        """A name whose spelling changed on one side only (``a.txt`` -> ``A.txt``): a move,
        although the key (case-folded, as the server compares) and the content did not
        change. Only the last segment counts: a renamed folder's children follow it. When
        both sides respelled it differently, the server's spelling wins. The content is
        planned next round, under the new name."""
        # Only names spelled differently on the two sides (a spelling the same on both has
        # the same last segment); each step marks only its own key handled.
        respelled = [k for k, b in self.base.items()
                     if k not in self.handled
                     and (loc := self.local.get(k)) is not None
                     and (rem := self.remote.get(k)) is not None
                     and loc.kind == b.kind == rem.kind and loc.path != rem.path]
        for key in sorted(respelled, key=_depth_first):
            b, loc, rem = self.base[key], self.local[key], self.remote[key]
            here, there, was = name_of(loc.path), name_of(rem.path), name_of(b.path)
            if here == there:
                continue
            if there == was:
                self.extra.append(Action(Op.MOVE_REMOTE, rem.path, b.kind,
                                         dest=join(parent_of(rem.path), here),
                                         local=loc, base=b, remote=rem))
            else:
                self.extra.append(Action(Op.MOVE_LOCAL, loc.path, b.kind,
                                         dest=join(parent_of(loc.path), there),
                                         local=loc, base=b, remote=rem))
            self.handled.add(key)

    # -- one path ---------------------------------------------------------------------------
    def _add(self, op: Op, key: str, path: str, kind: Kind, dest: str | None = None) -> None:
        self.actions[key] = Action(op, path, kind, dest, self.local.get(key),
                                   self.base.get(key), self.remote.get(key))

    def _conflict(self, key: str, item: Item) -> None:
        dest = conflict_path(item.path, self.device, self.now, self._taken)
        self.new_names.add(path_key(dest))
        self._add(Op.CONFLICT, key, item.path, item.kind, dest)
        if item.kind == "folder":
            # Its contents move with it; they are planned under the new name next round.
            self.handled.update(_under(self.local, item.path))

    def _swap(self, key: str, b: Item | None, unchanged: Tree, op: Op, loc: Item) -> None:
        """A file replaced by a folder of the same name (or the reverse) on one side only:
        remove the old entry on the side that did not change (this round; the new item is
        copied over next round under the user's name), if nothing in or under it changed
        there since the base. Otherwise both changed something: a conflict."""
        assert b is not None
        prefix = key + "/"
        inside = {k: v for k, v in unchanged.items() if k.startswith(prefix)}
        base_inside = {k: v for k, v in self.base.items() if k.startswith(prefix)}
        # Only a file new or changed there is lost by replacing it; something deleted there
        # is gone on both sides (the swap removed it here too), e.g. a delete this client
        # made and died before recording; a folder holds nothing of its own, e.g. one this
        # client made there and died before recording.
        if any(v.kind == "file" and (k not in base_inside or _changed(v, base_inside[k]))
               for k, v in inside.items()):
            self._conflict(key, loc)
            return
        self._add(op, key, b.path, b.kind)
        for k, v in inside.items():
            if v.kind == "folder":
                # Gone with the old folder (the server deletes a folder whole; here they
                # are removed deepest first), whatever the base says of them.
                self._add(op, k, v.path, "folder")
                self.handled.add(k)
        changed = self.remote if op is Op.DELETE_LOCAL else self.local
        if changed[key].kind == "folder":
            # The new folder's contents go over once the old file is gone, next round.
            self.handled.update(_under(changed, changed[key].path))

    def _taken(self, path: str) -> bool:
        key = path_key(path)
        return (key in self.local or key in self.base or key in self.remote
                or key in self.new_names)

    def decide(self, key: str) -> None:
        loc, b, rem = self.local.get(key), self.base.get(key), self.remote.get(key)
        if loc is not None and not loc.settled:
            self.waiting.append(loc.path)
            return
        lc, rc = _changed(loc, b), _changed(rem, b)
        if not lc and not rc:
            if rem is not None and b is not None and rem.version != b.version:
                self._add(Op.AGREE, key, rem.path, rem.kind)  # e.g. restored to the same bytes
            return
        if lc and not rc:
            if loc is None:
                assert b is not None
                if b.kind == "file" and self._maybe_renamed(key, b):
                    self.held.append(key)
                    return
                self._add(Op.DELETE_REMOTE, key, b.path, b.kind)
            elif rem is not None and rem.kind != loc.kind:
                if b is not None and b.kind == "file" and self._maybe_renamed(key, b):
                    self.held.append(key)  # the file may be settling under a new name
                    return
                self._swap(key, b, self.remote, Op.DELETE_REMOTE, loc)
            else:
                self._add(Op.UPLOAD if loc.kind == "file" else Op.MKDIR_REMOTE, key, loc.path,
                          loc.kind)
            return
        if rc and not lc:
            if rem is None:
                assert b is not None
                op = Op.DELETE_LOCAL if loc is not None else Op.FORGET
                self._add(op, key, loc.path if loc else b.path, b.kind)
            elif loc is not None and loc.kind != rem.kind:
                self._swap(key, b, self.local, Op.DELETE_LOCAL, loc)
            else:
                self._add(Op.DOWNLOAD if rem.kind == "file" else Op.MKDIR_LOCAL, key, rem.path,
                          rem.kind)
            return
        # Both sides changed since they last agreed.
        if loc is None and rem is None:
            assert b is not None
            self._add(Op.FORGET, key, b.path, b.kind)
        elif loc is None:
            assert rem is not None  # deleted here, changed there: the change wins
            self._add(Op.DOWNLOAD if rem.kind == "file" else Op.MKDIR_LOCAL, key, rem.path,
                      rem.kind)
        elif rem is None:
            self._add(Op.UPLOAD if loc.kind == "file" else Op.MKDIR_REMOTE, key, loc.path,
                      loc.kind)
        elif loc.kind == rem.kind and (loc.kind == "folder" or loc.hash == rem.hash):
            self._add(Op.AGREE, key, rem.path, rem.kind)
        elif self.trusted and self._holds_nothing_new(key, loc, self.local, self.remote):
            # A folder with no file of its own in it, at any depth, holds nothing to keep:
            # the file takes the name (next round). So do the folders sync itself made here
            # just before it died, unrecorded (a folder and the folders in it, all at once),
            # also when what it moved into one was deleted on the other side since.
            self._delete_folders(key, loc, self.local, Op.DELETE_LOCAL)
        elif self.trusted and self._holds_nothing_new(key, rem, self.remote, self.local):
            self._delete_folders(key, rem, self.remote, Op.DELETE_REMOTE)
        else:
            self._conflict(key, loc)

    def agreed(self, key: str) -> bool:
        """Whether ``decide`` would do nothing for ``key``: both sides hold the base as it
        is (most of a tree, most rounds)."""
        b = self.base.get(key)
        if b is None:
            return False
        loc, rem = self.local.get(key), self.remote.get(key)
        return (loc is not None and rem is not None and loc.settled
                and not _changed(loc, b) and not _changed(rem, b) and rem.version == b.version)

    def _maybe_renamed(self, key: str, b: Item) -> bool:
        """The base file ``b``, gone locally, may be a new local file still settling (same
        size; a rename within the settle time of its mtime): its delete waits for the file
        to settle, when ``file_moves`` can tell, unless that wait has lasted long enough."""
        if key in self.hold_expired:
            return False
        if self.settling_sizes is None:
            self.settling_sizes = {
                item.size for k, item in self.local.items()
                if item.kind == "file" and item.hash is None and item.size is not None
                and k not in self.base and k not in self.remote and k not in self.handled}
        return b.size in self.settling_sizes

    def _holds_nothing_new(self, key: str, item: Item, side: Tree, other: Tree) -> bool:
        """``item`` is a folder, and every file under it on ``side`` is one the base holds,
        unchanged there and deleted on ``other``: removing the folder loses nothing."""
        if item.kind != "folder":
            return False
        for k, v in side.items():
            if k.startswith(key + "/") and v.kind == "file":
                b = self.base.get(k)
                if b is None or _changed(v, b) or k in other:
                    return False
        return True

    def _delete_folders(self, key: str, item: Item, side: Tree, op: Op) -> None:
        """Delete the folder ``item`` and the (file-less) folders under it on ``side``,
        deepest first (the execution order of deletes); nothing else is planned for them."""
        self._add(op, key, item.path, "folder")
        for k in _under(side, item.path):
            self._add(op, k, side[k].path, "folder")
            self.handled.add(k)

    # -- folders whose contents survive are not deleted --------------------------------------
    def settle_folder_deletes(self) -> None:
        for key in sorted(self.actions, key=lambda k: (-_depth(k), k)):
            act = self.actions[key]
            if act.kind != "folder" or act.op not in (Op.DELETE_LOCAL, Op.DELETE_REMOTE):
                continue
            side = self.local if act.op is Op.DELETE_LOCAL else self.remote
            survivors = [k for k in _under(side, act.path)
                         if (a := self.actions.get(k)) is None or a.op is not act.op]
            if survivors and all(k in self.held for k in survivors):
                # Only files whose delete waits (maybe renamed): the folder waits with them.
                del self.actions[key]
                self.held.append(key)
            elif survivors:
                # Something new or changed lives inside: keep the folder on both sides.
                op = Op.MKDIR_REMOTE if act.op is Op.DELETE_LOCAL else Op.MKDIR_LOCAL
                self.actions[key] = Action(op, act.path, "folder", None, act.local, act.base,
                                           act.remote)
        for key in sorted(self.actions, key=lambda k: (_depth(k), k)):
            top = self.actions.get(key)
            if top is not None and top.op is Op.DELETE_REMOTE and top.kind == "folder":
                # The server deletes a folder with its contents: one request for the subtree.
                for k in _under(self.remote, top.path):
                    if (a := self.actions.get(k)) is not None and a.op is Op.DELETE_REMOTE:
                        del self.actions[k]


def reconcile(local: Tree, base: Tree, remote: Tree, *, device: str, now: datetime,
              allow_mass_delete: bool = False, limits: DeleteLimits | None = None,
              base_trusted: bool = True,
              hold_expired: frozenset[str] = frozenset()) -> Plan:
    """The actions that bring ``local`` and ``remote`` into agreement, given ``base``.

    ``hold_expired``: keys of base paths (as in ``Plan.held``) whose delete has waited long
    enough for a maybe-renamed file to settle; they are decided as if it were not there.

    With ``base_trusted=False`` (the server was restored from a backup) the base is ignored:
    nothing is deleted or moved, differences become conflicts, and whatever exists on one
    side only is copied to the other.
    """
    if not base_trusted:
        base = {}
    planner = _Planner(local, base, remote, device, now, base_trusted, hold_expired)
    planner.folder_moves(local, remote, Op.MOVE_REMOTE)
    planner.folder_moves(remote, local, Op.MOVE_LOCAL)
    planner.file_moves(local, remote, Op.MOVE_REMOTE)
    planner.file_moves(remote, local, Op.MOVE_LOCAL)
    planner.case_renames()
    undecided = [k for k in local.keys() | base.keys() | remote.keys()
                 if k not in planner.handled and not planner.agreed(k)]
    for key in sorted(undecided, key=_depth_first):
        if key not in planner.handled:
            planner.decide(key)
    local_deletes = sum(1 for a in planner.actions.values()
                        if a.op is Op.DELETE_LOCAL and a.kind == "file")
    remote_deletes = sum(1 for a in planner.actions.values()
                         if a.op is Op.DELETE_REMOTE and a.kind == "file")
    planner.settle_folder_deletes()
    actions = planner.extra + list(planner.actions.values())
    plan = Plan(waiting=planner.waiting, held=planner.held, local_deletes=local_deletes,
                remote_deletes=remote_deletes)
    limits = limits or DeleteLimits()
    tree_files = sum(1 for item in base.values() if item.kind == "file")
    worst = max(local_deletes, remote_deletes)
    if not allow_mass_delete and limits.excessive(worst, tree_files):
        where = "on the server" if remote_deletes >= local_deletes else "in the local folder"
        plan.refused = (f"This sync would delete {worst} of {tree_files} synced files {where}; "
                        "nothing was deleted. If that is intended, run again with "
                        "--allow-mass-delete.")
        actions = [a for a in actions if a.op not in (Op.DELETE_LOCAL, Op.DELETE_REMOTE)]
    plan.actions = sorted(actions, key=lambda a: (
        PHASE[a.op], -_depth(a.path) if PHASE[a.op] == 5 else _depth(a.path), path_key(a.path)))
    return plan
