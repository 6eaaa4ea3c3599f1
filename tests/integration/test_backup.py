"""Backups against a real cluster: the service snapshots while uploads run, a second snapshot
copies only new chunks, and a restored data directory starts a cluster that serves every file
and every version byte-identical."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from minidropbox.core.chunking import chunk_bytes
from tests.conftest import PASSWORD, bearer, signup_and_login
from tests.harness import BIN, TestCluster, free_port_block

KiB = 1024
MiB = 1024 * KiB


# -- helpers shared with test_backup_failures.py ----------------------------------------------

def backup_env(cluster: TestCluster, **extra: str) -> dict[str, str]:
    """The environment the backup commands read: the API's data dir, nodes and secret."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINIDROPBOX_")}
    env.update({"MINIDROPBOX_DATA_DIR": str(cluster.tmp / "api-data"),
                "MINIDROPBOX_CLUSTER_SECRET": cluster.secret,
                "MINIDROPBOX_NODES": ",".join(f"{n.name}={n.url}" for n in cluster.nodes),
                **extra})
    if "MINIDROPBOX_DATABASE_URL" in cluster.api.env:  # the suite runs on PostgreSQL
        env["MINIDROPBOX_DATABASE_URL"] = cluster.api.env["MINIDROPBOX_DATABASE_URL"]
    return env


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def backup_json(env: dict[str, str], *args: str, code: int = 0) -> Any:
    """``minidropbox --json backup ARGS``, asserting its exit code; returns the parsed output."""
    result = cli(env, "--json", "backup", *args)
    assert result.returncode == code, result.stdout + result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else None


def upload(client: httpx.Client, auth: dict[str, str], path: str, data: bytes) -> list[str]:
    """missing → PUT → commit (a new version if the file exists); returns the chunk hashes."""
    pieces = chunk_bytes(data)
    hashes = [ref.hash for ref, _ in pieces]
    r = client.post("/api/v1/chunks/missing", headers=auth, json={"hashes": hashes})
    assert r.status_code == 200, r.text
    want = set(r.json()["missing"])
    for ref, piece in pieces:
        if ref.hash in want:
            assert client.put(f"/api/v1/chunks/{ref.hash}", headers=auth,
                              content=piece).status_code == 201
            want.discard(ref.hash)
    meta = client.get("/api/v1/files/metadata", headers=auth, params={"path": path})
    parent = meta.json()["version"] if meta.status_code == 200 else None
    r = client.post("/api/v1/files/commit", headers=auth, json={
        "path": path, "size": len(data), "chunks": hashes, "parent_version": parent})
    assert r.status_code == 201, r.text
    return hashes


def chunk_list(repo: Path, snapshot_id: str) -> set[str]:
    text = (repo / "snapshots" / snapshot_id / "chunks.txt").read_text()
    return {line.split()[0] for line in text.splitlines() if line}


# -- this file's helpers ------------------------------------------------------------------------

def version_tree(client: httpx.Client, auth: dict[str, str],
                 wanted: set[tuple[str, int]]) -> tuple[str, set[tuple[str, int]]]:
    """SHA-256 over (path, version, content SHA-256) of ``wanted`` plus what the server lists."""
    r = client.get("/api/v1/files/list", headers=auth, params={"path": "/", "recursive": True})
    assert r.status_code == 200, r.text
    assert r.json()["cursor"] is None
    listed: set[tuple[str, int]] = set()
    for entry in r.json()["entries"]:
        if entry["type"] != "file":
            continue
        v = client.get("/api/v1/files/versions", headers=auth, params={"path": entry["path"]})
        listed.update((entry["path"], item["version"]) for item in v.json()["versions"])
    tree = hashlib.sha256()
    for path, version in sorted(wanted or listed):
        r = client.get("/api/v1/files/content", headers=auth,
                       params={"path": path, "version": version})
        assert r.status_code == 200, (path, version, r.text)
        tree.update(f"{path}\0{version}\0{hashlib.sha256(r.content).hexdigest()}\n".encode())
    return tree.hexdigest(), listed


def snapshot_versions(metadata_db: Path) -> set[tuple[str, int]]:
    """Every (path, version) of a live file in a snapshot's metadata copy."""
    conn = sqlite3.connect(f"file:{metadata_db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT e.path, v.number FROM entries e JOIN versions v "
                            "ON v.entry_id = e.id WHERE e.deleted_at IS NULL").fetchall()
    finally:
        conn.close()
    return {(p, int(n)) for p, n in rows}


def generation_of(metadata_db: Path) -> str | None:
    conn = sqlite3.connect(f"file:{metadata_db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM server_info WHERE key='generation'").fetchone()
    finally:
        conn.close()
    return row[0] if row else None


