"""kill -9 of a sync client in the middle of a transfer, then a restart: it converges, with no
half-written file and no temp file left in the tree."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from minidropbox.client.localpaths import TMP_PREFIX
from minidropbox.client.sync.state import STATE_DIR
from tests.e2e.sync_harness import (
    ServerView,
    SyncClient,
    as_hashes,
    digest,
    signup,
    temp_files,
    wait_until,
)
from tests.harness import TestCluster

MiB = 1024 * 1024
BIG = 48 * MiB  # long enough on loopback to be caught in the middle


@pytest.fixture
def clients(cluster: TestCluster, tmp_path: Path) -> Iterator[tuple[SyncClient, SyncClient]]:
    signup(cluster.url, "carol")
    a = SyncClient(cluster.url, tmp_path, "a", "carol")
    b = SyncClient(cluster.url, tmp_path, "b", "carol")
    try:
        yield a, b
    finally:
        for client in (a, b):
            client.stop()
            print(f"--- sync log of {client.device} ---\n{client.log()}")


def test_kill_mid_upload_and_mid_download_then_restart(
        clients: tuple[SyncClient, SyncClient], cluster: TestCluster) -> None:
    a, b = clients
    a.once()
    big = os.urandom(BIG)

    # Mid-upload: kill A as soon as it starts syncing the big file.
    a.start()
    wait_until(lambda: "idle" in a.log(), message="A idle")
    a.write("/big.bin", big)
    wait_until(lambda: "syncing 1 file" in a.log(), timeout=30, interval=0.005,
               message="A to start uploading")
    a.kill()
    server = ServerView(cluster.url, "carol")
    try:
        assert server.tree().get("/big.bin") is None, "the upload finished before the kill"
        a.once()  # restart: converges
        assert server.tree()["/big.bin"] == digest(big)

        # Mid-download: kill B while its temp file is being written.
        b.start()
        # Downloads are written in the sync folder's own .minidropbox/tmp, outside the tree.
        found = wait_until(lambda: list(b.root.glob(f"{STATE_DIR}/tmp/{TMP_PREFIX}*")),
                           timeout=30, interval=0.002, message="B to start downloading")
        b.kill()
        assert found and not (b.root / "big.bin").exists(), "B finished before the kill"
        b.once()  # restart: cleans the temp file, downloads again
        assert (b.root / "big.bin").read_bytes() == big
        assert temp_files(a.root) == temp_files(b.root) == []
        assert as_hashes(b.tree()) == server.tree() == as_hashes(a.tree())

        # An edit in the middle of the big file re-sends only the chunks around it.
        edited = big[: BIG // 2] + b"edited on b" + big[BIG // 2 + 11:]
        b.write("/big.bin", edited)
        report = [line for line in b.once().stdout.splitlines() if " chunks) for " in line]
        match = re.search(r"\((\d+) of (\d+) chunks\)", report[0])
        assert match, report
        assert 1 <= int(match[1]) <= 2 < int(match[2]), report
        assert server.tree()["/big.bin"] == digest(edited)
    finally:
        server.close()


def test_server_outage_is_waited_out(clients: tuple[SyncClient, SyncClient],
                                     cluster: TestCluster) -> None:
    a, b = clients
    a.start()
    b.start()
    wait_until(lambda: "idle" in a.log() and "idle" in b.log(), message="both idle")
    cluster.api.stop()
    a.write("/during-outage.txt", b"written while the server was down")
    wait_until(lambda: "retrying" in a.log(), timeout=20, message="A to notice the outage")
    assert a.alive and b.alive
    cluster.api.start()
    wait_until(lambda: (b.root / "during-outage.txt").exists(), timeout=60,
               message="the change to arrive once the server is back")
    assert b.tree() == a.tree()
