"""The cluster's read and write over in-memory stores and a real SQLite file: bad copies are
reported and skipped, failed nodes noted, and a bug below is a bug — never a suspect node."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select

from minidropbox.core.health import SUSPECT, UP
from minidropbox.metadata import chunks as chunk_repo
from minidropbox.metadata.db import Database
from minidropbox.metadata.tables import repair_queue, replicas
from minidropbox.service.cluster import StorageCluster
from minidropbox.settings import Settings
from minidropbox.storage.base import NoIntactCopy, StoreUnavailable
from minidropbox.storage.memory import AsyncMemoryChunkStore

DATA = b"chunk bytes " * 100
NAME = hashlib.sha256(DATA).hexdigest()
NODES = ["n1", "n2", "n3"]


class Failing(AsyncMemoryChunkStore):
    """A store whose ``get`` and ``put`` raise ``error`` (a node fault, or a bug)."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def get(self, name: str) -> bytes:
        raise self.error

    async def put(self, name: str, data: bytes) -> None:
        raise self.error


def cluster_over(tmp_path: Path, stores: dict[str, AsyncMemoryChunkStore]) -> StorageCluster:
    settings = Settings(data_dir=tmp_path, cluster_secret="s", replicas=2,
                        nodes=[f"{n}=http://127.0.0.1:9/{n}" for n in NODES])
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    db.migrate()
    return StorageCluster(settings, db, stores=stores)


def record(cluster: StorageCluster, holders: list[str]) -> None:
    with cluster.db.write() as conn:
        chunk_repo.record_chunk(conn, NAME, len(DATA), holders, None, 0.0)


def replica_states(cluster: StorageCluster) -> dict[int, str]:
    with cluster.db.read() as conn:
        return dict(conn.execute(select(replicas.c.node_id, replicas.c.state)).all())


def test_read_skips_and_reports_bad_copies(tmp_path: Path) -> None:
    stores = {n: AsyncMemoryChunkStore() for n in NODES}
    cluster = cluster_over(tmp_path, stores)
    for n in NODES:
        stores[n].sync.put(NAME, DATA)
    corrupt, missing, _ = cluster.read_order(NAME, NODES)  # the first two tried are bad
    stores[corrupt].sync.corrupt(NAME, DATA[::-1])
    stores[missing].sync.delete(NAME)
    record(cluster, NODES)
    assert asyncio.run(cluster.read(NAME, NODES)) == DATA
    assert sorted(replica_states(cluster).values()) == ["bad", "bad", "ok"]
    with cluster.db.read() as conn:
        assert conn.execute(select(repair_queue.c.priority)).scalar_one() == 10
    assert all(cluster.state(n) == UP for n in NODES)  # a bad copy is not a bad node


def test_read_notes_failed_nodes_and_names_every_fault(tmp_path: Path) -> None:
    stores = {n: Failing(StoreUnavailable("down")) for n in NODES[:2]}
    cluster = cluster_over(tmp_path, dict(stores))
    with pytest.raises(NoIntactCopy) as info:
        asyncio.run(cluster.read(NAME, NODES[:2]))
    assert sorted(node for node, _ in info.value.failures) == ["n1", "n2"]
    assert info.value.status == 503
    assert [cluster.state(n) for n in NODES] == [SUSPECT, SUSPECT, UP]


def test_a_bug_below_the_read_or_write_is_not_a_node_fault(tmp_path: Path) -> None:
    stores: dict[str, AsyncMemoryChunkStore] = {n: Failing(TypeError("a bug")) for n in NODES}
    cluster = cluster_over(tmp_path, stores)
    with pytest.raises(TypeError):
        asyncio.run(cluster.read(NAME, NODES))
    with pytest.raises(TypeError):
        asyncio.run(cluster.write(NAME, DATA))
    assert all(cluster.state(n) == UP for n in NODES)


def test_write_gives_a_failed_or_full_node_s_place_to_the_next(tmp_path: Path) -> None:
    stores = {n: AsyncMemoryChunkStore() for n in NODES}
    cluster = cluster_over(tmp_path, stores)
    first = cluster.targets(NAME)[0]
    stores[first] = Failing(StoreUnavailable("down"))
    cluster = cluster_over(tmp_path, stores)
    held = asyncio.run(cluster.write(NAME, DATA))
    assert sorted(held) == sorted(n for n in NODES if n != first)
    assert all(stores[n].sync.get(NAME) == DATA for n in held)
    assert cluster.state(first) == SUSPECT

    full = {n: AsyncMemoryChunkStore(capacity=10) for n in NODES}
    full_cluster = cluster_over(tmp_path, full)
    assert asyncio.run(full_cluster.write(NAME, DATA)) == []
    assert all(full_cluster.state(n) == UP for n in NODES)  # full is not down


def test_write_replaces_a_known_bad_copy(tmp_path: Path) -> None:
    stores = {n: AsyncMemoryChunkStore() for n in NODES}
    cluster = cluster_over(tmp_path, stores)
    target = cluster.targets(NAME)[0]
    stores[target].sync.put(NAME, DATA)
    stores[target].sync.corrupt(NAME, b"rot")
    held = asyncio.run(cluster.write(NAME, DATA, replace={target}, targets=[target],
                                     copies=1))
    assert held == [target] and stores[target].sync.get(NAME) == DATA
