"""With several API replicas each chunk is repaired once: ``admin repair`` asked of two
replicas at the same moment copies every missing replica exactly once between them (each pass
holds the cluster-wide repair lock). Needs PostgreSQL, like every multi-replica test."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import bearer, signup_and_login
from tests.deploy.test_postgres_replicas import Replicas
from tests.harness import postgres_url
from tests.integration.storage_faults import hashes_of, make_admin, upload, wait_until

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(postgres_url() is None, reason="MINIDROPBOX_TEST_POSTGRES_URL not set"),
]


def test_repair_asked_of_two_replicas_at_once_copies_each_chunk_once(tmp_path: Path) -> None:
    # 20 copies a second: a pass over the lost replicas takes a few seconds, so two passes
    # asked at once would overlap for certain without the lock.
    r = Replicas(tmp_path, nodes=3, replicas=2, health_interval=0.3, node_down_after=1.5,
                 node_timeout=1, repair_interval=3600, repair_rate=20)
    try:
        cluster = r.cluster
        with httpx.Client(base_url=r.a.url, timeout=120) as client:
            alice = bearer(signup_and_login(client, "alice"))
            admin = make_admin(cluster, client)
            rng = random.Random(41)
            chunks: set[str] = set()
            for i in range(40):
                data = rng.randbytes(rng.choice([2000, 50_000]))
                assert upload(client, alice, f"/f{i}", data).status_code == 201
                chunks.update(hashes_of(data))
        victim = cluster.nodes[0]
        lost = {p.name for p in cluster.chunk_files(victim.name)} & chunks
        assert len(lost) >= 10
        victim.kill()

        def sees_down(url: str) -> bool:
            nodes = httpx.get(url + "/api/v1/admin/nodes", headers=admin).json()["nodes"]
            return next(n for n in nodes if n["name"] == victim.name)["state"] == "down"
        for api in r.both:
            wait_until(lambda api=api: sees_down(api.url), 15, f"{api.name} to see it down")

        def repair(url: str) -> int:
            resp = httpx.post(url + "/api/v1/admin/repair", headers=admin, timeout=120)
            assert resp.status_code == 200, resp.text
            copied: int = resp.json()["copied"]
            return copied

        with ThreadPoolExecutor(2) as pool:
            copied = list(pool.map(repair, [api.url for api in r.both]))
        assert sum(copied) == len(lost), copied
        assert sorted(copied)[0] == 0  # the second pass found nothing left to do
        status = httpx.get(r.a.url + "/api/v1/admin/status", headers=admin).json()
        assert status["under_replicated"] == 0
    finally:
        r.stop()
