"""The real sync engine and executor against an in-memory folder and server: a change between
scan and act, a full disk at the rename, a crash between the rename and the state row. Each
must lose nothing: every byte either side had ends up on both, and nothing is duplicated.

Runs in milliseconds: ``FakeFolder`` (client/fakefolder.py) for the disk, ``FakeServer``
(tests/unit/fake_server.py) behind the real ``Remote``, a real state DB in ``tmp_path``.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from minidropbox.client.fakefolder import FakeFolder, FaultyFolder, SimulatedCrash
from minidropbox.client.localfolder import LocalFolder
from minidropbox.client.localpaths import TMP_PREFIX
from minidropbox.client.sync.engine import SyncEngine, SyncOptions
from minidropbox.client.sync.status import Status
from tests.unit.fake_server import FakeServer


def engine_for(folder: LocalFolder, server: FakeServer, tmp_path: Path) -> SyncEngine:
    """What ``SyncClient`` builds, with the fakes in place of the disk and the network."""
    engine = SyncEngine(server.remote(), folder, tmp_path / "state.db",
                        SyncOptions(root=Path("/fake"), settle=0.0), Status(quiet=True))
    engine.open()
    return engine


def synced(folder: FakeFolder, server: FakeServer) -> None:
    """Both sides hold the same files (temp files aside)."""
    local = {"/" + name: data for name, data in folder.tree().items()
             if data is not None and not name.rsplit("/", 1)[-1].startswith(TMP_PREFIX)}
    assert local == server.files()
    assert not [n for n in folder.tree() if n.rsplit("/", 1)[-1].startswith(TMP_PREFIX)]


@pytest.mark.parametrize("case_insensitive", [False, True])
def test_a_seeded_folder_syncs_both_ways(tmp_path: Path, case_insensitive: bool) -> None:
    folder = FakeFolder(files=40, seed=7, case_insensitive=case_insensitive)
    server = FakeServer()
    engine = engine_for(folder, server, tmp_path)
    try:
        assert engine.sync().done
        synced(folder, server)
        server.put_file("/From Server.txt", b"made elsewhere")
        folder.write("d1/local.txt", b"made here")
        assert engine.sync().done
        synced(folder, server)
        assert folder.read("From Server.txt") == b"made elsewhere"
    finally:
        engine.close()


def test_a_local_edit_between_scan_and_delete_is_kept(tmp_path: Path) -> None:
    """The server deleted a file; the user saves it after the scan, before the executor
    deletes it: the re-check skips the delete, and the next round uploads the edit."""
    fake = FakeFolder()
    folder = FaultyFolder(fake)
    server = FakeServer()
    fake.write("notes.txt", b"v1")
    engine = engine_for(folder, server, tmp_path)
    try:
        assert engine.sync().done
        server.delete("/notes.txt")
        # The first look at notes.txt after the scan is the executor's re-check.
        folder.before_next("info", lambda: fake.write("notes.txt", b"v2, saved late"),
                           name="notes.txt")
        engine.round()
        assert fake.read("notes.txt") == b"v2, saved late"
        assert engine.sync().done
        assert server.files() == {"/notes.txt": b"v2, saved late"}
        synced(fake, server)
    finally:
        engine.close()


def test_a_local_edit_during_a_download_is_kept(tmp_path: Path) -> None:
    """Both changed: the server's version is downloaded over a file the user edits while it
    downloads. The rename is skipped; the next round keeps both as a conflict."""
    fake = FakeFolder()
    folder = FaultyFolder(fake)
    server = FakeServer()
    fake.write("report.txt", b"base")
    engine = engine_for(folder, server, tmp_path)
    try:
        assert engine.sync().done
        server.put_file("/report.txt", b"server edit")
        folder.before_next("open_write", lambda: fake.write("report.txt", b"local edit"))
        engine.round()
        assert fake.read("report.txt") == b"local edit"
        assert engine.sync().done
        contents = sorted(data for data in fake.tree().values() if data is not None)
        assert contents == [b"local edit", b"server edit"]  # one of them as a conflict copy
        synced(fake, server)
    finally:
        engine.close()


@pytest.mark.parametrize("op", ["rename", "open_write", "create_temp"])
def test_a_full_disk_during_a_download_loses_nothing(tmp_path: Path, op: str) -> None:
    fake = FakeFolder()
    folder = FaultyFolder(fake)
    server = FakeServer()
    server.put_file("/big.bin", b"x" * 100_000)
    fake.write("old.txt", b"here before")
    engine = engine_for(folder, server, tmp_path)
    try:
        folder.fail_next(op, errno.ENOSPC)
        failed = engine.round().outcome.failed
        assert len(failed) == 1 and "No space left" in failed[0]
        assert "big.bin" not in fake.tree() and fake.read("old.txt") == b"here before"
        assert not [n for n in fake.tree() if n.startswith(TMP_PREFIX)]
        assert engine.state is not None and "/big.bin" not in engine.state.rows()
        assert engine.sync().done  # space again: it arrives
        synced(fake, server)
    finally:
        engine.close()


def test_a_full_disk_during_a_local_move_keeps_the_file(tmp_path: Path) -> None:
    fake = FakeFolder()
    folder = FaultyFolder(fake)
    server = FakeServer()
    fake.write("a/one.txt", b"one")
    engine = engine_for(folder, server, tmp_path)
    try:
        assert engine.sync().done
        server.move("/a/one.txt", "/b/one.txt")
        folder.fail_next("rename", errno.ENOSPC)
        failed = engine.round().outcome.failed
        assert len(failed) == 1 and "No space left" in failed[0]
        assert fake.read("a/one.txt") == b"one"
        assert engine.sync().done
        assert fake.read("b/one.txt") == b"one" and server.files() == {"/b/one.txt": b"one"}
        synced(fake, server)
    finally:
        engine.close()


@pytest.mark.parametrize("scenario", ["download new", "download over", "move", "conflict"])
def test_a_crash_between_the_rename_and_the_state_row_loses_nothing(
        tmp_path: Path, scenario: str) -> None:
    fake = FakeFolder()
    folder = FaultyFolder(fake)
    server = FakeServer()
    fake.write("doc.txt", b"first")
    engine = engine_for(folder, server, tmp_path)
    assert engine.sync().done
    if scenario == "download new":
        server.put_file("/new.txt", b"new on the server")
    elif scenario == "download over":
        server.put_file("/doc.txt", b"second, from the server")
    elif scenario == "move":
        server.move("/doc.txt", "/moved/doc.txt")
    else:
        server.put_file("/doc.txt", b"server side")
        fake.write("doc.txt", b"local side")
    before = {p: e.version for p, e in server.entries.items()}
    folder.crash_after("rename")
    with pytest.raises(SimulatedCrash):
        engine.sync()
    engine.close()

    # A restart: a new engine over the same folder and state file.
    engine = engine_for(folder, server, tmp_path)
    try:
        assert engine.sync().done
        synced(fake, server)
        if scenario != "conflict":  # nothing was uploaded again: no new versions
            assert {p: e.version for p, e in server.entries.items()} == before
        else:
            assert sorted(server.files().values()) == [b"local side", b"server side"]
    finally:
        engine.close()


def test_time_is_injected_so_settling_needs_no_sleep(tmp_path: Path) -> None:
    now = [1_700_000_000 * 10**9]
    folder = FakeFolder(clock=lambda: now[0])
    server = FakeServer()
    engine = SyncEngine(server.remote(), folder, tmp_path / "state.db",
                        SyncOptions(root=Path("/fake")), Status(quiet=True),
                        now_ns=lambda: now[0])
    engine.open()
    try:
        folder.write("fresh.txt", b"still being written")
        result = engine.sync()
        assert not result.done and result.recheck is not None  # left alone while settling
        assert server.files() == {}
        now[0] += 10**9  # a second later, nothing has changed it
        assert engine.sync().done
        assert server.files() == {"/fresh.txt": b"still being written"}
    finally:
        engine.close()
