"""Damaged chunks with real processes: a flipped bit (found by a read, and by scrub on its
own), a truncated chunk, a deleted chunk, and a full disk. Every case must end with correct
downloads and two intact copies of every chunk, and corruption must never be copied.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from minidropbox.core.placement import place_replicas
from tests.conftest import bearer, signup_and_login
from tests.harness import TestCluster
from tests.integration.storage_faults import (
    MiB,
    chunk_file,
    download,
    flip_bit,
    hashes_of,
    healed,
    intact_copies,
    make_admin,
    status,
    tmpfs,
    upload,
    wait_until,
)

FAST = {"health_interval": 0.3, "node_down_after": 2, "node_timeout": 1,
        "repair_interval": 0.5, "repair_rate": 500, "audit_rate": 500}


def _cluster(tmp_path: Path, scrub: bool) -> TestCluster:
    node_env = {"scrub_rate": 64 * MiB, "scrub_interval": 0.5} if scrub else {"scrub_rate": 0}
    return TestCluster(tmp_path, env=FAST, node_env=node_env)


def _holder(cluster: TestCluster, chunk_hash: str) -> str:
    return next(n.name for n in cluster.nodes if chunk_file(cluster, n.name, chunk_hash).exists())


def _fill(client: httpx.Client, auth: dict[str, str], seed: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    files = {f"/c{i}": rng.randbytes(size) for i, size in enumerate([2 * MiB, 700_000, 5000])}
    for path, data in files.items():
        assert upload(client, auth, path, data).status_code == 201
    return files


def _all_intact(cluster: TestCluster, files: dict[str, bytes]) -> bool:
    copies = intact_copies(cluster)
    return all(copies[h] >= 2 for data in files.values() for h in hashes_of(data))


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[TestCluster]:
    c = _cluster(tmp_path, scrub=False)
    try:
        yield c
    finally:
        c.stop()


def test_flipped_bit_found_by_a_read_is_replaced_and_never_copied(plain: TestCluster) -> None:
    with httpx.Client(base_url=plain.url, timeout=60) as client:
        auth = bearer(signup_and_login(client, "alice"))
        admin = make_admin(plain, client)
        files = _fill(client, auth, 1)
        target = hashes_of(files["/c0"])[0]
        # Whichever copy a read tries first, it must get the intact bytes, and repair must
        # copy only the intact copy.
        node = _holder(plain, target)
        flip_bit(chunk_file(plain, node, target))
        for _ in range(3):
            assert download(client, auth, "/c0") == files["/c0"]
        wait_until(lambda: _all_intact(plain, files) and healed(client, admin), 30,
                   "the bad copy to be replaced")
        assert download(client, auth, "/c0") == files["/c0"]
        # A chunk with every copy corrupt: reads fail cleanly, nothing is "repaired" from it.
        lost = hashes_of(files["/c2"])[0]
        holders = [n.name for n in plain.nodes if chunk_file(plain, n.name, lost).exists()]
        for name in holders:
            flip_bit(chunk_file(plain, name, lost), offset=7)
        r = client.get("/api/v1/files/content", headers=auth, params={"path": "/c2"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "storage_unavailable"
        body = wait_until(lambda: (s := status(client, admin))["unreadable"] == 1 and s, 10,
                          "the chunk to be known unreadable")
        assert body["corrupt_replicas"] == 2
        assert intact_copies(plain)[lost] == 0
        # ``admin check`` names the damage: a version whose chunk has no intact copy.
        damage = plain.check()
        assert [f.name for f in damage.must_violations] == ["version_chunks"]
        assert damage.must_violations[0].sample == [lost]
        # The commit check agrees with the dedup check: the chunk must be sent again.
        r = client.post("/api/v1/chunks/missing", headers=auth, json={"hashes": [lost]})
        assert r.json()["missing"] == [lost]
        assert upload(client, auth, "/c2-again", files["/c2"]).status_code == 201
        assert download(client, auth, "/c2") == files["/c2"]
        wait_until(lambda: _all_intact(plain, files) and healed(client, admin), 30,
                   "the re-uploaded chunk to be whole again")


def test_truncated_and_deleted_chunks_are_found_by_the_audit(plain: TestCluster) -> None:
    with httpx.Client(base_url=plain.url, timeout=60) as client:
        auth = bearer(signup_and_login(client, "alice"))
        admin = make_admin(plain, client)
        files = _fill(client, auth, 2)
        truncated, deleted = hashes_of(files["/c0"])[:2]
        path = chunk_file(plain, _holder(plain, truncated), truncated)
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
        chunk_file(plain, _holder(plain, deleted), deleted).unlink()
        # No read touches them: the audit alone must notice, and repair must heal.
        wait_until(lambda: _all_intact(plain, files), 30, "the audit and repair")
        wait_until(lambda: healed(client, admin), 10, "the status to be clean")
        for path_, data in files.items():
            assert download(client, auth, path_) == data


def test_scrub_finds_a_flipped_bit_on_its_own(tmp_path: Path) -> None:
    cluster = _cluster(tmp_path, scrub=True)
    try:
        with httpx.Client(base_url=cluster.url, timeout=60) as client:
            auth = bearer(signup_and_login(client, "alice"))
            admin = make_admin(cluster, client)
            files = _fill(client, auth, 3)
            target = hashes_of(files["/c1"])[0]
            node = _holder(cluster, target)
            flip_bit(chunk_file(cluster, node, target))
            quarantine = cluster.node_dir(node) / "quarantine"
            # The scrub moves it aside; the API reads the report, repair copies the good one.
            wait_until(lambda: not chunk_file(cluster, node, target).exists()
                       or intact_copies(cluster)[target] >= 2, 20, "scrub to quarantine it")
            wait_until(lambda: _all_intact(cluster, files) and healed(client, admin), 30,
                       "repair after scrub")
            # Reported and acknowledged: the quarantine folder is empty again.
            wait_until(lambda: not any(quarantine.glob("*")), 10, "the report to be taken")
            for path_, data in files.items():
                assert download(client, auth, path_) == data
    finally:
        cluster.stop()


def test_a_full_disk_is_skipped_and_writes_keep_two_copies(tmp_path: Path) -> None:
    """node-3 lives on a 1 MiB tmpfs: too small for a chunk, it gets none; the writes its
    placement named go to the next node instead."""
    with tmpfs(tmp_path / "node-3", "1m"), _cluster(tmp_path, scrub=False) as cluster, \
            httpx.Client(base_url=cluster.url, timeout=60) as client:
        auth = bearer(signup_and_login(client, "alice"))
        admin = make_admin(cluster, client)
        rng = random.Random(4)
        files = {f"/full{i}": rng.randbytes(3 * MiB) for i in range(3)}
        for path, data in files.items():
            assert upload(client, auth, path, data).status_code == 201
        for path, data in files.items():
            assert download(client, auth, path) == data
        wanted = {h for data in files.values() for h in hashes_of(data)}
        copies = intact_copies(cluster)
        assert all(copies[h] == 2 for h in wanted)
        # Chunks whose placement named node-3 but that it could not take went to the
        # next node in rendezvous order instead.
        names = [n.name for n in cluster.nodes]
        refused = [h for h in wanted if "node-3" in place_replicas(h, names, 2)
                   and not chunk_file(cluster, "node-3", h).exists()]
        assert refused, "no write was refused by the full node"
        assert healed(client, admin)
        r = client.get("/api/v1/admin/nodes", headers=admin)
        full = next(n for n in r.json()["nodes"] if n["name"] == "node-3")
        assert full["state"] == "up" and full["free_bytes"] <= MiB  # a 1 MiB tmpfs
        assert full["disk"] == "full"


