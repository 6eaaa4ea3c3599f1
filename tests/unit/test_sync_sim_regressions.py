"""Bugs the sync simulation (tests/simulation) found, each pinned by a deterministic test
against the real engine, an in-memory folder and the in-memory server, with the clock held
still where the bug needed two things to happen in the same clock tick.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from minidropbox.client.api import ServerUnreachable
from minidropbox.client.fakefolder import FakeFolder, FaultyFolder, SimulatedCrash
from minidropbox.client.localfolder import LocalFolder
from minidropbox.client.sync.engine import SyncEngine, SyncOptions
from minidropbox.client.sync.status import Status
from tests.unit.fake_server import Answer, Call, FakeServer, Serve

T0 = 1_700_000_000 * 10**9


class Tick:
    """A clock that moves only when told (epoch ns)."""

    def __init__(self) -> None:
        self.ns = T0

    def __call__(self) -> int:
        return self.ns


def engine_at(folder: LocalFolder, server: FakeServer, tmp_path: Path, clock: Tick,
              name: str = "state.db", serve: Serve | None = None,
              settle: float = 0.0) -> SyncEngine:
    """A sync engine on ``folder`` at the held clock; ``serve`` stands between it and the
    server (faults), if given."""
    engine = SyncEngine(server.direct_remote(serve), folder, tmp_path / name,
                        SyncOptions(root=Path("/fake"), settle=settle), Status(quiet=True),
                        now_ns=clock, monotonic=lambda: clock() / 1e9)
    engine.open()
    return engine


def test_an_edit_in_the_same_tick_as_a_download_is_still_uploaded(tmp_path: Path) -> None:
    """Seeds 1297 and 1433: a download placed, then the user overwrites it in the same clock
    tick with as many bytes. Size, mtime, ctime and inode all equal what the download
    recorded, so the scan trusted the recorded hash: the edit was never uploaded, and the
    next download from the server would have overwritten it."""
    clock = Tick()
    folder = FakeFolder(clock=clock)
    server = FakeServer()
    engine = engine_at(folder, server, tmp_path, clock)
    try:
        assert engine.sync().done
        # Learnt from the journal, which carries no mtime: the file gets the time of writing.
        server.put_file("/x.txt", b"from the server")
        assert engine.sync().done
        assert folder.read("x.txt") == b"from the server"
        folder.write("x.txt", b"the user's edit")  # same length, same instant
        clock.ns += 1_000_000_000
        assert engine.sync().done
        assert server.content("/x.txt") == b"the user's edit"
    finally:
        engine.close()


def test_a_download_whose_mtime_is_old_is_not_read_again(tmp_path: Path) -> None:
    """The racy rule costs nothing in the usual case: a download given the server version's
    (older) mtime records its stat and is not hashed again next round."""
    clock = Tick()
    folder = FakeFolder(clock=clock)
    server = FakeServer()
    server.put_file("/old.txt", b"written long ago", mtime=(T0 / 1e9) - 3600)
    engine = engine_at(folder, server, tmp_path, clock)
    try:
        assert engine.sync().done
        clock.ns += 1_000_000_000
        assert engine.round().scan.hashed == 0
    finally:
        engine.close()


def conflicted(folder: FakeFolder) -> list[str]:
    return [name for name in folder.tree() if "conflicted copy" in name]


def test_a_download_placed_just_before_a_crash_is_not_a_conflict_later(
        tmp_path: Path) -> None:
    """Seed 1037: the daemon died after renaming a download into place, before its row was
    committed. Another device then edited the file: with no row, the file looked changed on
    both sides, and a conflicted copy appeared that nobody had made. The download is written
    down as pending before the rename, and the next round sees it landed (same inode)."""
    clock = Tick()
    fake = FakeFolder(clock=clock)
    folder = FaultyFolder(fake)
    server = FakeServer()
    engine = engine_at(fake, server, tmp_path, clock)
    assert engine.sync().done
    engine.close()
    server.put_file("/doc.txt", b"version 1")
    engine = engine_at(folder, server, tmp_path, clock)
    folder.crash_after("rename")
    with pytest.raises(SimulatedCrash):
        engine.sync()
    assert engine.state is not None
    engine.state.conn.close()  # the process died: nothing more is committed
    assert fake.read("doc.txt") == b"version 1"
    server.put_file("/doc.txt", b"version 2 from elsewhere")
    clock.ns += 1_000_000_000
    engine = engine_at(fake, server, tmp_path, clock)
    try:
        assert engine.sync().done
        assert fake.read("doc.txt") == b"version 2 from elsewhere"
        assert conflicted(fake) == []
    finally:
        engine.close()


@pytest.mark.parametrize("lost", ["answer", "process"])
def test_an_upload_that_landed_unrecorded_then_edited_is_not_a_conflict(
        tmp_path: Path, lost: str) -> None:
    """Seed 319: the commit of an upload reached the server but its answer was lost (or the
    daemon died before writing the row); the user then edited the file. Local and server
    both differed from the last row: a conflicted copy, though only one person ever wrote.
    The upload is written down as pending first, and the next round finds its content on
    the server."""
    clock = Tick()
    fake = FakeFolder(clock=clock)
    server = FakeServer()
    fake.write("notes.txt", b"first draft", mtime_ns=T0 - 10**9)
    state: dict[str, bool] = {"fail": True}

    def serve(call: Call) -> Answer:
        answer = server.serve(call)
        if call.path == "/files/commit_batch" and state.pop("fail", False):
            if lost == "answer":
                raise ServerUnreachable("the answer was lost")
            raise SimulatedCrash("died with the answer in flight")
        return answer

    engine = engine_at(fake, server, tmp_path, clock, serve=serve)
    if lost == "answer":
        engine.round()  # the upload fails, as far as this client knows
    else:
        with pytest.raises(SimulatedCrash):
            engine.round()
        assert engine.state is not None
        engine.state.conn.close()
        engine = engine_at(fake, server, tmp_path, clock)
    assert server.content("/notes.txt") == b"first draft"
    clock.ns += 1_000_000_000
    fake.write("notes.txt", b"second draft, longer")
    clock.ns += 1_000_000_000
    try:
        assert engine.sync().done
        assert server.content("/notes.txt") == b"second draft, longer"
        assert conflicted(fake) == [] and not [p for p in server.files() if "conflicted" in p]
    finally:
        engine.close()


@pytest.mark.parametrize("lost", ["none", "answer"])
def test_a_file_written_between_the_scan_and_the_upload_is_not_a_conflict(
        tmp_path: Path, lost: str) -> None:
    """Seeds 1020185, 1070787 and 1096662: the user saved a file again after the scan hashed
    it and before the upload read it. The upload committed the newer content while the
    round recorded (as pending, or as the row) the hash it had planned; when the row was
    then lost (a lost answer, a crash), the server's content matched nothing this client
    knew, and the next edit made a conflicted copy though only one person ever wrote. An
    upload now commits only the content its round planned; newer content waits a round."""
    clock = Tick()
    inner = FakeFolder(clock=clock)
    fake = FaultyFolder(inner)
    server = FakeServer()
    inner.write("notes.txt", b"first draft", mtime_ns=T0 - 10**9)
    state: dict[str, bool] = {"fail": lost == "answer"}

    def serve(call: Call) -> Answer:
        answer = server.serve(call)
        if call.path == "/files/commit_batch" and state.pop("fail", False):
            raise ServerUnreachable("the answer was lost")
        return answer

    engine = engine_at(fake, server, tmp_path, clock, serve=serve)

    def saved_again() -> None:  # the scan reads the file first, then the upload does
        inner.write("notes.txt", b"second draft")

    fake.before_next("open_read", lambda: fake.before_next("open_read", saved_again,
                                                           "notes.txt"), "notes.txt")
    try:
        engine.round()
        assert "/notes.txt" not in server.files()  # not what the round planned: not sent
        clock.ns += 1_000_000_000
        inner.write("notes.txt", b"third draft, longer")
        clock.ns += 1_000_000_000
        assert engine.sync().done
        assert server.content("/notes.txt") == b"third draft, longer"
        assert conflicted(inner) == [] and not [p for p in server.files() if "conflicted" in p]
    finally:
        engine.close()


def test_a_folder_made_just_before_a_crash_yields_to_a_file_put_there(tmp_path: Path) -> None:
    """Seed 1155: sync made folder /x here and died before recording it; another device then
    replaced the server's folder /x with a file. An empty folder holds nothing to keep: the
    file takes the name, with no conflicted copy."""
    clock = Tick()
    fake = FakeFolder(clock=clock)
    server = FakeServer()
    fake.mkdir("x")  # as the executor's mkdir left it, unrecorded
    server.put_file("/x", b"a file now")
    engine = engine_at(fake, server, tmp_path, clock)
    try:
        assert engine.sync().done
        assert fake.read("x") == b"a file now"
        assert conflicted(fake) == []
    finally:
        engine.close()


@pytest.mark.parametrize("made_here", [True, False])
def test_folders_made_just_before_a_crash_yield_to_a_file_put_there(
        tmp_path: Path, made_here: bool) -> None:
    """Seed 1002858: sync made folder /x and the folder /x/c in it here and died before
    recording either; another device then replaced the server's folder /x with a file. A
    folder holding only folders holds nothing to keep either: all of them go, the file takes
    the name, and no conflicted copy appears. The same holds the other way round (the folders
    on the server, the file here)."""
    clock = Tick()
    fake = FakeFolder(clock=clock)
    server = FakeServer()
    if made_here:
        fake.mkdir("x")  # as the executor's mkdirs left them, unrecorded
        fake.mkdir("x/c")
        server.put_file("/x", b"a file now")
    else:
        server.make_folder("/x/c")
        fake.write("x", b"a file now")
    engine = engine_at(fake, server, tmp_path, clock)
    try:
        assert engine.sync().done
        assert fake.read("x") == b"a file now"
        assert server.files() == {"/x": b"a file now"}
        assert conflicted(fake) == []
    finally:
        engine.close()


def test_a_folder_made_on_the_server_just_before_a_crash_does_not_block_a_swap(
        tmp_path: Path) -> None:
    """Seed 1002491: sync made folder /y/z on the server (the user had made it here) and
    died before recording it; meanwhile the user replaced the folder /y with a file. The
    unrecorded folder is no change of the server's that replacing /y would lose: the file
    replaces the folder everywhere, with no conflicted copy."""
    clock = Tick()
    fake = FakeFolder(clock=clock)
    server = FakeServer()
    fake.write("y/a", b"in the folder")
    engine = engine_at(fake, server, tmp_path, clock)
    try:
        assert engine.sync().done
        server.make_folder("/y/z")  # as the executor's request left it, unrecorded
        fake.unlink("y/a")
        fake.rmdir("y")
        fake.write("y", b"a file now")
        clock.ns += 10**9
        assert engine.sync().done
        assert fake.read("y") == b"a file now"
        assert server.tree() == {"/y": b"a file now"}
        assert conflicted(fake) == []
    finally:
        engine.close()


@pytest.mark.parametrize("server_side", ["deleted", "edited"])
def test_a_save_between_the_check_and_the_delete_or_replace_is_kept(
        tmp_path: Path, server_side: str) -> None:
    """Seed 566: the server deleted a file; the executor checked the local copy was the
    synced one, then the user saved an edit, then the executor unlinked it: the edit was
    gone, on no device and in no trash. The file is now renamed aside first and checked
    after the rename, so the save is caught and the file put back (then uploaded, or kept
    as a conflicted copy next to the server's edit)."""
    clock = Tick()
    fake = FakeFolder(clock=clock)
    server = FakeServer()
    fake.write("f.txt", b"synced", mtime_ns=T0 - 10**10)
    engine = engine_at(fake, server, tmp_path, clock)
    assert engine.sync().done
    engine.close()
    if server_side == "deleted":
        server.delete("/f.txt")
    else:
        server.put_file("/f.txt", b"edited elsewhere")
    clock.ns += 10**9
    folder = FaultyFolder(fake)
    folder.before_next("rename", lambda: fake.write("f.txt", b"saved by the user"),
                       name="f.txt")
    engine = engine_at(folder, server, tmp_path, clock)
    try:
        engine.round()
        assert fake.read("f.txt") == b"saved by the user"
        clock.ns += 10**9
        assert engine.sync().done
        contents = set(server.files().values())
        assert b"saved by the user" in contents
        if server_side == "edited":
            assert b"edited elsewhere" in contents
    finally:
        engine.close()


def test_a_file_set_aside_when_the_process_died_is_put_back_unless_synced(
        tmp_path: Path) -> None:
    """After a crash between setting a file aside and deleting it: the aside file holding
    the synced content goes (it is on the server); one holding anything else is the user's
    and gets its name back."""
    clock = Tick()
    fake = FakeFolder(clock=clock)
    server = FakeServer()
    fake.write("a.txt", b"synced a", mtime_ns=T0 - 10**10)
    fake.write("b.txt", b"synced b", mtime_ns=T0 - 10**10)
    engine = engine_at(fake, server, tmp_path, clock)
    assert engine.sync().done
    engine.close()
    fake.rename("a.txt", ".minidropbox-aside-a.txt", replace=False)
    fake.rename("b.txt", ".minidropbox-aside-b.txt", replace=False)
    fake.write(".minidropbox-aside-b.txt", b"edited just then")
    engine = engine_at(fake, server, tmp_path, clock)
    try:
        assert sorted(fake.tree()) == ["b.txt"]
        assert fake.read("b.txt") == b"edited just then"
    finally:
        engine.close()


def test_a_file_set_aside_in_a_folder_left_halfway_through_a_respell_is_recovered(
        tmp_path: Path) -> None:
    """One walk at start finds both: the case-only rename is finished first, then the file
    set aside inside that folder (now under its new name) goes, as it holds its synced
    content, and the temp file a download left there is removed."""
    clock = Tick()
    fake = FakeFolder(clock=clock)
    server = FakeServer()
    fake.write("d/a.txt", b"synced a", mtime_ns=T0 - 10**10)
    engine = engine_at(fake, server, tmp_path, clock)
    assert engine.sync().done
    engine.close()
    fake.rename("d/a.txt", "d/.minidropbox-aside-a.txt", replace=False)
    fake.write("d/.minidropbox-tmp-1", b"half a download")
    fake.rename("d", ".minidropbox-respell-D", replace=False)
    engine = engine_at(fake, server, tmp_path, clock)
    try:
        assert sorted(fake.tree()) == ["D"]
    finally:
        engine.close()


def test_a_move_made_just_before_a_crash_then_edited_is_not_a_conflict(
        tmp_path: Path) -> None:
    """Seeds 873 and 1443: sync moved a file on the server (the user had renamed it here)
    and died before renaming its row; the user then edited it. With the row still at the
    old name, the new name looked new on both sides, differently: a conflicted copy. The
    move is written down first, and the next round renames the row."""
    clock = Tick()
    fake = FakeFolder(clock=clock)
    server = FakeServer()
    fake.write("x.txt", b"draft", mtime_ns=T0 - 10**10)
    engine = engine_at(fake, server, tmp_path, clock)
    assert engine.sync().done
    engine.close()
    fake.rename("x.txt", "a.txt", replace=False)

    def serve(call: Call) -> Answer:
        answer = server.serve(call)
        if call.path == "/files/move":
            raise SimulatedCrash("died with the move done")
        return answer

    engine = engine_at(fake, server, tmp_path, clock, serve=serve)
    with pytest.raises(SimulatedCrash):
        engine.round()
    assert engine.state is not None
    engine.state.conn.close()
    assert set(server.files()) == {"/a.txt"}
    clock.ns += 10**9
    fake.write("a.txt", b"draft, then edited")
    clock.ns += 10**9
    engine = engine_at(fake, server, tmp_path, clock)
    try:
        assert engine.sync().done
        assert server.files() == {"/a.txt": b"draft, then edited"}
        assert conflicted(fake) == []
    finally:
        engine.close()


@pytest.mark.parametrize("case_insensitive", [False, True])
def test_a_case_rename_cut_in_half_by_a_crash_is_finished_not_synced(
        tmp_path: Path, case_insensitive: bool) -> None:
    """Seed 180: a case-only rename here goes through an intermediate name; a crash between
    its two renames left ``X.txt.renaming``, which the next round uploaded as the user's
    rename, to every device. The intermediate name is now ignored, and finished at start."""
    clock = Tick()
    fake = FakeFolder(clock=clock, case_insensitive=case_insensitive)
    folder = FaultyFolder(fake)
    server = FakeServer()
    fake.write("x.txt", b"one", mtime_ns=T0 - 10**10)
    engine = engine_at(fake, server, tmp_path, clock)
    assert engine.sync().done
    engine.close()
    server.move("/x.txt", "/X.txt")  # respelled on another device
    engine = engine_at(folder, server, tmp_path, clock)
    folder.crash_after("rename", name="x.txt")
    with pytest.raises(SimulatedCrash):
        engine.round()
    assert engine.state is not None
    engine.state.conn.close()
    clock.ns += 10**9
    engine = engine_at(fake, server, tmp_path, clock)
    try:
        assert engine.sync().done
        assert fake.tree() == {"X.txt": b"one"}
        assert server.files() == {"/X.txt": b"one"}
    finally:
        engine.close()


def test_a_folder_moved_while_the_scan_walks_it_deletes_nothing(tmp_path: Path) -> None:
    """Seed 1005529: the user moved folder ``a`` (listed by its parent) to ``B`` (already
    walked past) just before the scan listed ``a``'s contents. The walk found ``a`` gone and
    nothing under it, so its files looked deleted and were deleted on the server, then
    uploaded again under ``B``: their versions were lost. What a folder that vanished
    mid-walk held is unknown, not gone: nothing in it is deleted that round."""
    clock = Tick()
    fake = FakeFolder(clock=clock)
    folder = FaultyFolder(fake)
    server = FakeServer()
    fake.write("a/x.txt", b"version 1")
    engine = engine_at(folder, server, tmp_path, clock)
    try:
        assert engine.sync().done
        fake.write("a/x.txt", b"version 2")
        clock.ns += 1_000_000_000
        assert engine.sync().done
        folder.before_next("list", lambda: fake.rename("a", "B", replace=False), name="a")
        engine.sync()
        clock.ns += 1_000_000_000
        assert engine.sync().done
        assert [(e["op"], e["path"]) for e in server.journal if e["op"] == "delete"] == []
        assert server.files() == {"/B/x.txt": b"version 2"}
        assert server.entries["/b/x.txt"].version == 2
    finally:
        engine.close()


def test_a_delete_under_a_folder_respelled_in_the_same_round_happens(tmp_path: Path) -> None:
    """Seeds 1000269 and 1001209: another device respelled folder ``z`` -> ``Z`` and deleted
    a file in it. This (case-sensitive) client respelled its folder, then looked for the
    file under the old spelling, found nothing, and forgot the file's row: the next round
    took the file for a new one and uploaded the deleted file again."""
    clock = Tick()
    folder = FakeFolder(clock=clock)
    server = FakeServer()
    folder.write("z/x.txt", b"deleted elsewhere")
    folder.write("z/keep.txt", b"kept")
    engine = engine_at(folder, server, tmp_path, clock)
    try:
        assert engine.sync().done
        server.move("/z", "/Z")
        server.delete("/Z/x.txt")
        clock.ns += 1_000_000_000
        assert engine.sync().done
        assert set(folder.tree()) == {"Z", "Z/keep.txt"}
        assert server.files() == {"/Z/keep.txt": b"kept"}
    finally:
        engine.close()


def test_a_file_moved_into_a_folder_walked_already_is_moved_not_deleted(
        tmp_path: Path) -> None:
    """Simulation seed 1070645: while the scan walked ``c``, the user moved ``c/x.txt`` to
    the top folder, which the scan had listed already. The file was in neither listing, so
    it looked deleted: deleted on the server, then uploaded as a new file, its versions
    lost. A folder that changed after it was listed now holds the round's server deletes
    back until the next scan, which sees the move."""
    clock = Tick()
    inner = FakeFolder(clock=clock)
    fake = FaultyFolder(inner)
    server = FakeServer()
    inner.write("c/x.txt", b"draft", mtime_ns=T0 - 10**9)
    engine = engine_at(fake, server, tmp_path, clock)
    try:
        assert engine.sync().done
        server.put_file("/c/x.txt", b"draft, second version")
        assert engine.sync().done
        assert inner.read("c/x.txt") == b"draft, second version"
        clock.ns += 10**9
        fake.before_next("list", lambda: inner.rename("c/x.txt", "x.txt", replace=False), "c")
        engine.round()
        assert "/c/x.txt" in server.files()  # not deleted on the strength of that scan
        clock.ns += 10**9
        assert engine.sync().done
        assert server.files() == {"/x.txt": b"draft, second version"}
        assert server.deleted == []  # moved, with its versions: never deleted
    finally:
        engine.close()


def test_a_save_in_the_tick_of_a_lost_commit_is_still_uploaded(tmp_path: Path) -> None:
    """Seed 1085849: a file saved just as the scan read it was sent, in the clock tick of
    that save; the commit's answer was lost, and the file was saved again in the same tick
    with as many bytes. The next round, while that save settled (so it was not read), found
    the commit on the server and recorded the stat seen before the upload, judged
    trustworthy by that later round's clock. The save had the same size, mtime, ctime and
    inode, so it was never read, and the server's next version overwrote it. A pending
    upload's stat is now judged when it is seen."""
    clock = Tick()
    inner = FakeFolder(clock=clock)
    fake = FaultyFolder(inner)
    server = FakeServer()
    inner.write("x.txt", b"an old draft", mtime_ns=T0 - 10 * 10**9)
    state: dict[str, bool] = {"fail": True}

    def serve(call: Call) -> Answer:
        answer = server.serve(call)
        if call.path == "/files/commit_batch" and state.pop("fail", False):
            raise ServerUnreachable("the answer was lost")
        return answer

    engine = engine_at(fake, server, tmp_path, clock, serve=serve, settle=0.4)
    # Saved as the scan opens it: read at once (listed old), sent in the tick of the save.
    fake.before_next("open_read", lambda: inner.write("x.txt", b"the first save"), "x.txt")
    try:
        engine.round()
        assert server.content("/x.txt") == b"the first save"
        inner.write("x.txt", b"the later save")  # same length, same instant
        clock.ns += 200_000_000
        engine.round()  # the save settles; meanwhile the commit is found and recorded
        clock.ns += 1_000_000_000
        assert engine.sync().done
        assert server.content("/x.txt") == b"the later save"
        assert inner.read("x.txt") == b"the later save"
    finally:
        engine.close()
