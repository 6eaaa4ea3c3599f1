"""Backups that go wrong, against a real cluster: a backup killed mid-run, a flipped bit in the
repository, a chunk gone from every node, and retention pruning snapshots and chunks."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.conftest import bearer, signup_and_login
from tests.harness import BIN, TestCluster
from tests.integration.test_backup import backup_env, backup_json, chunk_list, cli, upload

KiB = 1024
FILES = 16  # one chunk each (< the 256 KiB minimum chunk)


def repo_chunks(repo: Path) -> dict[str, Path]:
    return {p.name: p for p in (repo / "chunks").glob("??/??/*") if len(p.name) == 64}


def test_kill_bitflip_missing_chunk_and_retention(cluster: TestCluster,
                                                  cluster_http: httpx.Client,
                                                  tmp_path: Path) -> None:
    rng = random.Random(11)
    alice = bearer(signup_and_login(cluster_http, "alice"))
    old_chunks = set()
    for i in range(FILES):
        old_chunks.update(upload(cluster_http, alice, f"/old/{i}", rng.randbytes(64 * KiB)))
    repo = tmp_path / "repo"
    env = backup_env(cluster)
    first = backup_json(env, "now", "--repo", str(repo))
    assert first["chunks"]["copied"] == FILES

    # A backup killed with SIGKILL halfway through copying chunks.
    for i in range(FILES):
        upload(cluster_http, alice, f"/new/{i}", rng.randbytes(64 * KiB))
    slow = backup_env(cluster, MINIDROPBOX_BACKUP_TEST_THROTTLE="0.5")
    proc = subprocess.Popen([str(BIN), "backup", "now", "--repo", str(repo)], env=slow,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(repo_chunks(repo)) < FILES + 2 and time.monotonic() < deadline:
            assert proc.poll() is None, "the throttled backup finished before it was killed"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    copied_before_kill = len(repo_chunks(repo)) - FILES
    assert 2 <= copied_before_kill < FILES
    snaps_dir = repo / "snapshots"
    assert len([p for p in snaps_dir.iterdir() if not (p / "manifest.json").exists()]) == 1
    listed = backup_json(env, "list", "--repo", str(repo))["snapshots"]
    assert [s["id"] for s in listed] == [first["id"]]
    assert backup_json(env, "verify", first["id"], "--repo", str(repo), "--read-data")["ok"]
    # The dead backup's lock is stale: the next one runs, cleans up, copies only what is left.
    second = backup_json(env, "now", "--repo", str(repo))
    assert second["chunks"]["copied"] == FILES - copied_before_kill
    assert all((p / "manifest.json").exists() for p in snaps_dir.iterdir())

    # A bit flipped in a repository chunk: presence checks pass, --read-data finds it.
    victim = sorted(repo_chunks(repo))[3]
    path = repo_chunks(repo)[victim]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    assert backup_json(env, "verify", "--repo", str(repo))["ok"]
    result = cli(env, "backup", "verify", "--repo", str(repo), "--read-data")
    assert result.returncode == 9, result.stdout + result.stderr
    assert f"chunk {victim} is corrupt" in result.stdout
    assert result.stderr.splitlines()[-1].startswith("Error: 1 problem(s) found")
    # Repair: drop the bad copy; the next backup fetches it again from the nodes.
    path.unlink()
    third = backup_json(env, "now", "--repo", str(repo))
    assert third["chunks"]["copied"] == 1
    assert backup_json(env, "verify", "--repo", str(repo), "--read-data")["ok"]

    # A chunk gone from every storage node: reported, counted, and flagged by verify.
    lost = upload(cluster_http, alice, "/lost", rng.randbytes(32 * KiB))[0]
    for node in cluster.nodes:
        for f in cluster.chunk_files(node.name):
            if f.name == lost:
                f.unlink()
    result = cli(env, "--json", "backup", "now", "--repo", str(repo))
    assert result.returncode == 9, result.stdout + result.stderr
    fourth = json.loads(result.stdout)
    assert fourth["chunks"]["missing"] == [lost] and fourth["chunks"]["missing_count"] == 1
    assert lost in result.stderr  # logged
    result = cli(env, "backup", "verify", fourth["id"], "--repo", str(repo))
    assert result.returncode == 9 and f"chunk {lost} was on no storage node" in result.stdout

    # Retention: forget the old files, snapshot, keep only the last one.
    for path_ in ("/old", "/lost"):
        assert cluster_http.delete("/api/v1/files", headers=alice,
                                   params={"path": path_}).status_code == 200
    assert cluster_http.delete("/api/v1/trash", headers=alice).status_code == 200
    fifth = backup_json(env, "now", "--repo", str(repo))
    assert fifth["chunks"]["copied"] == 0 and fifth["chunks"]["missing_count"] == 0
    assert chunk_list(repo, fifth["id"]).isdisjoint(old_chunks)
    pruned = backup_json(env, "prune", "--repo", str(repo), "--keep-last", "1",
                         "--keep-daily", "0")
    assert pruned["kept"] == [fifth["id"]] and len(pruned["removed"]) == 4
    assert pruned["chunks_removed"] == FILES
    assert set(repo_chunks(repo)) == chunk_list(repo, fifth["id"])
    assert [s["id"] for s in backup_json(env, "list", "--repo", str(repo))["snapshots"]] == [
        fifth["id"]]
    assert backup_json(env, "verify", "--repo", str(repo), "--read-data")["ok"]
