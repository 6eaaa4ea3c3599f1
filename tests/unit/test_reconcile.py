"""The three-way planner, case by case."""

from __future__ import annotations

from datetime import datetime

from minidropbox.core.reconcile import Item, Op, Plan, reconcile, tree
from minidropbox.core.sync_names import DeleteLimits, conflict_path, split_ext

NOW = datetime(2024, 5, 6, 7, 8, 9)


def f(path: str, h: str, version: int | None = 1) -> Item:
    return Item(path, "file", h, version)


def d(path: str) -> Item:
    return Item(path, "folder")


def plan(local: list[Item], base: list[Item], remote: list[Item], **kw: object) -> Plan:
    return reconcile(tree(local), tree(base), tree(remote), device="laptop", now=NOW,
                     **kw)  # type: ignore[arg-type]


def ops(p: Plan) -> list[tuple[str, str, str | None]]:
    return [(a.op.value, a.path, a.dest) for a in p.actions]


def test_agreement_is_a_done_plan() -> None:
    same = [d("/a"), f("/a/x", "h1")]
    assert plan(same, same, same).done


def test_one_sided_changes_flow_the_other_way() -> None:
    base = [f("/x", "h1"), f("/y", "h2")]
    p = plan([f("/x", "h9"), f("/new", "h3")], base, [f("/x", "h1"), f("/y", "h2")])
    assert ops(p) == [("upload", "/new", None), ("upload", "/x", None),
                      ("delete_remote", "/y", None)]
    p = plan(base, base, [f("/x", "h9", 2), f("/new", "h3")])
    assert ops(p) == [("download", "/new", None), ("download", "/x", None),
                      ("delete_local", "/y", None)]


def test_upload_names_the_remote_version_as_parent() -> None:
    p = plan([f("/x", "h2")], [f("/x", "h1", 4)], [f("/x", "h1", 4)])
    assert p.actions[0].remote is not None and p.actions[0].remote.version == 4


def test_both_edited_differently_is_one_conflict_copy_server_keeps_name() -> None:
    p = plan([f("/doc.txt", "mine")], [f("/doc.txt", "old")], [f("/doc.txt", "theirs", 2)])
    assert ops(p) == [("conflict", "/doc.txt",
                       "/doc (conflicted copy, laptop, 2024-05-06 070809).txt")]


def test_both_edited_the_same_way_agree() -> None:
    p = plan([f("/x", "new")], [f("/x", "old")], [f("/x", "new", 2)])
    assert ops(p) == [("agree", "/x", None)]


def test_edit_wins_over_delete_both_ways() -> None:
    base = [f("/x", "old")]
    assert ops(plan([f("/x", "edited")], base, [])) == [("upload", "/x", None)]
    assert ops(plan([], base, [f("/x", "edited", 2)])) == [("download", "/x", None)]


def test_rename_is_a_move_not_delete_and_upload() -> None:
    base = [f("/a.txt", "h1"), f("/keep", "k")]
    p = plan([f("/b.txt", "h1"), f("/keep", "k")], base, base)
    assert ops(p) == [("move_remote", "/a.txt", "/b.txt")]
    p = plan(base, base, [f("/b.txt", "h1"), f("/keep", "k")])
    assert ops(p) == [("move_local", "/a.txt", "/b.txt")]


def test_folder_move_is_one_move() -> None:
    base = [d("/a"), d("/a/s"), f("/a/1", "h1"), f("/a/s/2", "h2"), f("/z", "z")]
    moved = [d("/b"), d("/b/s"), f("/b/1", "h1"), f("/b/s/2", "h2"), f("/z", "z")]
    assert ops(plan(moved, base, base)) == [("move_remote", "/a", "/b")]
    assert ops(plan(base, base, moved)) == [("move_local", "/a", "/b")]


def test_remote_delete_of_folder_keeps_locally_changed_contents() -> None:
    base = [d("/a"), f("/a/1", "h1"), f("/a/2", "h2")]
    p = plan([d("/a"), f("/a/1", "h1"), f("/a/2", "changed")], base, [])
    assert sorted(ops(p)) == [("delete_local", "/a/1", None), ("mkdir_remote", "/a", None),
                              ("upload", "/a/2", None)]


def test_local_delete_of_folder_is_one_remote_delete() -> None:
    base = [d("/a"), f("/a/1", "h1"), f("/a/2", "h2")]
    p = plan([], base, base)
    assert ops(p) == [("delete_remote", "/a", None)]
    assert p.remote_deletes == 2


def test_local_delete_of_folder_keeps_remote_additions() -> None:
    base = [d("/a"), f("/a/1", "h1")]
    p = plan([], base, [*base, f("/a/new", "n")])
    assert sorted(ops(p)) == [("delete_remote", "/a/1", None), ("download", "/a/new", None),
                              ("mkdir_local", "/a", None)]