def start_cluster(data: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINIDROPBOX_")}
    log = open(data.parent / "restored-cluster.log", "ab")  # noqa: SIM115 - child keeps it
    proc = subprocess.Popen([str(BIN), "server", "cluster", "--data", str(data), "--port",
                             str(port), "--no-backup"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, (data.parent / "restored-cluster.log").read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_process(proc)
    raise AssertionError("restored cluster not ready:\n" +
                         (data.parent / "restored-cluster.log").read_text()[-3000:])


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


# -- the test -----------------------------------------------------------------------------------

def test_service_snapshots_during_uploads_then_incremental_then_restore(
        cluster: TestCluster, cluster_http: httpx.Client, tmp_path: Path) -> None:
    rng = random.Random(7)
    alice = bearer(signup_and_login(cluster_http, "alice"))
    upload(cluster_http, alice, "/docs/big.bin", rng.randbytes(3 * MiB))
    upload(cluster_http, alice, "/docs/notes.txt", b"first draft\n" * 1000)
    upload(cluster_http, alice, "/docs/notes.txt", b"second draft\n" * 1000)
    upload(cluster_http, alice, "/docs/big.bin", rng.randbytes(2 * MiB))
    upload(cluster_http, alice, "/empty", b"")
    repo = tmp_path / "repo"
    env = backup_env(cluster)

    # The service, snapshotting every second while a writer keeps committing new files.
    stop = threading.Event()
    written: list[str] = []

    def writer() -> None:
        with httpx.Client(base_url=cluster.url, timeout=60) as client:
            w = random.Random(8)
            while not stop.is_set():
                path = f"/live/f{len(written):03}"
                upload(client, alice, path, w.randbytes(w.randrange(1, 300 * KiB)))
                written.append(path)

    thread = threading.Thread(target=writer)
    thread.start()
    log = open(tmp_path / "backup-service.log", "wb")  # noqa: SIM115 - closed below
    service = subprocess.Popen([str(BIN), "server", "backup", "--repo", str(repo),
                                "--every", "1s"], env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            snaps = list((repo / "snapshots").glob("*/manifest.json")) if repo.exists() else []
            if len(snaps) >= 2:
                break
            assert service.poll() is None, (tmp_path / "backup-service.log").read_text()
            time.sleep(0.2)
        else:
            raise AssertionError("the service took no two snapshots in 60 s")
    finally:
        stop.set()
        thread.join(60)
        service.send_signal(signal.SIGTERM)
        code = service.wait(30)
        log.close()
    service_log = (tmp_path / "backup-service.log").read_text()
    assert code == 0, service_log
    assert "chunks copied" in service_log and "backup service stopped" in service_log
    assert len(written) >= 3  # the uploads really ran alongside
    listed = backup_json(env, "list", "--repo", str(repo))["snapshots"]
    assert len(listed) >= 2
    assert all(s["chunks"]["missing_count"] == 0 for s in listed)
    report = backup_json(env, "verify", "--repo", str(repo), "--read-data")
    assert report["ok"] and report["snapshots"] == len(listed), report

    # Incremental: after a small change only the new chunk is copied.
    before = backup_json(env, "now", "--repo", str(repo))
    new_hashes = upload(cluster_http, alice, "/docs/small-change.txt", b"one more line\n")
    after = backup_json(env, "now", "--repo", str(repo))
    old, new = chunk_list(repo, before["id"]), chunk_list(repo, after["id"])
    assert new - old == set(new_hashes)
    assert after["chunks"]["copied"] == 1
    assert after["chunks"]["copied_bytes"] == len(b"one more line\n")
    assert after["chunks"]["skipped"] == len(old)

    if "MINIDROPBOX_DATABASE_URL" in env:
        return  # a PostgreSQL snapshot is restored with pg_restore, not into a data directory
    # Restore the latest snapshot into a fresh directory and start a cluster on it.
    target = tmp_path / "restored"
    restored = backup_json(env, "restore", "latest", "--repo", str(repo), "--to", str(target))
    assert restored["unrecoverable"] == [] and restored["chunks"] == len(new)
    snap_db = repo / "snapshots" / after["id"] / "metadata.db"
    assert generation_of(target / "api" / "metadata.db") == restored["generation"]
    assert restored["generation"] != generation_of(snap_db)
    again = cli(env, "backup", "restore", "latest", "--repo", str(repo), "--to", str(target))
    assert again.returncode != 0 and "not an empty directory" in again.stderr

    wanted = snapshot_versions(snap_db)
    assert ("/docs/big.bin", 2) in wanted and ("/docs/small-change.txt", 1) in wanted
    original_tree, _ = version_tree(cluster_http, alice, wanted)
    port = free_port_block(4)
    proc = start_cluster(target, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            r = client.post("/api/v1/auth/login", json={"username": "alice",
                                                         "password": PASSWORD})
            assert r.status_code == 200, r.text
            tree, listed_versions = version_tree(client, bearer(r.json()), set())
    finally:
        stop_process(proc)
    assert listed_versions == wanted
    assert tree == original_tree
