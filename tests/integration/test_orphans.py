"""The orphan sweep removes copies the metadata does not know, and nothing else.

Orphans made the two ways they happen: a node that was down while GC deleted its copies, and a
chunk written to a node without a record (as when the API dies between the PUT and the
commit). Young copies (an upload in flight) are left alone.
"""

from __future__ import annotations

import hashlib
import random
import time
from pathlib import Path

import httpx

from minidropbox.storage.node_client import NodeClient
from tests.conftest import bearer, signup_and_login
from tests.harness import TestCluster
from tests.integration.storage_faults import (
    MiB,
    download,
    hashes_of,
    make_admin,
    node_state,
    upload,
    wait_until,
)

GRACE = 3.0
ENV = {"health_interval": 0.3, "node_down_after": 1.5, "node_timeout": 1,
       "repair_interval": 0.5, "repair_rate": 500, "audit_rate": 500,
       "gc_grace_seconds": 0.5, "gc_interval": 0, "orphan_grace": GRACE, "orphan_interval": 0}


def test_orphans_left_by_gc_and_by_unrecorded_writes_are_swept_after_the_grace(
        tmp_path: Path) -> None:
    rng = random.Random(17)
    with TestCluster(tmp_path, env=ENV, node_env={"scrub_rate": 0}) as cluster, \
            httpx.Client(base_url=cluster.url, timeout=60) as client:
        alice = bearer(signup_and_login(client, "alice"))
        admin = make_admin(cluster, client)
        kept = {f"/keep{i}": rng.randbytes(rng.choice([3000, MiB])) for i in range(4)}
        doomed = {f"/doomed{i}": rng.randbytes(MiB) for i in range(4)}
        for path, data in [*kept.items(), *doomed.items()]:
            assert upload(client, alice, path, data).status_code == 201
        for path in doomed:
            assert client.delete("/api/v1/files", headers=alice,
                                 params={"path": path}).status_code == 200
            assert client.delete("/api/v1/trash", headers=alice,
                                 params={"path": path}).status_code == 200

        # node-1 is down while GC deletes the doomed chunks: its copies stay behind.
        victim = cluster.nodes[0]
        left_behind = {p.name for p in cluster.chunk_files(victim.name)} & {
            h for d in doomed.values() for h in hashes_of(d)}
        assert left_behind
        victim.kill()
        wait_until(lambda: node_state(client, admin, victim.name) == "down", 10, "node-1 down")
        time.sleep(0.6)
        gc = client.post("/api/v1/admin/gc", headers=admin, json={}).json()
        assert gc["collected"] == len({h for d in doomed.values() for h in hashes_of(d)})
        victim.start()
        wait_until(lambda: node_state(client, admin, victim.name) == "up", 10, "node-1 up")

        # A copy written but never recorded, as by an API that died before the record.
        stray = rng.randbytes(200_000)
        stray_hash = hashlib.sha256(stray).hexdigest()
        with NodeClient(cluster.nodes[1].url, cluster.secret) as node:
            node.put(stray_hash, stray)
        young = client.post("/api/v1/admin/orphans", headers=admin, json={"dry_run": True})
        assert young.status_code == 200, young.text
        assert f"node-2/{stray_hash}" not in young.json()["sample"]  # within the grace

        time.sleep(GRACE + 0.2)
        # Another unrecorded copy, written just now: in flight as far as the sweep knows.
        fresh = rng.randbytes(50_000)
        fresh_hash = hashlib.sha256(fresh).hexdigest()
        with NodeClient(cluster.nodes[2].url, cluster.secret) as node:
            node.put(fresh_hash, fresh)
        expected = {f"node-1/{h}" for h in left_behind} | {f"node-2/{stray_hash}"}
        dry = client.post("/api/v1/admin/orphans", headers=admin,
                          json={"dry_run": True}).json()
        assert set(dry["sample"]) == expected and dry["found"] == len(expected)
        assert dry["removed"] == 0 and dry["nodes"] == ["node-1", "node-2", "node-3"]

        swept = client.post("/api/v1/admin/orphans", headers=admin, json={}).json()
        assert swept["found"] == swept["removed"] == len(expected) and swept["failed"] == 0
        # Every node now holds exactly the copies the metadata records, plus the fresh one.
        nodes = {n["name"]: n for n in client.get("/api/v1/admin/nodes",
                                                  headers=admin).json()["nodes"]}
        for node in cluster.nodes:
            on_disk = {p.name for p in cluster.chunk_files(node.name)}
            extra = {fresh_hash} if node.name == "node-3" else set()
            assert len(on_disk - extra) == nodes[node.name]["replicas"], node.name
            assert not on_disk & {*left_behind, stray_hash}
        for path, data in kept.items():
            assert download(client, alice, path) == data
        status = client.get("/api/v1/admin/status", headers=admin).json()
        assert status["last_orphan_sweep"]["removed"] == len(expected)
        assert status["under_replicated"] == 0


def test_node_lists_only_chunks_older_than_asked(tmp_path: Path) -> None:
    with TestCluster(tmp_path, nodes=1, replicas=1) as cluster:
        node = cluster.nodes[0]
        data = [random.Random(i).randbytes(1000) for i in range(5)]
        names = sorted(hashlib.sha256(d).hexdigest() for d in data)
        with NodeClient(node.url, cluster.secret) as client:
            for d in data:
                client.put(hashlib.sha256(d).hexdigest(), d)
        auth = {"Authorization": f"Bearer {cluster.secret}"}
        r = httpx.get(node.url + "/chunks", headers=auth, params={"limit": 2, "min_age": 3600})
        # Too young to be listed, yet the page still moves the cursor on.
        assert r.json() == {"chunks": [], "next": names[1]}
        r = httpx.get(node.url + "/chunks", headers=auth,
                      params={"after": names[1], "limit": 10, "min_age": 0})
        assert r.json() == {"chunks": names[2:], "next": None}
        for bad in ("-1", "soon", "1e12"):
            r = httpx.get(node.url + "/chunks", headers=auth, params={"min_age": bad})
            assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input"