def test_files_still_being_written_are_left_alone() -> None:
    base = [f("/x", "h1")]
    p = plan([Item("/x", "file", None)], base, [f("/x", "h2", 2)])
    assert p.actions == [] and p.waiting == ["/x"] and not p.done


def test_new_server_generation_deletes_nothing() -> None:
    base = [f("/gone-here", "a"), f("/gone-there", "b"), f("/both", "c")]
    p = plan([f("/gone-there", "b"), f("/both", "mine")], base,
             [f("/gone-here", "a"), f("/both", "c")], base_trusted=False)
    assert sorted(ops(p)) == [
        ("conflict", "/both", "/both (conflicted copy, laptop, 2024-05-06 070809)"),
        ("download", "/gone-here", None), ("upload", "/gone-there", None)]


def test_mass_delete_is_refused_unless_allowed() -> None:
    base = [f(f"/f{i}", f"h{i}") for i in range(20)]
    p = plan(base[:5], base, base)
    assert p.refused and "15 of 20" in p.refused and "--allow-mass-delete" in p.refused
    assert all(a.op not in (Op.DELETE_LOCAL, Op.DELETE_REMOTE) for a in p.actions)
    assert plan(base[:5], base, base, allow_mass_delete=True).remote_deletes == 15
    assert plan(base[:15], base, base).refused is None  # a quarter is fine
    small = base[:3]
    assert plan([], small, small).refused is None  # tiny trees: only the absolute cap
    five = base[:5]
    refused = plan(five[:1], five, five).refused  # 4 of 5: asks
    assert refused is not None and "4 of 5" in refused
    assert plan(five[:3], five, five).refused is None  # 2 of 5: fine
    assert plan(five, five, five[:1]).refused is not None  # deleted here or there
    limits = DeleteLimits(max_deletes=2)
    assert plan(base[:17], base, base, limits=limits).refused is not None


def test_case_only_difference_is_the_same_entry() -> None:
    p = plan([f("/Readme.TXT", "h1")], [], [f("/readme.txt", "h1")])
    assert ops(p) == [("agree", "/readme.txt", None)]


def test_conflict_names() -> None:
    assert split_ext("a.tar.gz") == ("a.tar", ".gz")
    assert split_ext(".bashrc") == (".bashrc", "")
    taken = {"/x (conflicted copy, pc, 2024-05-06 070809).md"}
    name = conflict_path("/x.md", "pc", NOW, taken.__contains__)
    assert name == "/x (conflicted copy, pc, 2024-05-06 070809 2).md"
    assert conflict_path("/d/n", "a/b", NOW, lambda p: False) == \
        "/d/n (conflicted copy, ab, 2024-05-06 070809)"


def test_kind_clash_renames_the_local_side() -> None:
    p = plan([d("/x"), f("/x/mine.txt", "m")], [], [f("/x", "h")])
    assert ops(p) == [("conflict", "/x", "/x (conflicted copy, laptop, 2024-05-06 070809)")]


def test_an_empty_folder_yields_to_a_file_of_the_same_name() -> None:
    """Nothing is kept in an empty folder, so no conflicted copy: the folder goes, the file
    comes next round. (The simulation, seed 1155: a folder sync made here just before it
    died, unrecorded, met a file another device put there.)"""
    assert ops(plan([d("/x")], [], [f("/x", "h")])) == [("delete_local", "/x", None)]
    assert ops(plan([f("/x", "h")], [], [d("/x")])) == [("delete_remote", "/x", None)]


def test_a_file_moved_onto_an_empty_folder_of_the_other_side_stays_a_move() -> None:
    """Simulation seed 1049971: a file renamed here to a name another device had just given
    an empty folder on the server. The folder yields to the file, but the rename was planned
    as delete + upload, and the file lost its versions. The delete now waits one round, when
    the name is free and the rename is one move (both directions)."""
    base = [f("/z", "h"), f("/keep", "k")]
    p = plan([f("/b", "h"), f("/keep", "k")], base, [*base, d("/b")])
    assert ops(p) == [("delete_remote", "/b", None)] and p.held == ["/z"]
    p = plan([f("/b", "h"), f("/keep", "k")], base, base)
    assert ops(p) == [("move_remote", "/z", "/b")]
    p = plan([*base, d("/b")], base, [f("/b", "h"), f("/keep", "k")])
    assert ops(p) == [("delete_local", "/b", None)] and p.held == ["/z"]
    # Waited long enough (the folder would not go): as before, delete and upload.
    p = plan([f("/b", "h"), f("/keep", "k")], base, [*base, d("/b")],
             hold_expired=frozenset({"/z"}))
    assert ("delete_remote", "/z", None) in ops(p)


