"""The cached server tree follows journal entries the way a listing would see them, and asks
for a listing whenever an entry does not say enough."""

from __future__ import annotations

from typing import Any

import pytest

from minidropbox.client.sync.journal import CachedTree, NeedsListing
from minidropbox.client.values import Change
from minidropbox.core.paths import is_within, path_key
from minidropbox.core.reconcile import Item


def change(op: str, path: str, kind: str = "file", from_path: str | None = None,
           version: int | None = None, h: str | None = None) -> Change:
    return Change(cursor="c", op=op, path=path, from_path=from_path,
                  type="folder" if kind == "folder" else "file", version=version,
                  size=1 if kind == "file" else None, content_hash=h, time=0.0)


def under(root: str) -> Any:
    """``to_rel`` for a remote folder ``root`` (no unsafe names in these tests)."""
    def to_rel(path: str) -> str | None:
        if root == "/":
            return path
        if is_within(root, path):
            if path_key(path) != path_key(root):
                raise NeedsListing(path)
            return "/"
        if path_key(path).startswith(path_key(root) + "/"):
            return path[len(root):]
        return None
    return to_rel


def tree_of(*items: Item) -> CachedTree:
    return CachedTree({path_key(i.path): i for i in items}, {}, "c0")


def test_commits_moves_and_deletes_update_the_tree() -> None:
    t = CachedTree()
    to_rel = under("/")
    for c in (change("mkdir", "/Docs", "folder"), change("commit", "/Docs/a.txt", version=1,
                                                          h="h1"),
              change("commit", "/Docs/a.txt", version=2, h="h2"),
              change("move", "/Archive", "folder", from_path="/Docs"),
              change("commit", "/b.txt", version=1, h="hb"),
              change("move", "/B.txt", from_path="/b.txt", version=1, h="hb"),
              change("delete", "/Archive", "folder"),
              change("undelete", "/Archive", "folder"),
              change("undelete", "/Archive/a.txt", version=2, h="h2")):
        t.apply(c, to_rel)
    assert t.items == {"/archive": Item("/Archive", "folder"),
                       "/archive/a.txt": Item("/Archive/a.txt", "file", "h2", 2, 1),
                       "/b.txt": Item("/B.txt", "file", "hb", 1, 1)}


def test_a_moved_folder_keeps_the_mtimes_of_its_files() -> None:
    t = tree_of(Item("/d", "folder"), Item("/d/x", "file", "h", 1, 1))
    t.modified["/d/x"] = 123.0
    t.apply(change("move", "/e", "folder", from_path="/d"), under("/"))
    assert t.modified == {"/e/x": 123.0}
    t.apply(change("commit", "/e/x", version=2, h="h2"), under("/"))
    assert t.modified == {}  # the journal does not carry the file's mtime


def test_changes_outside_the_remote_folder_are_ignored_or_cross_it() -> None:
    t = tree_of(Item("/d", "folder"), Item("/d/x", "file", "h", 1, 1))
    to_rel = under("/R")
    t.apply(change("commit", "/other.txt", version=1, h="o"), to_rel)
    t.apply(change("move", "/R/in.txt", from_path="/out.txt", version=3, h="i"), to_rel)
    t.apply(change("move", "/gone", "folder", from_path="/R/d"), to_rel)
    assert t.items == {"/in.txt": Item("/in.txt", "file", "i", 3, 1)}


@pytest.mark.parametrize("c", [
    change("move", "/R/new", "folder", from_path="/elsewhere"),  # contents unknown here
    change("delete", "/R", "folder"),  # the remote folder itself
    change("move", "/S", "folder", from_path="/R"),
    change("delete", "/", "folder"),
    change("frobnicate", "/R/x"),
])
def test_what_the_journal_cannot_say_asks_for_a_listing(c: Change) -> None:
    with pytest.raises(NeedsListing):
        CachedTree().apply(c, under("/R"))
