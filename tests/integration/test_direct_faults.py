"""Storage faults on the direct path (client ↔ nodes): a node killed during an upload, a node
paused during a download, a corrupt replica. Each transfer still completes, verified."""

from __future__ import annotations

import hashlib
import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from minidropbox.client.batch import TransferStats
from minidropbox.client.download import download_file
from minidropbox.client.nodes import GET_TIMEOUT
from minidropbox.client.upload import upload_file
from tests.conftest import bearer, signup_and_login
from tests.harness import TestCluster
from tests.integration.direct_protocol import wait_for_grants
from tests.integration.storage_faults import chunk_file, flip_bit
from tests.integration.test_direct_transfers import remote_for

MiB = 1024 * 1024
FAST = {"health_interval": 0.3, "node_down_after": 2, "node_timeout": 2}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    with TestCluster(tmp_path_factory.mktemp("direct-faults"), env=FAST,
                     node_env={"scrub_rate": 0}) as c, \
            httpx.Client(base_url=c.url, timeout=60) as http:
        wait_for_grants(http, bearer(signup_and_login(http, "probe")))
        yield c


@pytest.mark.parametrize("chain", [False, True], ids=["fanout", "chain"])
def test_a_node_killed_during_a_direct_upload(tmp_path: Path, chain: bool) -> None:
    with TestCluster(tmp_path, env=FAST, node_env={"scrub_rate": 0}) as c, \
            httpx.Client(base_url=c.url, timeout=60) as http:
        wait_for_grants(http, bearer(signup_and_login(http, "probe")))
        src = tmp_path / "big.bin"
        src.write_bytes(random.Random(3).randbytes(40 * MiB))
        with remote_for(c.url, "kim", chain=chain) as remote:
            stats = TransferStats()
            outcome: dict[str, object] = {}

            def run() -> None:
                try:
                    outcome["entry"] = upload_file(remote, src, "/big.bin", stats=stats)
                except Exception as exc:  # reported below
                    outcome["error"] = exc

            worker = threading.Thread(target=run)
            worker.start()
            deadline = time.monotonic() + 120
            while stats.node_requests < 6 and worker.is_alive() and time.monotonic() < deadline:
                time.sleep(0.01)
            victim = c.nodes[0]
            victim.kill()
            worker.join(timeout=300)
            assert "error" not in outcome, outcome
            assert stats.node_requests > 6, "the node died after the upload, not during it"
            got = tmp_path / "got.bin"
            download_file(remote, "/big.bin", got)
            assert got.read_bytes() == src.read_bytes()
        # Every chunk the version references is recorded on R nodes and confirmed there
        # (the killed node's copies were fsynced before it signed for them).
        victim.restart()
        report = c.check(nodes=True)
        assert not report.must_violations, report


def test_a_paused_node_during_a_direct_download_costs_a_hedge(
        cluster: TestCluster, tmp_path: Path) -> None:
    src = tmp_path / "f.bin"
    src.write_bytes(random.Random(4).randbytes(24 * MiB))
    with remote_for(cluster.url, "pat") as remote:
        upload_file(remote, src, "/f.bin")
        got = tmp_path / "got.bin"
        started = time.monotonic()
        download_file(remote, "/f.bin", got)  # also teaches the client the usual GET time
        usual = time.monotonic() - started
        paused = max(cluster.nodes, key=lambda n: len(cluster.chunk_files(n.name)))
        paused.signal(signal.SIGSTOP)
        try:
            stats = TransferStats()
            started = time.monotonic()
            download_file(remote, "/f.bin", got, stats=stats)
            took = time.monotonic() - started
        finally:
            paused.signal(signal.SIGCONT)
        assert got.read_bytes() == src.read_bytes()
        print(f"download {usual:.2f} s, with {paused.name} paused {took:.2f} s; {stats}")
        # Without the hedge, the first chunk asked of the paused node waits GET_TIMEOUT.
        assert took < max(GET_TIMEOUT / 2, 3 * usual), (took, usual)
        assert stats.requests <= 2  # the plan (one page): nothing fell back to the API


def test_a_corrupt_replica_is_read_from_the_other(cluster: TestCluster,
                                                  tmp_path: Path) -> None:
    data = random.Random(6).randbytes(3 * MiB)
    src = tmp_path / "c.bin"
    src.write_bytes(data)
    with remote_for(cluster.url, "quinn") as remote:
        upload_file(remote, src, "/c.bin")
        _, chunks, _ = remote.read_plan("/c.bin")
        flipped = 0
        for chunk in chunks:  # flip a bit in the copy each chunk is read from first
            first = chunk.nodes[0]
            node = next(n for n in cluster.nodes if n.url == first)
            path = chunk_file(cluster, node.name, chunk.hash)
            flip_bit(path)
            flipped += 1
        stats = TransferStats()
        got = tmp_path / "got.bin"
        download_file(remote, "/c.bin", got, stats=stats)
        assert got.read_bytes() == data
        assert flipped and stats.node_requests >= 2 * flipped
        # Each corrupt copy was reported; the API checked it, stopped reading it and queued
        # its repair: the next read plan leaves it out (or the repair already rewrote it).
        _, after, _ = remote.read_plan("/c.bin")
        for before, now in zip(chunks, after, strict=True):
            node = next(n for n in cluster.nodes if n.url == before.nodes[0])
            intact = hashlib.sha256(chunk_file(cluster, node.name, before.hash).read_bytes())
            assert before.nodes[0] not in now.nodes or intact.hexdigest() == before.hash
