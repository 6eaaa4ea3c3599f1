"""Operating the storage cluster with real processes: admin rights, adding a node and
rebalancing, draining and removing a node, and garbage collection while uploads run."""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from pathlib import Path

import httpx

from minidropbox.core.placement import place_replicas
from tests.conftest import PASSWORD, bearer, signup_and_login
from tests.harness import BIN, TestCluster, start_node
from tests.integration.storage_faults import (
    MiB,
    chunk_file,
    download,
    hashes_of,
    healed,
    intact_copies,
    make_admin,
    upload,
    wait_until,
)

FAST = {"health_interval": 0.3, "node_down_after": 2, "node_timeout": 1,
        "repair_interval": 0.5, "repair_rate": 500, "audit_rate": 500}


def cli(cluster: TestCluster, home: Path, *args: str,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(home), "MINIDROPBOX_SERVER": cluster.url}
    return subprocess.run([str(BIN), *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=120)


def test_admin_rights_and_the_admin_commands(tmp_path: Path) -> None:
    cluster = TestCluster(tmp_path, env=FAST, node_env={"scrub_rate": 0})
    try:
        with httpx.Client(base_url=cluster.url, timeout=60) as client:
            alice = bearer(signup_and_login(client, "alice"))
            assert client.get("/api/v1/admin/nodes", headers=alice).status_code == 403
            assert client.post("/api/v1/admin/gc", headers=alice,
                               json={"dry_run": True}).status_code == 403
            missing = subprocess.run([str(BIN), "server", "grant-admin", "nobody", "--data",
                                      str(tmp_path / "api-data")], env=cluster.api.env,
                                     capture_output=True, text=True, timeout=60)
            assert missing.returncode == 4 and "no user nobody" in missing.stderr
            make_admin(cluster, client, "root")
            assert upload(client, alice, "/x", random.Random(1).randbytes(MiB)).status_code \
                == 201
        home = tmp_path / "home"
        assert cli(cluster, home, "login", "root", "--password-stdin",
                   stdin=PASSWORD + "\n").returncode == 0
        nodes = cli(cluster, home, "admin", "nodes")
        assert nodes.returncode == 0, nodes.stderr
        assert all(f"node-{i}" in nodes.stdout for i in (1, 2, 3)) and "up" in nodes.stdout
        status = cli(cluster, home, "admin", "status")
        assert status.returncode == 0 and "under-replicated:  0" in status.stdout
        dry = cli(cluster, home, "--json", "admin", "gc", "--dry-run")
        assert dry.returncode == 0 and '"dry_run": true' in dry.stdout
        unknown = cli(cluster, home, "admin", "drain", "node-9")
        assert unknown.returncode == 4 and "node-9" in unknown.stderr
    finally:
        cluster.stop()


def test_add_a_node_rebalance_then_drain_and_remove_one(tmp_path: Path) -> None:
    cluster = TestCluster(tmp_path, env=FAST, node_env={"scrub_rate": 0})
    try:
        with httpx.Client(base_url=cluster.url, timeout=60) as client:
            auth = bearer(signup_and_login(client, "alice"))
            admin = make_admin(cluster, client, "root")
            rng = random.Random(3)
            files = {f"/r{i}": rng.randbytes(rng.choice([200_000, 2 * MiB])) for i in range(8)}
            for path, data in files.items():
                assert upload(client, auth, path, data).status_code == 201
            wanted = {h for data in files.values() for h in hashes_of(data)}

            # Add node-4: restart the API with it in the list, then rebalance.
            fourth = start_node(tmp_path, "node-4", cluster.secret, env={"scrub_rate": 0})
            cluster.nodes.append(fourth)
            cluster.api.env["MINIDROPBOX_NODES"] += f",node-4={fourth.url}"
            cluster.api.restart()
            names = [n.name for n in cluster.nodes]

            def placed() -> bool:
                return all(chunk_file(cluster, n, h).exists() == (n in place_replicas(h, names, 2))
                           for h in wanted for n in names)

            r = client.post("/api/v1/admin/rebalance", headers=admin)
            assert r.status_code == 202, r.text
            wait_until(placed, 30, "placement to match rendezvous order over 4 nodes")
            assert any(chunk_file(cluster, "node-4", h).exists() for h in wanted)
            for path, data in files.items():
                assert download(client, auth, path) == data

        # Drain node-1 with the CLI, then remove it: nothing is lost.
        home = tmp_path / "home"
        assert cli(cluster, home, "login", "root", "--password-stdin",
                   stdin=PASSWORD + "\n").returncode == 0
        drained = cli(cluster, home, "admin", "drain", "node-1", "--wait", "60")
        assert drained.returncode == 0, drained.stderr + drained.stdout
        assert "can be removed" in drained.stdout
        assert cluster.chunk_files("node-1") == []
        copies = intact_copies(cluster)
        assert all(copies[h] == 2 for h in wanted)
        first = cluster.nodes.pop(0)
        first.stop()
        cluster.api.env["MINIDROPBOX_NODES"] = ",".join(f"{n.name}={n.url}"
                                                        for n in cluster.nodes)
        cluster.api.restart()
        with httpx.Client(base_url=cluster.url, timeout=60) as client:
            for path, data in files.items():
                assert download(client, auth, path) == data
            assert wait_until(lambda: healed(client, admin), 10, "a clean status")
    finally:
        cluster.stop()


def test_gc_frees_purged_chunks_and_never_a_referenced_one(tmp_path: Path) -> None:
    cluster = TestCluster(tmp_path, env={**FAST, "gc_grace_seconds": 1.5, "gc_interval": 0,
                                         "orphan_grace": 1.0, "orphan_interval": 0},
                          node_env={"scrub_rate": 0})
    try:
        with httpx.Client(base_url=cluster.url, timeout=60) as client:
            auth = bearer(signup_and_login(client, "alice"))
            admin = make_admin(cluster, client, "root")
            rng = random.Random(9)
            doomed = {f"/doomed{i}": rng.randbytes(MiB) for i in range(3)}
            trashed, kept = rng.randbytes(MiB), rng.randbytes(MiB)
            old, new = rng.randbytes(MiB), rng.randbytes(MiB)
            for path, data in [*doomed.items(), ("/trashed", trashed), ("/kept", kept),
                               ("/hist", old)]:
                assert upload(client, auth, path, data).status_code == 201
            r = upload_version(client, auth, "/hist", new, parent=1)
            assert r.status_code == 201, r.text
            for path in [*doomed, "/trashed"]:
                assert client.delete("/api/v1/files", headers=auth,
                                     params={"path": path}).status_code == 200
            for path in doomed:
                assert client.delete("/api/v1/trash", headers=auth,
                                     params={"path": path}).status_code == 200
            doomed_chunks = {h for data in doomed.values() for h in hashes_of(data)}
            time.sleep(1.6)
            dry = client.post("/api/v1/admin/gc", headers=admin, json={"dry_run": True}).json()
            assert set(dry["hashes"]) == doomed_chunks and dry["collected"] == 0
            assert all(intact_copies(cluster)[h] == 2 for h in doomed_chunks)

            # Uploads keep running, some re-using doomed content, while GC runs repeatedly.
            committed: dict[str, bytes] = {}
            stop = threading.Event()

            def uploader() -> None:
                local = random.Random(10)
                with httpx.Client(base_url=cluster.url, timeout=60) as c:
                    for i in range(40):
                        if stop.is_set():
                            break
                        data = (list(doomed.values())[i % 3] if i % 4 == 0
                                else local.randbytes(local.choice([5000, 400_000])))
                        path = f"/live{i}"
                        for _ in range(3):
                            r = upload(c, auth, path, data)
                            if r.status_code == 201:
                                committed[path] = data
                                break
                            # GC may take a chunk between "missing" and the commit: the
                            # commit says which, and the client sends it again.
                            assert r.status_code == 400, r.text
                            assert r.json()["error"]["code"] == "missing_chunk", r.text
                        time.sleep(0.05)

            worker = threading.Thread(target=uploader)
            worker.start()
            collected = 0
            try:
                while worker.is_alive():
                    r = client.post("/api/v1/admin/gc", headers=admin, json={})
                    assert r.status_code == 200, r.text
                    collected += r.json()["collected"]
                    time.sleep(0.2)
            finally:
                stop.set()
                worker.join(120)
            assert collected > 0 and len(committed) >= 30
            for path, data in committed.items():
                assert download(client, auth, path) == data
            # Once nothing is in flight, a last pass frees what no version references. Copies
            # no row names are the orphan sweep's (a write hedged to a third node, a delete a
            # loaded node read after its deadline and refused): swept once past their grace.
            time.sleep(1.6)
            client.post("/api/v1/admin/gc", headers=admin, json={})
            def swept_every_node() -> bool:
                r = client.post("/api/v1/admin/orphans", headers=admin, json={"dry_run": False})
                assert r.status_code == 200, r.text
                return not r.json()["skipped"]  # a node seen as suspect waits for next pass
            wait_until(swept_every_node, 60, "an orphan sweep over every node", every=0.5)
            referenced = {h for data in committed.values() for h in hashes_of(data)}
            copies = intact_copies(cluster)
            assert all(copies[h] == 0 for h in doomed_chunks - referenced)
            assert all(copies[h] == 2 for h in referenced)
            # Trash and history still hold their chunks.
            assert client.post("/api/v1/trash/restore", headers=auth,
                               json={"path": "/trashed"}).status_code == 200
            assert download(client, auth, "/trashed") == trashed
            r = client.get("/api/v1/files/content", headers=auth,
                           params={"path": "/hist", "version": 1})
            assert r.status_code == 200 and r.content == old
            assert download(client, auth, "/kept") == kept
            assert healed(client, admin)
    finally:
        cluster.stop()


def upload_version(client: httpx.Client, auth: dict[str, str], path: str, data: bytes,
                   parent: int) -> httpx.Response:
    for h, piece in zip(hashes_of(data), _pieces(data), strict=True):
        r = client.put(f"/api/v1/chunks/{h}", headers=auth, content=piece)
        assert r.status_code == 201, r.text
    return client.post("/api/v1/files/commit", headers=auth, json={
        "path": path, "size": len(data), "chunks": hashes_of(data), "parent_version": parent})


def _pieces(data: bytes) -> list[bytes]:
    from minidropbox.core.chunking import chunk_bytes

    return [piece for _, piece in chunk_bytes(data)]
