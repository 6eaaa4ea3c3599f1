"""A file renamed within the settle time of its mtime (right after sync downloaded it, or
right after the user wrote it) is a move on the server, not a delete and an upload: its
versions stay with it. The real engine, an in-memory folder and the in-memory server, with
the clock held still between steps."""

from __future__ import annotations

from pathlib import Path

from minidropbox.client.fakefolder import FakeFolder
from minidropbox.client.sync.engine import RENAME_HOLD_SETTLES, SyncEngine, SyncOptions
from minidropbox.client.sync.scanner import SETTLE_SECONDS
from minidropbox.client.sync.status import Status
from tests.unit.fake_server import FakeServer
from tests.unit.test_sync_sim_regressions import Tick

SECOND = 1_000_000_000


def engine_at(folder: FakeFolder, server: FakeServer, tmp_path: Path,
              clock: Tick) -> SyncEngine:
    engine = SyncEngine(server.direct_remote(), folder, tmp_path / "state.db",
                        SyncOptions(root=Path("/fake"), settle=SETTLE_SECONDS),
                        Status(quiet=True), now_ns=clock, monotonic=lambda: clock() / 1e9)
    engine.open()
    return engine


def journal_ops(server: FakeServer) -> list[tuple[str, str]]:
    return [(e["op"], e["path"]) for e in server.journal]


def test_a_download_renamed_at_once_is_moved_on_the_server(tmp_path: Path) -> None:
    clock = Tick()
    folder = FakeFolder(clock=clock)
    server = FakeServer()
    engine = engine_at(folder, server, tmp_path, clock)
    try:
        # Written elsewhere a moment ago, in two versions: the download gets that mtime.
        server.put_file("/report.txt", b"draft", mtime=clock() / 1e9)
        server.put_file("/report.txt", b"final", mtime=clock() / 1e9)
        assert engine.sync().done
        assert folder.read("report.txt") == b"final"
        before = len(server.journal)
        folder.rename("report.txt", "renamed.txt", replace=False)  # at once
        result = engine.sync()
        assert not result.done and result.recheck is not None
        assert journal_ops(server)[before:] == []  # nothing deleted while it settles
        clock.ns += int(result.recheck * SECOND) + 1
        assert engine.sync().done
        assert journal_ops(server)[before:] == [("move", "/renamed.txt")]
        assert server.entries["/renamed.txt"].version == 2  # its history came along
    finally:
        engine.close()


def test_a_written_file_renamed_before_it_settles_is_moved_on_the_server(
        tmp_path: Path) -> None:
    clock = Tick()
    folder = FakeFolder(clock=clock)
    server = FakeServer()
    engine = engine_at(folder, server, tmp_path, clock)
    try:
        folder.write("notes.txt", b"v1")
        clock.ns += SECOND
        assert engine.sync().done
        folder.write("notes.txt", b"v2")
        clock.ns += SECOND
        assert engine.sync().done
        assert server.entries["/notes.txt"].version == 2
        folder.set_mtime("notes.txt", clock())  # touched, then renamed at once
        folder.rename("notes.txt", "kept.txt", replace=False)
        before = len(server.journal)
        assert not engine.sync().done
        clock.ns += SECOND
        assert engine.sync().done
        assert journal_ops(server)[before:] == [("move", "/kept.txt")]
        assert server.entries["/kept.txt"].version == 2
    finally:
        engine.close()


def test_a_file_that_never_settles_holds_a_delete_back_only_so_long(tmp_path: Path) -> None:
    clock = Tick()
    folder = FakeFolder(clock=clock)
    server = FakeServer()
    engine = engine_at(folder, server, tmp_path, clock)
    try:
        folder.write("old.log", b"12345")
        clock.ns += SECOND
        assert engine.sync().done
        folder.unlink("old.log")
        step = SETTLE_SECONDS / 4
        waited = 0.0
        while "/old.log" in server.entries:
            # Another file of the same size, written again and again: never settled.
            folder.write("growing.log", b"abcde")
            engine.sync()
            clock.ns += int(step * SECOND)
            waited += step
            assert waited < 2 * RENAME_HOLD_SETTLES * SETTLE_SECONDS
        assert waited >= RENAME_HOLD_SETTLES * SETTLE_SECONDS - step
    finally:
        engine.close()
