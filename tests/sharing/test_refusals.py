"""The rules of ``client/sync/refusals.py`` on their own: which planned actions a read-only
refusal holds back, when it is forgotten, and its bound."""

from __future__ import annotations

from minidropbox.client.sync.refusals import MAX_REFUSALS, Refusals
from minidropbox.client.sync.state import BaseRow, LocalStat
from minidropbox.core.reconcile import Action, Item, Op, Plan


def _upload(path: str, content: str) -> Action:
    return Action(Op.UPLOAD, path, "file", local=Item(path, "file", content))


def test_a_refused_change_is_held_until_it_changes() -> None:
    refusals = Refusals()
    refusals.add("/Read/a.txt", "h1", "/Read is shared with you read-only.")
    refusals.add("/Read/New", None, "/Read is shared with you read-only.")
    mkdir = Action(Op.MKDIR_REMOTE, "/Read/New", "folder", local=Item("/Read/New", "folder"))
    other = _upload("/mine.txt", "h9")
    plan = Plan(actions=[_upload("/read/A.TXT", "h1"), mkdir, other])
    assert refusals.hold_back(plan).actions == [other]  # keys are case-insensitive
    assert refusals.lines() == [  # by path key
        "/Read/a.txt: not uploaded: /Read is shared with you read-only. Your edit is kept on "
        "this computer only; change it again to retry.",
        "/Read/New: not uploaded: /Read is shared with you read-only. Your folder is kept on "
        "this computer only; change it again to retry."]
    # A new edit is a new change: tried again.
    assert refusals.hold_back(Plan(actions=[_upload("/Read/a.txt", "h2")])).actions
    refusals.prune({"/read/a.txt": Item("/Read/a.txt", "file", "h2"),
                    "/read/new": Item("/Read/New", "folder")})
    assert [line.split(":")[0] for line in refusals.lines()] == ["/Read/New"]
    refusals.prune({})  # gone here: forgotten
    assert refusals.lines() == []


def test_refusals_are_bounded() -> None:
    refusals = Refusals()
    for i in range(MAX_REFUSALS + 10):
        refusals.add(f"/Read/{i}.txt", "h", "read-only")
    assert len(refusals.lines()) == MAX_REFUSALS


def test_a_held_file_is_not_read_again_while_its_stat_stays() -> None:
    refusals = Refusals()
    stat = LocalStat(size=5, mtime_ns=10, ctime_ns=10, ino=7)
    base = {"/read/a.txt": BaseRow(Item("/Read/a.txt", "file", "h0", 1, 3), LocalStat(3, 1, 1, 7))}
    assert refusals.known_stats(base) is base
    refusals.add("/Read/a.txt", "h1", "read-only", stat)
    refusals.add("/Read/fresh.txt", "h2", "read-only", None)  # stat not trusted: read again
    rows = refusals.known_stats(base)
    assert rows["/read/a.txt"] == BaseRow(Item("/Read/a.txt", "file", "h1"), stat)
    assert "/read/fresh.txt" not in rows
    assert base["/read/a.txt"].item.hash == "h0"  # the state's own rows are not changed
