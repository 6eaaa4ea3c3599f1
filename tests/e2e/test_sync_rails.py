"""The safety rails of ``minidropbox sync``: a missing or swapped-out folder, mass deletion,
a server restored from a backup, another account's folder, and ignore rules."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.sync_harness import (
    ServerView,
    SyncClient,
    as_hashes,
    signup,
    two_devices,
    wait_until,
)
from tests.harness import TestCluster


@pytest.fixture
def setup(module_cluster: TestCluster, tmp_path: Path
          ) -> Iterator[tuple[SyncClient, SyncClient, ServerView]]:
    user = signup(module_cluster.url)
    server = ServerView(module_cluster.url, user)
    try:
        with two_devices(module_cluster.url, tmp_path, user, ("a", "b")) as (a, b):
            yield a, b, server
    finally:
        server.close()


def one_line_error(proc_stderr: str) -> str:
    lines = [line for line in proc_stderr.strip().splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, proc_stderr
    return lines[0]


def test_missing_or_swapped_folder_stops_without_deleting(
        setup: tuple[SyncClient, SyncClient, ServerView]) -> None:
    a, b, server = setup
    for i in range(3):
        a.write(f"/f{i}.txt", f"file {i}".encode())
    a.once()
    before = server.tree()
    # A folder that does not exist at all.
    gone = a.root.with_name("not-there")
    proc = a.cli("sync", str(gone), "--once", ok=False)
    assert proc.returncode == 4 and "does not exist" in one_line_error(proc.stderr)
    # A folder swapped for an empty one while the client runs (an unmounted disk).
    a.start()
    wait_until(lambda: "idle" in a.log(), message="A idle")
    a.root.rename(a.root.with_name("moved-away"))
    a.root.mkdir()
    b.write("/wake.txt", b"a change on the server wakes A up")
    b.once()
    assert a.proc is not None
    assert a.proc.wait(20) == 4
    assert "unmounted" in a.log()
    assert {p: h for p, h in server.tree().items() if p != "/wake.txt"} == before


def test_mass_delete_needs_confirmation(setup: tuple[SyncClient, SyncClient, ServerView]
                                        ) -> None:
    a, _, server = setup
    for i in range(12):
        a.write(f"/docs/f{i}.txt", f"file {i}".encode())
    a.once()
    for i in range(8):
        (a.root / "docs" / f"f{i}.txt").unlink()
    proc = a.once(ok=False)
    assert proc.returncode == 5
    assert "--allow-mass-delete" in one_line_error(proc.stderr)
    assert len([p for p in server.tree() if p.startswith("/docs/")]) == 12
    a.once("--allow-mass-delete")
    assert len([p for p in server.tree() if p.startswith("/docs/")]) == 4


def test_server_restored_from_backup_deletes_nothing(
        setup: tuple[SyncClient, SyncClient, ServerView]) -> None:
    a, _, server = setup
    a.write("/kept.txt", b"synced before the restore")
    a.write("/other.txt", b"also synced")
    a.once()
    # Pretend the server we synced with had another generation (it was since restored): a
    # file missing here is then unknown, not deleted.
    db = sqlite3.connect(a.root / ".minidropbox" / "state.db")
    with db:
        db.execute("UPDATE meta SET value = 'an-older-generation' WHERE key = 'generation'")
    db.close()
    (a.root / "kept.txt").unlink()
    proc = a.once()
    assert "restored from a backup" in proc.stdout
    assert (a.root / "kept.txt").read_bytes() == b"synced before the restore"
    assert set(server.tree()) == {"/kept.txt", "/other.txt"}
    # Once merged, the new generation is remembered and deletes propagate again.
    (a.root / "kept.txt").unlink()
    a.once()
    assert set(server.tree()) == {"/other.txt"}


def test_a_folder_belongs_to_one_account_and_remote_folder(
        setup: tuple[SyncClient, SyncClient, ServerView]) -> None:
    a, b, server = setup
    a.write("/x.txt", b"x")
    a.remote = "/Work"
    a.once()
    assert set(server.tree()) == {"/Work", "/Work/x.txt"}
    proc = a.cli("sync", str(a.root), "--remote", "/Other", "--once", ok=False)
    assert proc.returncode == 3 and "/Work" in one_line_error(proc.stderr)
    shutil.rmtree(b.root)
    b.root.mkdir()
    b.remote = "/Work"
    b.once()
    assert b.tree() == a.tree()


def test_ignore_rules_both_ways(setup: tuple[SyncClient, SyncClient, ServerView]) -> None:
    a, b, server = setup
    a.write("/.minidropboxignore", b"*.log\nbuild/\n")
    for name in ("keep.txt", "debug.log", "build/out.o", "notes.txt.swp", ".DS_Store",
                 "backup~", ".~lock.doc#"):
        a.write(f"/{name}", b"data")
    a.once()
    assert set(server.tree()) == {"/.minidropboxignore", "/keep.txt"}
    # Ignored on the way down too, once the rules have arrived.
    server.http.put("/api/v1/files/content", params={"path": "/server.log"},
                    content=b"from elsewhere").raise_for_status()
    b.once()
    b.once()
    assert set(b.tree()) == {"/.minidropboxignore", "/keep.txt"}
    assert as_hashes(b.tree()) == {p: h for p, h in server.tree().items() if p != "/server.log"}
