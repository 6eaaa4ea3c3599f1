"""``--bwlimit`` on a download: the limit holds, and every chunk is fetched once.

The pacing used to happen inside each hedged node request: the wait for its turn looked like a
slow node, so nearly every chunk was asked of a second holder too. A paced `get` moved twice
the bytes (40 MiB at 4 MiB/s took 19.9 s, with 98 node requests where 43 do; this test's
16 MiB at 2 MiB/s took 14.4 s with 25 requests for 14 chunks, now 8.2 s and one request a
chunk), and the losing requests' turns kept the command alive after its last file was
written."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from tests.e2e.test_cli_files import Cli
from tests.harness import BIN, TestCluster

MiB = 1024 * 1024
RATE = 2 * MiB


def test_a_paced_get_respects_the_limit_and_fetches_each_chunk_once(
        cluster: TestCluster, tmp_path: Path) -> None:
    cli = Cli(cluster.url, tmp_path / "home").signup_and_login("pacer")
    data = os.urandom(16 * MiB)
    (tmp_path / "big.bin").write_bytes(data)
    chunks = cli.json("put", tmp_path / "big.bin", "/big.bin")["stats"]["chunks_total"]
    out = tmp_path / "out"
    out.mkdir()

    start = time.monotonic()
    proc = subprocess.run([str(BIN), "--json", "get", "/big.bin", str(out)],
                          capture_output=True, text=True, timeout=240,
                          env={**cli.env, "MINIDROPBOX_BWLIMIT": str(RATE)})
    seconds = time.monotonic() - start

    assert proc.returncode == 0, proc.stderr
    assert (out / "big.bin").read_bytes() == data
    # The limiter starts with no credit, so the first chunk waits too: within one chunk of
    # the whole file's time at the limit (a load can only make it slower).
    assert seconds >= (len(data) - 4 * MiB) / RATE, seconds
    # A hedge is for a node slower than a few usual GETs: on an idle cluster there is none,
    # a loaded one may see a few; asking every chunk twice is what this catches.
    stats = json.loads(proc.stdout)["stats"]
    assert stats["node_requests"] <= chunks * 1.4, (stats["node_requests"], chunks)
    assert stats["bytes_received"] == len(data), stats  # once, not per chunk and per file
