"""Case rules of sync, against the real engine with an in-memory folder and server.

The server compares names case-insensitively and keeps the spelling it was given; a local
disk may be case-sensitive (Linux) or not (macOS, Windows). So: downloads go into the local
spelling of folders that exist here, and two local names that differ only in case are kept
apart (one renamed "(case conflict)", and reported), never skipped, since a skipped item
looks deleted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from minidropbox.client.fakefolder import FakeFolder, FaultyFolder
from minidropbox.client.localpaths import TMP_PREFIX
from minidropbox.client.sync.engine import SyncEngine, SyncOptions
from minidropbox.client.sync.ignore import IgnoreRules
from minidropbox.client.sync.scanner import scan
from minidropbox.client.sync.status import Status
from tests.unit.fake_server import FakeServer
from tests.unit.test_sync_folder_faults import engine_for


def names(folder: FakeFolder) -> set[str]:
    return set(folder.tree())


@pytest.mark.parametrize("case_insensitive", [False, True])
def test_a_remote_add_lands_in_the_local_spelling_of_a_renamed_folder(
        tmp_path: Path, case_insensitive: bool) -> None:
    """docs -> Docs here; another device adds docs/new.txt. It must arrive as Docs/new.txt,
    not in a sibling folder ``docs``, and must never be deleted on the server as if the
    user had removed it."""
    folder = FakeFolder(case_insensitive=case_insensitive)
    server = FakeServer()
    folder.write("docs/old.txt", b"old")
    engine = engine_for(folder, server, tmp_path)
    try:
        assert engine.sync().done
        folder.rename("docs", "Docs", replace=False)
        server.put_file("/docs/new.txt", b"written elsewhere")
        assert engine.sync().done
        assert engine.sync().done  # and the round after that changes nothing
        assert folder.read("Docs/new.txt") == b"written elsewhere"
        assert "docs" not in names(folder) and "docs/new.txt" not in names(folder)
        on_server = {p.lower(): data for p, data in server.files().items()}
        assert on_server == {"/docs/new.txt": b"written elsewhere", "/docs/old.txt": b"old"}
    finally:
        engine.close()


def test_two_local_names_differing_only_in_case_are_kept_apart_and_reported(
        tmp_path: Path) -> None:
    folder = FakeFolder()  # case-sensitive, as on Linux
    folder.write("Notes.txt", b"upper")
    folder.write("notes.txt", b"lower")
    folder.write("dir/a.txt", b"in dir")
    folder.write("DIR/b.txt", b"in DIR")
    local = scan(folder, IgnoreRules.load(folder), {}, settle=0.0)
    assert sorted(local.case_conflicts) == [
        "dir differs only in case from /DIR: renamed to dir (case conflict)",
        "notes.txt differs only in case from /Notes.txt: renamed to notes (case conflict).txt",
    ]
    assert not local.skipped
    assert names(folder) == {"Notes.txt", "notes (case conflict).txt", "DIR", "DIR/b.txt",
                             "dir (case conflict)", "dir (case conflict)/a.txt"}
    server = FakeServer()
    engine = engine_for(folder, server, tmp_path)
    try:
        assert engine.sync().done
        assert server.files() == {"/Notes.txt": b"upper", "/notes (case conflict).txt": b"lower",
                                  "/DIR/b.txt": b"in DIR", "/dir (case conflict)/a.txt": b"in dir"}
    finally:
        engine.close()


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_the_synced_name_keeps_its_spelling_and_the_newcomer_is_renamed(
        tmp_path: Path, kind: str) -> None:
    """Simulation seeds 1018086 and 1034550: ``dir`` is synced, then a new ``DIR`` appears
    beside it (a case-sensitive disk lists ``DIR`` first). Renaming the synced ``dir`` made
    all it held look deleted under the key ``DIR`` now took, and a user moving it in the
    same round turned that into a delete and an upload (its versions lost). The newcomer
    is the one renamed apart."""
    folder = FakeFolder()
    server = FakeServer()
    folder.write("dir/a.txt", b"synced")
    engine = engine_for(folder, server, tmp_path)
    try:
        assert engine.sync().done
        if kind == "file":
            folder.write("DIR", b"new")
        else:
            folder.write("DIR/b.txt", b"new")
        assert engine.sync().done
        assert folder.read("dir/a.txt") == b"synced"
        assert server.content("/dir/a.txt") == b"synced"
        new = "DIR (case conflict)" + ("/b.txt" if kind == "folder" else "")
        assert folder.read(new) == b"new" and server.content("/" + new) == b"new"
    finally:
        engine.close()


def test_a_case_conflict_name_already_taken_gets_a_number(tmp_path: Path) -> None:
    folder = FakeFolder()
    folder.write("a.txt", b"1")
    folder.write("A.txt", b"2")
    folder.write("a (case conflict).txt", b"3")
    local = scan(folder, IgnoreRules.load(folder), {}, settle=0.0)
    assert len(local.case_conflicts) == 1
    assert folder.read("a (case conflict 2).txt") == b"1"
    assert folder.read("A.txt") == b"2" and folder.read("a (case conflict).txt") == b"3"


@pytest.mark.parametrize("case_insensitive", [False, True])
@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_case_only_rename_is_a_move_to_the_server_and_to_other_devices(
        tmp_path: Path, case_insensitive: bool, kind: str) -> None:
    one = FakeFolder(case_insensitive=case_insensitive)
    two = FakeFolder(case_insensitive=not case_insensitive)
    server = FakeServer()
    old, new = ("a.txt", "A.txt") if kind == "file" else ("docs", "Docs")
    one.write("docs/x.txt" if kind == "folder" else "a.txt", b"content")
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = engine_for(one, server, tmp_path / "one")
    second = engine_for(two, server, tmp_path / "two")
    try:
        assert first.sync().done and second.sync().done
        one.rename(old, new, replace=False)
        assert first.sync().done
        want = "/A.txt" if kind == "file" else "/Docs/x.txt"
        assert server.files() == {want: b"content"}
        assert second.sync().done
        assert set(two.tree()) == set(one.tree())
        assert new in two.tree() and old not in two.tree()
        assert first.sync().done and second.sync().done  # settled: nothing moves back
        assert server.files() == {want: b"content"}
    finally:
        first.close()
        second.close()


def test_both_sides_respelling_differently_take_the_servers_spelling(tmp_path: Path) -> None:
    folder = FakeFolder()
    server = FakeServer()
    folder.write("a.txt", b"content")
    engine = engine_for(folder, server, tmp_path)
    try:
        assert engine.sync().done
        folder.rename("a.txt", "A.txt", replace=False)
        server.move("/a.txt", "/A.TXT")
        assert engine.sync().done
        assert set(folder.tree()) == {"A.TXT"} and server.files() == {"/A.TXT": b"content"}
    finally:
        engine.close()


@pytest.mark.parametrize("where", ["local", "server"])
@pytest.mark.parametrize("swap", ["file->folder", "folder->file"])
def test_a_kind_swap_on_one_side_replaces_without_a_conflict(
        tmp_path: Path, where: str, swap: str) -> None:
    folder = FakeFolder()
    server = FakeServer()
    if swap == "file->folder":
        folder.write("x", b"a file")
    else:
        folder.write("x/inner.txt", b"in a folder")
    engine = engine_for(folder, server, tmp_path)
    try:
        assert engine.sync().done
        if where == "local":
            if swap == "file->folder":
                folder.unlink("x")
                folder.write("x/new.txt", b"now a folder")
            else:
                folder.unlink("x/inner.txt")
                folder.rmdir("x")
                folder.write("x", b"now a file")
        else:
            server.delete("/x")
            server.put_file("/x/new.txt" if swap == "file->folder" else "/x",
                            b"now a folder" if swap == "file->folder" else b"now a file")
        assert engine.sync().done
        want = ({"/x/new.txt": b"now a folder"} if swap == "file->folder"
                else {"/x": b"now a file"})
        assert server.files() == want
        assert {"/" + n: d for n, d in folder.tree().items() if d is not None} == want
    finally:
        engine.close()


def test_a_folder_moved_during_a_download_keeps_no_temp_file(tmp_path: Path) -> None:
    fake = FakeFolder()
    folder = FaultyFolder(fake)
    server = FakeServer()
    fake.write("d/old.txt", b"old")
    engine = engine_for(folder, server, tmp_path)
    try:
        assert engine.sync().done
        server.put_file("/d/new.txt", b"new")
        # The user moves the folder after the download's temp file is written, before it
        # is renamed into place.
        folder.before_next("rename", lambda: fake.rename("d", "e", replace=False))
        engine.round()
        assert not [n for n in fake.tree() if n.rsplit("/", 1)[-1].startswith(TMP_PREFIX)]
        assert engine.sync().done
        assert server.files() == {"/e/old.txt": b"old", "/e/new.txt": b"new"}
        assert {n: d for n, d in fake.tree().items() if d is not None} == {
            "e/old.txt": b"old", "e/new.txt": b"new"}
    finally:
        engine.close()


@pytest.mark.parametrize(("moved_before", "name"), [
    ("create_temp", None), ("rename", None), ("info", "d/a.txt")])
def test_downloads_into_a_folder_moved_meanwhile_follow_it_without_failing(
        tmp_path: Path, moved_before: str, name: str | None) -> None:
    """The user moves the folder while its downloads are being fetched (``create_temp``),
    renamed into place (``rename``), or just after the first one landed (``info``, read to
    record it). The folder is not made again for the downloads still to come, none of them
    counts as failed (it would be reported, and a running sync would back off), and the next
    round moves the server's folder too and brings the rest into it."""
    fake = FakeFolder()
    folder = FaultyFolder(fake)
    server = FakeServer()
    fake.write("d/old.txt", b"old")
    # One transfer at a time: the move lands between two downloads, always the same two.
    engine = SyncEngine(server.remote(), folder, tmp_path / "state.db",
                        SyncOptions(root=Path("/fake"), settle=0.0, transfer_workers=1),
                        Status(quiet=True))
    engine.open()
    try:
        assert engine.sync().done
        server.put_file("/d/a.txt", b"a")
        server.put_file("/d/b.txt", b"b")
        folder.before_next(moved_before, lambda: fake.rename("d", "e", replace=False), name)
        first = engine.round()
        assert first.outcome.failed == []
        assert "d" not in fake.tree()
        assert engine.sync().done
        want = {"/e/old.txt": b"old", "/e/a.txt": b"a", "/e/b.txt": b"b"}
        assert server.files() == want
        assert {"/" + n: d for n, d in fake.tree().items() if d is not None} == want
        assert not [n for n in fake.tree() if n.rsplit("/", 1)[-1].startswith(TMP_PREFIX)]
    finally:
        engine.close()
