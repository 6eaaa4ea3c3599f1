"""Node failures with real processes: kill -9 during uploads, a node down, a hung node.

Small timings (health probes every 0.3 s, down after 2 s, node requests time out after 1 s)
keep every test to seconds.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from minidropbox.core.chunking import content_hash
from tests.conftest import bearer, signup_and_login
from tests.harness import TestCluster
from tests.integration.storage_faults import (
    MiB,
    download,
    hashes_of,
    healed,
    intact_copies,
    make_admin,
    node_state,
    status,
    upload,
    wait_until,
)

FAST = {"health_interval": 0.3, "node_down_after": 2, "node_timeout": 1,
        "repair_interval": 0.5, "repair_rate": 500, "audit_rate": 500}
SOAK = bool(os.environ.get("MINIDROPBOX_SOAK"))


@pytest.fixture
def fast_cluster(tmp_path: Path) -> Iterator[TestCluster]:
    with TestCluster(tmp_path, env=FAST, node_env={"scrub_rate": 0}) as c:
        yield c


@pytest.fixture
def client(fast_cluster: TestCluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fast_cluster.url, timeout=60) as c:
        yield c


def _kill_during_upload(cluster: TestCluster, client: httpx.Client, runs: int,
                        size: int) -> None:
    auth = bearer(signup_and_login(client, "alice"))
    admin = make_admin(cluster, client)
    seed = int(os.environ.get("MINIDROPBOX_TEST_SEED", random.randrange(1 << 30)))
    print(f"seed {seed} (MINIDROPBOX_TEST_SEED reproduces this run)")
    rng = random.Random(seed)
    outcomes = []
    committed: set[str] = set()
    for run in range(runs):
        data = rng.randbytes(size)
        path = f"/big-{run}.bin"
        victim = cluster.nodes[run % len(cluster.nodes)]
        result: dict[str, httpx.Response] = {}

        def send(path: str = path, data: bytes = data,
                 result: dict[str, httpx.Response] = result) -> None:
            result["r"] = upload(client, auth, path, data)

        worker = threading.Thread(target=send)
        worker.start()
        time.sleep(rng.uniform(0.05, 1.0))
        victim.kill()
        worker.join(120)
        assert not worker.is_alive(), "the upload hung after a node was killed"
        r = result["r"]
        if r.status_code == 201:
            entry = r.json()
            assert entry["content_hash"] == content_hash(hashes_of(data))
            got = download(client, auth, path)
            assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
            outcomes.append("committed")
            committed.update(hashes_of(data))
        else:
            # A clear error, and no version of the file.
            error = r.json()["error"]
            assert r.status_code in (503, 400) and error["message"], r.text
            meta = client.get("/api/v1/files/metadata", headers=auth, params={"path": path})
            assert meta.status_code == 404, meta.text
            outcomes.append(f"failed: {error['code']}")
        victim.start()
    print("outcomes:", outcomes)
    # With every node back, every committed chunk has two intact copies on disk, and every
    # committed file is whole.
    wait_until(lambda: healed(client, admin), 60, "repair to finish")
    copies = intact_copies(cluster)
    assert [h for h in committed if copies[h] < 2] == []
    for run, outcome in enumerate(outcomes):
        if outcome == "committed":
            assert len(download(client, auth, f"/big-{run}.bin")) == size


def test_kill_9_a_node_during_uploads(fast_cluster: TestCluster,
                                      client: httpx.Client) -> None:
    """kill -9 one of 3 nodes mid-upload (R=2): each run commits a readable version or fails
    cleanly with no version. ``make test`` runs 3 uploads of 24 MiB; ``make soak``
    (MINIDROPBOX_SOAK=1) runs the issue's full 10 uploads of 200 MiB in
    ``test_kill_9_soak``."""
    _kill_during_upload(fast_cluster, client, runs=3, size=24 * MiB)


@pytest.mark.slow
@pytest.mark.skipif(not SOAK, reason="full-size soak: make soak (MINIDROPBOX_SOAK=1)")
def test_kill_9_soak(fast_cluster: TestCluster, client: httpx.Client) -> None:
    """The issue's size: 10 runs of a 200 MiB upload with a node killed during each."""
    _kill_during_upload(fast_cluster, client, runs=10, size=200 * MiB)


def test_node_down_reads_fall_over_and_repair_restores_two_copies(
        fast_cluster: TestCluster, client: httpx.Client) -> None:
    auth = bearer(signup_and_login(client, "alice"))
    admin = make_admin(fast_cluster, client)
    rng = random.Random(7)
    files = {f"/f{i}": rng.randbytes(rng.choice([1000, 300_000, 3 * MiB])) for i in range(8)}
    for path, data in files.items():
        assert upload(client, auth, path, data).status_code == 201
    victim = fast_cluster.nodes[0]
    victim.kill()
    # Straight away, before the node is even suspect: every file still downloads.
    for path, data in files.items():
        assert download(client, auth, path) == data
    survivors = [n.name for n in fast_cluster.nodes[1:]]
    wanted = {h for data in files.values() for h in hashes_of(data)}
    wait_until(lambda: node_state(client, admin, victim.name) == "down", 10,
               "the node to be declared down")
    body = wait_until(lambda: healed(client, admin), 30, "repair to finish")
    assert body["nodes_up"] == 2 and body["chunks"] == len(wanted)
    copies = intact_copies(fast_cluster, survivors)
    assert {h: copies[h] for h in wanted} == dict.fromkeys(wanted, 2)
    # Writes go on with R=2 on the two survivors; reads too.
    extra = rng.randbytes(2 * MiB)
    assert upload(client, auth, "/after", extra).status_code == 201
    assert download(client, auth, "/after") == extra
    # With a second node gone, fewer than R nodes are up: a clear 503, and no version.
    fast_cluster.nodes[1].kill()
    wait_until(lambda: client.get("/readyz").status_code == 503, 10, "readyz to say 503")
    r = upload(client, auth, "/lonely", rng.randbytes(MiB))
    assert r.status_code == 503 and r.json()["error"]["code"] == "storage_unavailable"
    assert "nodes" in r.json()["error"]["message"]
    assert client.get("/api/v1/files/metadata", headers=auth,
                      params={"path": "/lonely"}).status_code == 404
    assert status(client, admin)["nodes_up"] == 1


def test_a_hung_node_times_out_quickly_and_requests_fall_over(
        fast_cluster: TestCluster, client: httpx.Client) -> None:
    auth = bearer(signup_and_login(client, "alice"))
    rng = random.Random(11)
    files = {f"/h{i}": rng.randbytes(2 * MiB) for i in range(4)}
    for path, data in files.items():
        assert upload(client, auth, path, data).status_code == 201
    hung = fast_cluster.nodes[1]
    hung.signal(signal.SIGSTOP)
    try:
        for path, data in files.items():
            started = time.monotonic()
            assert download(client, auth, path) == data
            # One node timeout (1 s) per chunk at worst, then the node is suspect and
            # read last: bounded, never forever.
            assert time.monotonic() - started < 6
        started = time.monotonic()
        new = rng.randbytes(3 * MiB)
        assert upload(client, auth, "/while-hung", new).status_code == 201
        assert time.monotonic() - started < 10
        assert download(client, auth, "/while-hung") == new
    finally:
        hung.signal(signal.SIGCONT)
