"""``minidropbox sync`` as a service: one sync per folder, no sync folder inside another, the
state folder ignored at every level, ``--daemon``, ``status``, ``--dry-run`` and
``--bwlimit``. Real processes against a real cluster."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from minidropbox.client.sync.log_file import MAX_BYTES
from tests.e2e.sync_harness import ServerView, SyncClient, signup, wait_until
from tests.e2e.test_sync_rails import one_line_error
from tests.harness import TestCluster


@pytest.fixture
def setup(module_cluster: TestCluster, tmp_path: Path) -> Iterator[tuple[SyncClient, ServerView]]:
    user = signup(module_cluster.url)
    a = SyncClient(module_cluster.url, tmp_path, "a", user)
    server = ServerView(module_cluster.url, user)
    try:
        yield a, server
    finally:
        a.stop()
        print(f"--- sync log ---\n{a.log()}")
        server.close()


def status(client: SyncClient) -> list[dict[str, object]]:
    return list(json.loads(client.cli("--json", "status").stdout))


def test_one_sync_per_folder_and_status_shows_it(setup: tuple[SyncClient, ServerView]
                                                 ) -> None:
    a, server = setup
    a.write("/one.txt", b"one")
    a.start()
    wait_until(lambda: "/one.txt" in server.tree(), message="the upload")
    assert a.proc is not None
    proc = a.once(ok=False)
    assert proc.returncode == 5
    line = one_line_error(proc.stderr)
    assert "already being synced" in line and f"pid {a.proc.pid}" in line
    running = wait_until(lambda: [s for s in status(a) if s.get("state") == "idle"],
                         message="status: idle")
    assert running[0]["root"] == str(a.root) and running[0]["pid"] == a.proc.pid
    text = a.cli("status").stdout
    assert f"{a.root} <-> " in text and f"idle (pid {a.proc.pid})" in text
    a.stop()  # a clean stop unregisters
    assert "No sync is running" in a.cli("status").stdout
    a.start()
    wait_until(lambda: [s for s in status(a) if s.get("state") == "idle"], message="idle")
    a.kill()  # kill -9: the lock goes with the process; status tells once, then forgets
    text = a.cli("status").stdout
    assert "not running (it stopped; last state: idle)" in text, text
    assert "No sync is running" in a.cli("status").stdout
    a.once()


def test_nested_sync_folders_are_refused_both_ways(setup: tuple[SyncClient, ServerView],
                                                   tmp_path: Path) -> None:
    a, _ = setup
    a.once()
    inner = a.root / "inner"
    inner.mkdir()
    proc = a.cli("sync", str(inner), "--remote", "/elsewhere", "--once", ok=False)
    assert proc.returncode == 2 and "is inside" in one_line_error(proc.stderr)
    outer = a.root.parent
    proc = a.cli("sync", str(outer), "--remote", "/outer", "--once", ok=False)
    assert proc.returncode == 2 and "which is a sync folder itself" in \
        one_line_error(proc.stderr)


def test_state_folders_are_ignored_at_every_level(setup: tuple[SyncClient, ServerView]
                                                  ) -> None:
    a, server = setup
    a.write("/sub/.minidropbox/leftover.txt", b"state of some other tool run")
    a.write("/sub/kept.txt", b"kept")
    a.once()
    assert "/sub/kept.txt" in server.tree()
    assert not [p for p in server.tree() if ".minidropbox" in p]
    # A folder that becomes a sync folder while the outer one runs: its state stays local.
    a.start()
    wait_until(lambda: "idle" in a.log(), message="idle")
    nested = a.root / "sub" / ".minidropbox"
    (nested / "state.db").write_bytes(b"SQLite format 3\x00")
    a.write("/sub/after.txt", b"a change after it")
    wait_until(lambda: "/sub/after.txt" in server.tree(), message="the upload")
    time.sleep(1)
    assert not [p for p in server.tree() if ".minidropbox" in p]


def test_daemon_status_and_skipped_files(setup: tuple[SyncClient, ServerView]) -> None:
    a, server = setup
    a.write("/doc.txt", b"doc")
    os.symlink(a.root / "doc.txt", a.root / "link.txt")
    # Returning at all (exit 0, within the CLI helper's timeout) is the point: --daemon
    # does not stay in the foreground. Its start takes what the machine's load makes it.
    proc = a.cli("sync", str(a.root), "--remote", a.remote, "--daemon")
    assert "in the background" in proc.stdout
    try:
        info = wait_until(lambda: [s for s in status(a) if s.get("state") == "idle"],
                          message="status: idle")[0]
        assert info["running"] is True and info["skipped"] == [
            "/link.txt: not a regular file or folder"]
        assert "/doc.txt" in server.tree() and "/link.txt" not in server.tree()
        text = a.cli("status").stdout
        assert "cannot sync 1 file(s):" in text and "/link.txt: not a regular file" in text
        again = a.cli("sync", str(a.root), "--remote", a.remote, "--daemon", ok=False)
        assert again.returncode != 0 and "already being synced" in one_line_error(
            again.stderr)
        log = (a.root / ".minidropbox" / "sync.log").read_text()
        assert "skipped /link.txt: not a regular file or folder" in log
    finally:
        for s in status(a):
            if s["running"]:
                os.kill(int(str(s["pid"])), signal.SIGTERM)
    wait_until(lambda: not any(s["running"] for s in status(a)), message="the daemon to stop")


def test_daemon_that_cannot_start_says_why(setup: tuple[SyncClient, ServerView]) -> None:
    a, _ = setup
    a.once()
    proc = a.cli("sync", str(a.root), "--remote", "/another-folder", "--daemon", ok=False)
    assert proc.returncode != 0
    assert "is synced with" in one_line_error(proc.stderr)


def test_dry_run_changes_nothing(setup: tuple[SyncClient, ServerView], tmp_path: Path) -> None:
    a, server = setup
    a.write("/here.txt", b"only here")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "new.txt").write_bytes(b"new")
    proc = a.cli("sync", str(fresh), "--remote", "/", "--dry-run")
    assert "would upload /new.txt" in proc.stdout and "nothing changed" in proc.stdout
    assert not (fresh / ".minidropbox").exists()
    assert server.tree() == {}
    a.once()
    server_before = server.tree()
    (a.root / "here.txt").unlink()
    a.write("/second.txt", b"second")
    body = json.loads(a.cli("--json", "sync", str(a.root), "--remote", "/",
                            "--dry-run").stdout)
    assert sorted((x["op"], x["path"]) for x in body["actions"]) == [
        ("delete_remote", "/here.txt"), ("upload", "/second.txt")]
    assert server.tree() == server_before


def test_bwlimit_is_checked(setup: tuple[SyncClient, ServerView]) -> None:
    a, _ = setup
    proc = a.cli("sync", str(a.root), "--once", "--bwlimit", "fast", ok=False)
    assert proc.returncode == 2 and "is not a rate" in one_line_error(proc.stderr)
    a.write("/paced.bin", os.urandom(64 * 1024))
    a.once("--bwlimit", "10M")


def test_the_daemon_log_is_rotated_by_size(setup: tuple[SyncClient, ServerView]) -> None:
    """A log left full by earlier runs is set aside before the daemon starts; the daemon
    writes to a fresh one (the bound while it runs: tests/unit/test_sync_log_rotation.py)."""
    a, _ = setup
    log = a.root / ".minidropbox" / "sync.log"
    log.parent.mkdir()
    old = b"an old line\n" * (MAX_BYTES // 12 + 1)
    log.write_bytes(old)
    a.cli("sync", str(a.root), "--remote", a.remote, "--daemon")
    try:
        wait_until(lambda: "syncing " in log.read_text(), message="the daemon's first line")
        assert log.with_name("sync.log.1").read_bytes() == old
        assert log.stat().st_size < 64 * 1024
    finally:
        for s in status(a):
            if s["running"]:
                os.kill(int(str(s["pid"])), signal.SIGTERM)
    wait_until(lambda: not any(s["running"] for s in status(a)), message="the daemon to stop")
