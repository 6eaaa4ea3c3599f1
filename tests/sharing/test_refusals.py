"""The rules of ``client/sync/refusals.py`` on their own: which planned actions a read-only
refusal holds back, when it is forgotten, and its bound."""

from __future__ import annotations

from minidropbox.client.sync.refusals import MAX_REFUSALS, Refusals
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
