"""Property tests: the planner, applied to model trees, converges and never loses an edit.

A model executor applies each plan to dictionaries the way the sync executor applies it to a
disk and a server; hypothesis generates an agreed starting tree and independent changes on
each side (edits, creates, deletes, renames, folder moves).
"""

from __future__ import annotations

import itertools
from datetime import datetime

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from minidropbox.core.paths import ancestors, path_key, rebase
from minidropbox.core.reconcile import Action, Item, Op, reconcile, tree

NOW = datetime(2024, 1, 2, 3, 4, 5)
NAMES = ["a", "b", "c", "D"]
counter = itertools.count(1000)


class Model:
    """A server (versions bumped on upload) and a local folder, plus the base between them."""

    def __init__(self, files: dict[str, str]) -> None:
        self.local: dict[str, Item] = {}
        self.remote: dict[str, Item] = {}
        for path, h in files.items():
            for folder in ancestors(path):
                self.local[path_key(folder)] = Item(folder, "folder")
            self.local[path_key(path)] = Item(path, "file", h, 1)
        self.remote = dict(self.local)
        self.base = dict(self.local)

    # -- what users do ----------------------------------------------------------------------
    @staticmethod
    def put(side: dict[str, Item], path: str, h: str) -> None:
        for folder in ancestors(path):
            if side.get(path_key(folder), Item(folder, "folder")).kind != "folder":
                return
        for folder in ancestors(path):
            side.setdefault(path_key(folder), Item(folder, "folder"))
        old = side.get(path_key(path))
        if old is not None and old.kind == "folder":
            return
        side[path_key(path)] = Item(path, "file", h, (old.version or 0) + 1 if old else 1)

    @staticmethod
    def remove(side: dict[str, Item], path: str) -> None:
        key = path_key(path)
        for k in [k for k in side if k == key or k.startswith(key + "/")]:
            del side[k]

    @staticmethod
    def move(side: dict[str, Item], src: str, dst: str) -> None:
        skey, dkey = path_key(src), path_key(dst)
        if skey not in side or dkey in side or dkey.startswith(skey + "/"):
            return
        if any(side.get(path_key(a), Item(a, "folder")).kind != "folder"
               for a in ancestors(dst)):
            return
        for folder in ancestors(dst):
            side.setdefault(path_key(folder), Item(folder, "folder"))
        for k in [k for k in side if k == skey or k.startswith(skey + "/")]:
            item = side.pop(k)
            new = rebase(item.path, side_path(item.path, src), dst)
            side[path_key(new)] = Item(new, item.kind, item.hash, item.version)

    # -- what the executor does -------------------------------------------------------------
    def apply(self, act: Action) -> None:
        key = path_key(act.path)
        if act.op is Op.MOVE_REMOTE or act.op is Op.MOVE_LOCAL:
            assert act.dest is not None
            self.move(self.remote if act.op is Op.MOVE_REMOTE else self.local, act.path,
                      act.dest)
            for k in [k for k in self.base if k == key or k.startswith(key + "/")]:
                item = self.base.pop(k)
                new = rebase(item.path, act.path, act.dest)
                self.base[path_key(new)] = Item(new, item.kind, item.hash, item.version)
        elif act.op is Op.CONFLICT:
            assert act.dest is not None
            self.move(self.local, act.path, act.dest)
        elif act.op in (Op.MKDIR_LOCAL, Op.MKDIR_REMOTE):
            side = self.local if act.op is Op.MKDIR_LOCAL else self.remote
            for folder in [*ancestors(act.path), act.path]:
                side.setdefault(path_key(folder), Item(folder, "folder"))
            self.base[key] = Item(act.path, "folder")
        elif act.op is Op.UPLOAD:
            loc = self.local[key]
            old = self.remote.get(key)
            assert (old.version if old else None) == (act.remote.version if act.remote else None)
            self.put(self.remote, act.path, loc.hash or "")
            self.base[key] = self.remote[key]
        elif act.op is Op.DOWNLOAD:
            rem = self.remote[key]
            self.put(self.local, act.path, rem.hash or "")
            self.base[key] = rem
        elif act.op is Op.AGREE:
            self.base[key] = self.remote[key]
        elif act.op is Op.FORGET:
            self.base.pop(key, None)
        elif act.op is Op.DELETE_LOCAL:
            if act.kind == "file":
                assert act.local is not None and act.base is not None
                assert act.local.hash == act.base.hash, "deleted an unsynced local edit"
                del self.local[key]
            elif not any(k.startswith(key + "/") for k in self.local):
                del self.local[key]  # rmdir: only when empty
            self.base.pop(key, None)
        elif act.op is Op.DELETE_REMOTE:
            if act.kind == "file":
                assert act.remote is not None and act.base is not None
                assert act.remote.hash == act.base.hash, "deleted an unsynced server edit"
            else:
                for k in [k for k in self.remote if k.startswith(key + "/")]:
                    base = self.base.get(k)
                    item = self.remote[k]
                    assert item.kind == "folder" or (base is not None and
                                                     base.hash == item.hash)
            self.remove(self.remote, act.path)
            for k in [k for k in self.base if k == key or k.startswith(key + "/")]:
                del self.base[k]


