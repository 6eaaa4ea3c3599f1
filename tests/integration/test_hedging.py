"""A paused (SIGSTOPped) storage node costs reads and writes a hedge delay, not a timeout.

``node_timeout`` is 20 s here, so without hedging every read whose first holder is the paused
node would take 20 s, and so would every write placed on it; the probes do not see it fail
within the test either. The bounds are a quarter of that timeout, loose for a busy machine.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import httpx

from tests.conftest import bearer, signup_and_login
from tests.harness import TestCluster
from tests.integration.storage_faults import MiB, download, upload

TIMEOUT = 20.0


def test_a_paused_node_costs_each_request_a_hedge_not_a_timeout(tmp_path: Path) -> None:
    rng = random.Random(23)
    env = {"node_timeout": TIMEOUT, "health_interval": 0.5, "node_down_after": 60}
    with TestCluster(tmp_path, env=env, node_env={"scrub_rate": 0}) as cluster, \
            httpx.Client(base_url=cluster.url, timeout=120) as client:
        alice = bearer(signup_and_login(client, "alice"))
        files = {f"/f{i}": rng.randbytes(rng.choice([100_000, MiB])) for i in range(8)}
        for path, data in files.items():
            assert upload(client, alice, path, data).status_code == 201
        for path, data in files.items():  # some history for the hedge delays
            assert download(client, alice, path) == data
        paused = max(cluster.nodes, key=lambda n: len(cluster.chunk_files(n.name)))
        paused.signal(signal.SIGSTOP)
        try:
            took = []
            for path, data in files.items():
                started = time.monotonic()
                assert download(client, alice, path) == data
                took.append(time.monotonic() - started)
            started = time.monotonic()
            extra = rng.randbytes(300_000)
            assert upload(client, alice, "/while-paused", extra).status_code == 201
            write_took = time.monotonic() - started
            assert download(client, alice, "/while-paused") == extra
        finally:
            paused.signal(signal.SIGCONT)
        print(f"reads with {paused.name} paused: {[round(t, 2) for t in took]} s; "
              f"write: {write_took:.2f} s")
        assert max(took) < TIMEOUT / 4 and write_took < TIMEOUT / 4