def test_a_file_moved_into_a_folder_moved_in_the_same_round_stays_a_move() -> None:
    """Simulation seed 1096224: folder ``c`` renamed to ``X.txt`` and file ``z`` moved into
    it, seen by one scan. The folder move claims everything under ``X.txt``, so ``z`` was
    deleted and its content uploaded as a new file next round, without its versions. Its
    delete now waits for the folder move; next round it is one move."""
    base = [d("/c"), f("/c/a", "h1"), f("/z", "h2")]
    moved = [d("/X.txt"), f("/X.txt/a", "h1"), f("/X.txt/c", "h2")]
    p = plan(moved, base, base)
    assert ops(p) == [("move_remote", "/c", "/X.txt")] and p.held == ["/z"]
    after = [d("/X.txt"), f("/X.txt/a", "h1"), f("/z", "h2")]
    p = plan(moved, [d("/X.txt"), f("/X.txt/a", "h1"), f("/z", "h2")], after)
    assert ops(p) == [("move_remote", "/z", "/X.txt/c")]


def test_an_unrecorded_folder_holding_only_what_was_deleted_yields_to_a_file() -> None:
    """Simulation seed 1054960: this client moved a file into a new folder on the server
    and died before recording the folder; the user then replaced the folder here with a
    file. The server's folder holds only that moved file, synced and deleted here since:
    nothing new is lost by removing it, so the file takes the name (no conflicted copy)."""
    p = plan([f("/c", "new file")], [f("/c/B", "moved")], [d("/c"), f("/c/B", "moved")])
    assert sorted(ops(p)) == [("delete_remote", "/c", None)]
    # The same, the other way round: a local folder holding only what the server deleted.
    p = plan([d("/c"), f("/c/B", "moved")], [f("/c/B", "moved")], [f("/c", "new file")])
    assert ("delete_local", "/c", None) in ops(p)
    # A file in it that is new or changed is kept: both sides changed something.
    p = plan([f("/c", "new file")], [f("/c/B", "moved")], [d("/c"), f("/c/B", "edited", 2)])
    assert ("conflict", "/c") in [(a.op.value, a.path) for a in p.actions]


def test_a_kind_swap_is_not_a_conflict_when_the_other_side_only_deleted_inside() -> None:
    """Simulation seed 601: a folder replaced by a file here, while on the server a file in
    that folder was deleted (by this client, which died before recording it). Nothing there
    is new or changed, so nothing is lost by replacing the folder: no conflicted copy."""
    base = [d("/z"), d("/z/c"), f("/z/x.txt", "old")]
    p = plan([f("/z", "new file")], base, [d("/z"), d("/z/c")])
    assert sorted(ops(p)) == [("delete_remote", "/z", None), ("forget", "/z/x.txt", None)]
    # Something new inside is another matter: both sides changed something.
    p = plan([f("/z", "new file")], base, [d("/z"), d("/z/c"), f("/z/new.txt", "n")])
    assert ("conflict", "/z") in [(a.op.value, a.path) for a in p.actions]


def settling(path: str, size: int) -> Item:
    """A new local file still being written (or renamed within the settle time of its
    mtime): the scan has not read it, only its size is known."""
    return Item(path, "file", None, size=size)


def sized(path: str, h: str, size: int, version: int | None = 1) -> Item:
    return Item(path, "file", h, version, size)


def test_a_delete_waits_while_a_new_file_of_the_same_size_settles() -> None:
    """A file renamed right after it was written (or downloaded): its old name is gone and
    the new one is still settling. Deleting the old name now, and uploading the new one
    when it settles, would lose the file's versions: the delete waits, then it is a move."""
    base = [sized("/a.txt", "h1", 5), sized("/keep", "k", 4)]
    p = plan([settling("/b.txt", 5), sized("/keep", "k", 4)], base, base)
    assert ops(p) == [] and p.held == ["/a.txt"] and p.waiting == ["/b.txt"]
    assert not p.done and p.remote_deletes == 0
    p = plan([sized("/b.txt", "h1", 5), sized("/keep", "k", 4)], base, base)
    assert ops(p) == [("move_remote", "/a.txt", "/b.txt")]


def test_a_delete_does_not_wait_for_a_file_of_another_size_or_for_ever() -> None:
    base = [sized("/a.txt", "h1", 5)]
    p = plan([settling("/b.txt", 6)], base, base)
    assert ops(p) == [("delete_remote", "/a.txt", None)] and p.held == []
    # Held long enough (the caller's clock says so): decided as if it were not there.
    p = plan([settling("/b.txt", 5)], base, base, hold_expired=frozenset({"/a.txt"}))
    assert ops(p) == [("delete_remote", "/a.txt", None)] and p.held == []
    # A settling file that is there on the server too is not new: no rename to wait for.
    p = plan([settling("/b.txt", 5)], base, [*base, sized("/b.txt", "h2", 5)])
    assert ops(p) == [("delete_remote", "/a.txt", None)]


