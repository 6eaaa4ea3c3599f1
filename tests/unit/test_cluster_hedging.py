"""Hedged reads and writes in the cluster (service/cluster.py) over in-memory stores: a hung
holder costs a read one hedge delay, a hung target costs a write one write hedge, and nobody
is asked twice without need."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from minidropbox.core.health import UP
from minidropbox.core.placement import rank_nodes
from minidropbox.service.cluster import StorageCluster
from minidropbox.settings import Settings
from minidropbox.storage.memory import AsyncMemoryChunkStore
from tests.unit.test_cluster_data_path import DATA, NAME, NODES, cluster_over

BOUND = 10.0  # a test that hangs fails after this instead of at the suite's timeout


class Hung(AsyncMemoryChunkStore):
    """A paused node: requests never answer until cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.cancelled = 0

    async def _hang(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    async def get(self, name: str) -> bytes:
        await self._hang()
        raise AssertionError("unreachable")

    async def put(self, name: str, data: bytes) -> None:
        await self._hang()


class Counting(AsyncMemoryChunkStore):
    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay
        self.gets = 0

    async def get(self, name: str) -> bytes:
        self.gets += 1
        await asyncio.sleep(self.delay)
        return await super().get(name)


def fast_hedges(cluster: StorageCluster) -> StorageCluster:
    cluster.settings = Settings(**{**cluster.settings.model_dump(), "hedge_min": 0.01,
                                   "hedge_max": 0.2, "write_hedge_max": 0.3})
    return cluster


def test_a_hung_holder_costs_a_read_one_hedge_delay(tmp_path: Path) -> None:
    first, second, _ = rank_nodes(NAME, NODES)  # the read order while all are up
    hung = Hung()
    stores: dict[str, AsyncMemoryChunkStore] = {first: hung, second: Counting()}
    cluster = fast_hedges(cluster_over(tmp_path, stores))
    stores[second].sync.put(NAME, DATA)

    async def reads() -> list[float]:
        took = []
        for _ in range(10):
            started = time.monotonic()
            assert await cluster.read(NAME, [first, second]) == DATA
            took.append(time.monotonic() - started)
        return took

    took = asyncio.run(asyncio.wait_for(reads(), BOUND))
    # No history yet: the first read waits the default guess (0.2 s, capped by hedge_max).
    assert all(t < 1.0 for t in took), took
    assert hung.cancelled == 10  # every abandoned request was cancelled, none left behind
    assert cluster.state(first) == UP  # slow is not failed: the probes decide that


def test_a_read_that_answers_in_its_usual_time_is_not_hedged(tmp_path: Path) -> None:
    stores = {n: Counting() for n in NODES}
    cluster = fast_hedges(cluster_over(tmp_path, dict(stores)))
    first, second, _ = cluster.read_order(NAME, NODES)
    for store in stores.values():
        store.sync.put(NAME, DATA)

    async def reads() -> None:
        for _ in range(20):
            assert await cluster.read(NAME, [first, second]) == DATA

    asyncio.run(asyncio.wait_for(reads(), BOUND))
    assert stores[first].gets == 20 and stores[second].gets == 0
    # Twenty quick answers: the hedge delay drops to the floor.
    assert cluster.read_hedge(first) == 0.01


def test_a_hung_target_gives_its_place_to_the_next_node(tmp_path: Path) -> None:
    ranked = rank_nodes(NAME, NODES)  # where writes go while all are up
    hung = Hung()
    stores: dict[str, AsyncMemoryChunkStore] = {n: AsyncMemoryChunkStore() for n in NODES}
    stores[ranked[0]] = hung
    cluster = fast_hedges(cluster_over(tmp_path, stores))

    started = time.monotonic()
    holders = asyncio.run(asyncio.wait_for(cluster.write(NAME, DATA), BOUND))
    took = time.monotonic() - started
    assert sorted(holders) == sorted(ranked[1:]) and took < 2.0, (holders, took)
    assert hung.cancelled == 1
    assert all(stores[n].sync.has(NAME) for n in ranked[1:])
