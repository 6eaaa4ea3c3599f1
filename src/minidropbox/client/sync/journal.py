"""The server tree kept up to date from the change journal instead of listed every round.

A full listing names every entry under the remote folder; the journal names only what changed
since a cursor, in commit order. Applied in order to a tree that was exactly at that cursor,
the journal gives the tree at the journal's newest cursor: ``CachedTree.apply`` does that, one
change at a time, and raises ``NeedsListing`` whenever a change does not say enough to know
the tree afterwards (a folder moved in from outside the remote folder, a path this disk cannot
hold, the remote folder itself moved or deleted). The caller then lists the folder again, as
it does after a 410 ``reset``, on a new server generation, and now and then anyway.

The cached tree holds every entry, ignored or not (ignore rules are applied when a round reads
it), so a change to ``.minidropboxignore`` never leaves it stale.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from minidropbox.client.values import Change
from minidropbox.core.paths import path_key
from minidropbox.core.reconcile import Item


class NeedsListing(Exception):
    """The journal alone cannot say what the tree is now: list the folder again."""


# A server path → its sync-relative path, ``None`` if it lies outside the remote folder;
# raises ``NeedsListing`` for a path that contains the remote folder or cannot be a local name.
ToRel = Callable[[str], "str | None"]


@dataclass
class CachedTree:
    """The remote folder as of ``cursor``: items by ``path_key`` and file mtimes, where known
    (a listing gives them; a journal entry carries the server's time, not the file's mtime)."""

    items: dict[str, Item] = field(default_factory=dict)
    modified: dict[str, float] = field(default_factory=dict)
    cursor: str | None = None

    def apply(self, change: Change, to_rel: ToRel) -> None:
        """Update the tree with one journal entry (see docs/PROTOCOL.md for the ops)."""
        op, kind = change.op, change.type
        rel = to_rel(change.path)
        if op == "move":
            source = to_rel(change.from_path) if change.from_path is not None else None
            self._move(change, source, rel)
        elif rel is None:
            pass  # outside the remote folder
        elif rel == "/":
            raise NeedsListing("the remote folder itself changed")
        elif op == "delete":
            self._remove(rel)
        elif op in ("commit", "restore", "mkdir", "undelete"):
            self._put(rel, kind, change)
        else:
            raise NeedsListing(f"unknown change {op!r}")

    def _put(self, rel: str, kind: str, change: Change) -> None:
        key = path_key(rel)
        self.modified.pop(key, None)
        if kind == "folder":
            self.items[key] = Item(rel, "folder")
        else:
            self.items[key] = Item(rel, "file", change.content_hash, change.version,
                                   change.size)

    def _subtree(self, rel: str) -> list[str]:
        key = path_key(rel)
        prefix = key + "/"
        return [k for k in self.items if k == key or k.startswith(prefix)]

    def _remove(self, rel: str) -> None:
        for k in self._subtree(rel):
            del self.items[k]
            self.modified.pop(k, None)

    def _move(self, change: Change, src: str | None, dst: str | None) -> None:
        if src == "/" or dst == "/":
            raise NeedsListing("the remote folder itself moved")
        if src is None and dst is None:
            return
        if dst is None:
            assert src is not None
            self._remove(src)  # moved out of the remote folder
            return
        kind = change.type
        keys = self._subtree(src) if src is not None else []
        if not keys:
            if kind == "folder":
                raise NeedsListing(f"{dst} came from somewhere this tree does not know")
            self._put(dst, kind, change)  # a file moved in: the entry says what it holds
            return
        assert src is not None
        moved = [(self.items.pop(k), self.modified.pop(k, None)) for k in keys]
        head = len(src)
        for item, mtime in moved:
            path = dst + item.path[head:]
            key = path_key(path)
            self.items[key] = Item(path, item.kind, item.hash, item.version, item.size)
            if mtime is not None:
                self.modified[key] = mtime