def test_a_renamed_folder_whose_files_still_settle_waits_then_moves_whole() -> None:
    base = [d("/a"), sized("/a/1", "h1", 3), sized("/a/2", "h2", 7)]
    p = plan([d("/b"), settling("/b/1", 3), sized("/b/2", "h2", 7)], base, base)
    assert ops(p) == [] and p.held == ["/a"] and not p.done
    moved = [d("/b"), sized("/b/1", "h1", 3), sized("/b/2", "h2", 7)]
    assert ops(plan(moved, base, base)) == [("move_remote", "/a", "/b")]
    # A file of another size there: not the same folder; nothing waits (the file that
    # matches is moved alone, as before).
    p = plan([d("/b"), settling("/b/1", 4), sized("/b/2", "h2", 7)], base, base)
    assert ("delete_remote", "/a/1", None) in ops(p) and p.held == []
    p = plan([d("/b"), settling("/b/1", 3), sized("/b/2", "h2", 7)], base, base,
             hold_expired=frozenset({"/a", "/a/1"}))
    assert ("delete_remote", "/a/1", None) in ops(p) and p.held == []


def test_a_folder_whose_files_may_be_renamed_elsewhere_waits_with_them() -> None:
    base = [d("/a"), sized("/a/1", "h1", 3)]
    p = plan([settling("/moved-out", 3)], base, base)
    assert ops(p) == [] and sorted(p.held) == ["/a", "/a/1"]


def test_a_file_renamed_then_replaced_by_a_folder_of_its_old_name_is_moved() -> None:
    """Simulation seed 1068457: ``a`` renamed to ``X.txt``, then a folder ``a`` made here.
    The kind swap at ``a`` deleted the file on the server and ``X.txt`` was uploaded as a
    new file, its versions lost. It is a move; the folder goes over next round, once the
    move has freed the name. While ``X.txt`` still settles, the delete waits as for any
    rename."""
    base = [sized("/a", "h1", 5)]
    p = plan([d("/a"), f("/a/in.txt", "i"), sized("/X.txt", "h1", 5)], base, base)
    assert ops(p) == [("move_remote", "/a", "/X.txt")]
    p = plan([d("/a"), settling("/X.txt", 5)], base, base)
    assert ops(p) == [] and p.held == ["/a"] and p.remote_deletes == 0


def test_a_file_moved_into_a_folder_of_its_own_old_name_is_not_one_move() -> None:
    """Simulation seed 1003523: on the server ``z`` became ``z/y.txt`` (a folder took the
    file's name, the file went inside). No single local move does that, and planning one
    failed every round: the old file goes, and the folder and the file come next round."""
    base = [sized("/z", "h1", 5)]
    p = plan([sized("/z", "h1", 5)], base, [d("/z"), sized("/z/y.txt", "h1", 5, 2)])
    assert ("move_local", "/z", "/z/y.txt") not in ops(p)
    assert ops(p) == [("delete_local", "/z", None)]


def test_a_large_agreed_tree_plans_only_what_changed_in_it() -> None:
    """The planner skips what both sides hold as the base before it sorts anything; what
    is left must be planned as if the whole tree were looked at: a version-only change
    still agrees, a folder spelled differently above an unchanged leaf is no case rename,
    and moves, respells and deletes among thousands of agreed items come out whole."""
    same = [d("/docs"), d("/Pics"), *(f(f"/docs/n{i}.txt", f"h{i}") for i in range(2000)),
            *(f(f"/Pics/p{i}.jpg", f"p{i}") for i in range(50))]
    base = [*same, f("/old.txt", "moved"), f("/v.txt", "hv"), f("/Case.txt", "hc"),
            f("/gone.txt", "hg")]
    local = [*same, f("/new/place.txt", "moved"), d("/new"), f("/v.txt", "hv"),
             f("/case.txt", "hc"), f("/gone.txt", "hg")]
    remote = [*(x if x.path != "/Pics" else d("/pics") for x in same),
              f("/old.txt", "moved"), f("/v.txt", "hv", 2), f("/Case.txt", "hc")]
    remote = [x if not x.path.startswith("/Pics/") else Item("/pics" + x.path[5:], x.kind,
                                                              x.hash, x.version)
              for x in remote]
    p = plan(local, base, remote)
    assert ops(p) == [("move_remote", "/Case.txt", "/case.txt"),
                      ("move_remote", "/old.txt", "/new/place.txt"),
                      ("move_local", "/Pics", "/pics"),
                      ("mkdir_remote", "/new", None),
                      ("agree", "/v.txt", None),
                      ("delete_local", "/gone.txt", None)]