def side_path(path: str, src: str) -> str:
    return path[: len(src)]


paths = st.builds(lambda parts: "/" + "/".join(parts),
                  st.lists(st.sampled_from(NAMES), min_size=1, max_size=3))
change = st.tuples(st.sampled_from(["edit", "create", "delete", "move", "mkdir"]), paths, paths)


def mutate(side: dict[str, Item], changes: list[tuple[str, str, str]],
           fresh: set[str]) -> None:
    for kind, p1, p2 in changes:
        if kind in ("edit", "create"):
            target = p1
            if kind == "edit":
                files = sorted(i.path for i in side.values() if i.kind == "file")
                if not files:
                    continue
                target = files[len(p1) % len(files)]
            h = f"h{next(counter)}"
            Model.put(side, target, h)
            if path_key(target) in side and side[path_key(target)].hash == h:
                fresh.add(h)
        elif kind == "delete":
            Model.remove(side, p1)
        elif kind == "move":
            Model.move(side, p1, p2)
        elif path_key(p1) not in side:
            Model.put(side, p1 + "/x", f"h{next(counter)}")
            Model.remove(side, p1 + "/x")
    # Only content that is still there at the end was "written" in the sense that counts.
    present = {i.hash for i in side.values()}
    fresh.intersection_update(present)


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(start=st.dictionaries(paths, st.sampled_from(["h1", "h2", "h3"]), max_size=6),
       local_changes=st.lists(change, max_size=5), remote_changes=st.lists(change, max_size=5))
def test_plans_converge_and_keep_every_edit(start: dict[str, str],
                                            local_changes: list[tuple[str, str, str]],
                                            remote_changes: list[tuple[str, str, str]]) -> None:
    # Drop starting files that sit "inside" another starting file.
    files = {p: h for p, h in start.items()
             if not any(path_key(q) in {path_key(a) for a in ancestors(p)} for q in start)}
    note(f"files={files!r} local={local_changes!r} remote={remote_changes!r}")
    model = Model(files)
    fresh: set[str] = set()
    mutate(model.local, local_changes, fresh)
    mutate(model.remote, remote_changes, fresh)
    for _ in range(8):
        p = reconcile(tree(model.local.values()), model.base, tree(model.remote.values()),
                      device="dev", now=NOW, allow_mass_delete=True)
        if p.done:
            break
        for act in p.actions:
            model.apply(act)
    else:
        raise AssertionError(f"no convergence; last plan {p.actions}")
    view = {k: (i.kind, i.hash) for k, i in model.local.items()}
    assert view == {k: (i.kind, i.hash) for k, i in model.remote.items()}
    assert view == {k: (i.kind, i.hash) for k, i in model.base.items()}
    kept = {i.hash for i in model.local.values()}
    assert fresh <= kept, f"lost edits: {fresh - kept}"


@settings(max_examples=200, deadline=None, database=None)
@given(start=st.dictionaries(paths, st.sampled_from(["h1", "h2"]), max_size=6),
       local_changes=st.lists(change, max_size=4), remote_changes=st.lists(change, max_size=4))
def test_untrusted_base_never_deletes(start: dict[str, str],
                                      local_changes: list[tuple[str, str, str]],
                                      remote_changes: list[tuple[str, str, str]]) -> None:
    files = {p: h for p, h in start.items()
             if not any(path_key(q) in {path_key(a) for a in ancestors(p)} for q in start)}
    model = Model(files)
    fresh: set[str] = set()
    mutate(model.local, local_changes, fresh)
    mutate(model.remote, remote_changes, fresh)
    p = reconcile(tree(model.local.values()), model.base, tree(model.remote.values()),
                  device="dev", now=NOW, base_trusted=False)
    assert not [a for a in p.actions
                if a.op in (Op.DELETE_LOCAL, Op.DELETE_REMOTE, Op.MOVE_LOCAL, Op.MOVE_REMOTE)]
