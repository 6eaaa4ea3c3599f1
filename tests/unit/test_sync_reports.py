"""Nothing sync cannot handle is skipped silently: each such file gets one line with the
reason (once, not every round), is listed for ``minidropbox status``, and makes ``--once``
exit non-zero. Real disk (symlinks, odd names), in-memory server."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from minidropbox.client.localfolder import RealFolder
from minidropbox.client.sync.daemon import run_once
from minidropbox.client.sync.engine import SyncEngine, SyncOptions
from minidropbox.client.sync.errors import FilesSkipped, MassDeleteRefused
from minidropbox.client.sync.status import Status
from minidropbox.core.chunking import sha256_hex
from tests.unit.fake_server import FakeServer


def engine_on_disk(root: Path, server: FakeServer, tmp_path: Path,
                   out: io.StringIO) -> SyncEngine:
    status = Status(out=out, err=io.StringIO())
    engine = SyncEngine(server.remote(), RealFolder(root), tmp_path / "state.db",
                        SyncOptions(root=root, settle=0.0), status)
    engine.open()
    return engine


def test_every_local_file_sync_cannot_handle_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "ok.txt").write_bytes(b"fine")
    (root / "new\nline.txt").write_bytes(b"newline")
    (root / "back\\slash.txt").write_bytes(b"backslash")
    os.symlink(root / "ok.txt", root / "link.txt")
    os.mkfifo(root / "pipe")
    server, out = FakeServer(), io.StringIO()
    engine = engine_on_disk(root, server, tmp_path, out)
    try:
        with pytest.raises(FilesSkipped) as caught:
            run_once(engine)
        assert caught.value.exit_code != 0 and "4 file(s) cannot be synced" in \
            caught.value.message
        lines = [line.split(" ", 1)[1] for line in out.getvalue().splitlines()]
        skipped = sorted(line for line in lines if line.startswith("skipped "))
        assert len(skipped) == 4, lines
        assert any("link.txt: not a regular file or folder" in s for s in skipped)
        assert any("pipe: not a regular file or folder" in s for s in skipped)
        assert any("new\\nline.txt" in s for s in skipped)  # shown escaped, on one line
        assert any("back\\slash.txt" in s for s in skipped)
        assert server.files() == {"/ok.txt": b"fine"}
        assert len(engine.status.state.skipped) == 4  # what `minidropbox status` lists
        # Reported once: the next round says nothing new, and --once still fails.
        before = out.getvalue()
        with pytest.raises(FilesSkipped):
            run_once(engine)
        assert out.getvalue() == before
        # Fixed, it is gone from the list; back again, it is reported again.
        (root / "link.txt").unlink()
        assert len(engine.sync().skipped) == 3
        os.symlink(root / "ok.txt", root / "link.txt")
        engine.sync()
        assert out.getvalue().count("link.txt: not a regular file") == 2
    finally:
        engine.close()


def test_a_server_name_this_disk_cannot_hold_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    server, out = FakeServer(), io.StringIO()
    server.put_file("/fine.txt", b"fine")
    # A name stored before the server's character rules (a bidi override), which no disk
    # here may hold; the server keeps it reachable.
    legacy = "/legacy\u202etxt.exe"
    server.chunks[sha256_hex(b"old")] = b"old"
    server._commit(legacy, [sha256_hex(b"old")], 3, 1_600_000_000.0)
    engine = engine_on_disk(root, server, tmp_path, out)
    try:
        with pytest.raises(FilesSkipped):
            run_once(engine)
        assert "skipped '/legacy\\u202etxt.exe' from the server" in out.getvalue(), \
            out.getvalue()
        assert (root / "fine.txt").read_bytes() == b"fine"
        # Later rounds read the journal, not a listing: the name stays reported.
        server.put_file("/later.txt", b"later")
        assert engine.sync().skipped == engine.status.state.skipped != []
    finally:
        engine.close()


def test_deleting_four_of_five_files_asks_first(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    for i in range(5):
        (root / f"f{i}.txt").write_bytes(f"file {i}".encode())
    server, out = FakeServer(), io.StringIO()
    engine = engine_on_disk(root, server, tmp_path, out)
    try:
        assert engine.sync().done
        for i in range(4):
            (root / f"f{i}.txt").unlink()
        with pytest.raises(MassDeleteRefused) as caught:
            engine.sync()
        assert "4 of 5" in caught.value.message and caught.value.exit_code == 5
        assert len(server.files()) == 5  # nothing deleted on the server
        (root / "f0.txt").write_bytes(b"file 0")
        (root / "f1.txt").write_bytes(b"file 1")
        assert engine.sync().done  # 2 of 5 is an ordinary change
        assert sorted(server.files()) == ["/f0.txt", "/f1.txt", "/f4.txt"]
    finally:
        engine.close()


def test_status_file_follows_the_state(tmp_path: Path) -> None:
    from minidropbox.client.sync.running import StatusFile

    root = tmp_path / "root"
    (root / ".minidropbox").mkdir(parents=True)
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    try:
        status_file = StatusFile(root, "http://server", "/")
        status_file.register()
        status = Status(quiet=True, on_change=status_file.write)
        status.syncing(3)
        status.error("server unreachable")
        status.set_skipped(["/x: not a regular file or folder"])
        body = json.loads((root / ".minidropbox/status.json").read_text())
        assert body["state"] == "syncing 3 files" and body["queue"] == 3
        assert body["last_error"] == "server unreachable"
        assert body["skipped"] == ["/x: not a regular file or folder"]
        assert body["pid"] == os.getpid()
        status_file.unregister(status.state)
        assert json.loads((root / ".minidropbox/status.json").read_text())["state"] == "stopped"
        assert not list((tmp_path / "config" / "minidropbox" / "syncs").iterdir())
    finally:
        del os.environ["XDG_CONFIG_HOME"]


def test_a_running_sync_pauses_on_mass_deletion_and_resumes(tmp_path: Path) -> None:
    """The service is not ended by the rail: it reports once, shows "paused", deletes
    nothing, and goes on by itself once the deletions are gone (files restored)."""
    import threading

    from minidropbox.client.sync.daemon import run_forever
    from minidropbox.client.sync.engine import SyncResult

    stop, wake = threading.Event(), threading.Event()
    out = io.StringIO()
    status = Status(out=out, err=io.StringIO())
    answers: list[object] = [MassDeleteRefused("This sync would delete 4 of 5 synced files")] * 3
    answers.append(SyncResult(True))

    class Engine:
        def __init__(self) -> None:
            self.status = status
            self.rounds = 0

        def sync(self) -> SyncResult:
            self.rounds += 1
            wake.set()  # the next wait returns at once: an event arrived
            answer = answers.pop(0) if answers else SyncResult(True)
            if not answers and isinstance(answer, SyncResult) and self.rounds > 4:
                stop.set()
            if isinstance(answer, BaseException):
                raise answer
            assert isinstance(answer, SyncResult)
            return answer

    class Watcher:
        failure = None

        def start(self) -> None: ...
        def stop(self) -> None: ...
        def settle(self, _stop: threading.Event) -> None: ...

    seen: list[str] = []
    status.on_change = lambda state: seen.append(state.state)
    run_forever(Engine(), Watcher(), Watcher(), stop, wake)  # type: ignore[arg-type]
    assert out.getvalue().count("paused: This sync would delete 4 of 5") == 1
    assert status.state.last_error == "This sync would delete 4 of 5 synced files"
    assert any(s.startswith("paused") for s in seen) and seen[-1] == "idle"
