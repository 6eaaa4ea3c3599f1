"""A repair pass that cannot read chunks says so once, not once per chunk.

While a node is paused or partitioned, every chunk whose good copies are there fails to read;
a 45 s chaos run logged 397 ERROR lines, one per chunk and pass, burying everything else.
Now a pass logs one line with the count and a few names; the chunk itself stays unrepaired
(counted ``failed``) for the next pass."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pytest

from minidropbox.metadata import chunks as chunk_repo
from minidropbox.metadata import nodes as node_repo
from minidropbox.metadata.db import Database
from minidropbox.service.repair import RepairService
from minidropbox.storage.base import StoreError

NODES = ["node-0", "node-1", "node-2"]


class UnreadableCluster:
    """node-0 and node-1 hold every chunk and do not answer yet (suspect); node-2 is up."""

    names = NODES
    draining: set[str] = set()
    settings = SimpleNamespace(node_timeout=1.0)

    def __init__(self) -> None:
        self.reads = 0

    def state(self, name: str) -> str:
        return "up" if name == "node-2" else "suspect"

    async def read(self, chunk_hash: str, sources: object) -> bytes:
        self.reads += 1
        raise StoreError(f"no intact copy of {chunk_hash} could be read")

    async def write(self, *args: object, **kwargs: object) -> list[str]:
        raise AssertionError("nothing was read, so nothing may be written")


def test_a_pass_logs_unreadable_chunks_once(db: Database,
                                            caplog: pytest.LogCaptureFixture) -> None:
    hashes = [f"{i:02x}" * 32 for i in range(30)]
    with db.write() as conn:
        node_repo.upsert_nodes(conn, [(n, f"http://127.0.0.1:{9000 + i}")
                                      for i, n in enumerate(NODES)])
        for h in hashes:
            chunk_repo.record_chunk(conn, h, 100, ["node-0", "node-1"], None, 1.0)
    cluster = UnreadableCluster()
    repair = RepairService(db, cluster, replicas=3,  # type: ignore[arg-type]
                           rate=1e6, interval=1.0)

    with caplog.at_level(logging.DEBUG, logger="minidropbox.repair"):
        report = asyncio.run(repair.run_once())

    assert cluster.reads == len(hashes)
    assert report.unreadable == report.failed == len(hashes)
    assert len(report.unreadable_sample) == 5 and set(report.unreadable_sample) < set(hashes)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "30 chunk(s)" in errors[0] and "and 25 more" in errors[0], errors[0]
    assert all(h[:12] in errors[0] for h in report.unreadable_sample), errors[0]
