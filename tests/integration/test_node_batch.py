"""The storage node's batch write (``POST /chunks/batch``, ``DiskChunkStore.put_many``): many
small chunks made durable with one flush per step. Ordering (nothing under a final name before
the bytes are durable), one bad chunk not costing the others, full and faulty disks, the
request's bounds and its authorization, and the cluster's use of it with a failing node."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import socket
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from minidropbox.core import chunk_batch
from minidropbox.core.errors import HashMismatch, PayloadTooLarge
from minidropbox.metadata import chunks as chunk_repo
from minidropbox.metadata.db import Database
from minidropbox.metadata.tables import replicas
from minidropbox.node.app import create_node_app
from minidropbox.node.settings import NodeSettings
from minidropbox.service.cluster import BatchItem, StorageCluster
from minidropbox.settings import Settings
from minidropbox.storage.base import StoreFull, StoreUnavailable
from minidropbox.storage.disk import TEMP_PREFIX, DiskChunkStore
from minidropbox.storage.memory import AsyncMemoryChunkStore
from minidropbox.storage.node_client import AsyncNodeClient
from minidropbox.storage.node_http import Response as NodeResponse
from tests.harness import ServerProcess
from tests.integration.node_process import AUTH, SECRET, running_node
from tests.unit.test_node_disk_faults import SyncAsgiClient

MiB = 1 << 20


def chunk(i: int, size: int = 280) -> tuple[str, bytes]:
    data = (f"small file {i}\n".encode() * (size // 10 + 1))[:size]
    return hashlib.sha256(data).hexdigest(), data


def files_in(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def temps_in(root: Path) -> list[Path]:
    return [p for p in files_in(root) if p.name.startswith(TEMP_PREFIX)]


# -- the disk store -------------------------------------------------------------------------

@pytest.fixture(params=[True, False], ids=["syncfs", "fsync-each"])
def store(request: pytest.FixtureRequest, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> DiskChunkStore:
    """A disk store flushing a batch with syncfs, and one fsyncing file by file (where
    syncfs is missing)."""
    disk = DiskChunkStore(tmp_path / "store")
    if not request.param:
        monkeypatch.setattr(DiskChunkStore, "group_flush", property(lambda self: False))
    return disk


def test_put_many_stores_each_and_says_which_were_new(store: DiskChunkStore) -> None:
    items = [chunk(i) for i in range(50)]
    assert store.put_many(items[:20]) == [True] * 20
    assert store.put_many(items) == [False] * 20 + [True] * 30
    assert all(store.get(name) == data for name, data in items)
    assert (store.stat().chunk_count, store.stat().used_bytes) == (50, 50 * 280)
    assert temps_in(store.root) == []


def test_one_bad_chunk_does_not_cost_the_others(store: DiskChunkStore) -> None:
    items = [chunk(i) for i in range(5)]
    wrong = (items[2][0], b"not these bytes")
    results = store.put_many([*items[:2], wrong, *items[3:]])
    assert results[:2] == [True, True] and results[3:] == [True, True]
    assert isinstance(results[2], HashMismatch)
    assert not store.has(items[2][0])
    assert all(store.has(name) for name, _ in items[:2] + items[3:])
    assert temps_in(store.root) == []


def test_nothing_is_visible_before_the_bytes_are_durable(
        store: DiskChunkStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The order of put_many: temp files written (and, without syncfs, fsynced) → flush →
    renames → flush of the directory entries → return. Checked at each step."""
    items = [chunk(i) for i in range(30)]
    steps: list[str] = []
    real_data, real_entries = store._flush_data, store._flush_entries
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        steps.append("fsync")
        real_fsync(fd)

    def flush_data(root_fd: int) -> None:
        assert not any(store.has(name) for name, _ in items), "visible before the flush"
        assert len(temps_in(store.root)) == len(items)
        steps.append("flush data")
        real_data(root_fd)

    def flush_entries(root_fd: int, folders: set[Path]) -> None:
        assert all(store.has(name) for name, _ in items)
        steps.append("flush entries")
        real_entries(root_fd, folders)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(store, "_flush_data", flush_data)
    monkeypatch.setattr(store, "_flush_entries", flush_entries)
    assert store.put_many(items) == [True] * len(items)
    renamed = steps.index("flush data")
    assert steps[renamed:] == ["flush data", "flush entries"] + (
        [] if store.group_flush else ["fsync"] * len({store.path_for(n).parent
                                                      for n, _ in items}))
    # Without syncfs every temp file was fsynced before the flush step, none after it.
    assert steps[:renamed] == ([] if store.group_flush else ["fsync"] * len(items))


def test_a_failed_flush_leaves_nothing_under_a_final_name(
        store: DiskChunkStore, monkeypatch: pytest.MonkeyPatch) -> None:
    items = [chunk(i) for i in range(10)]

    def broken(root_fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(store, "_flush_data", broken)
    with pytest.raises(OSError) as info:
        store.put_many(items)
    assert info.value.errno == errno.EIO
    assert files_in(store.root) == []
    assert store.stat().chunk_count == 0


def test_a_failed_write_removes_every_temp_file(store: DiskChunkStore,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    items = [chunk(i) for i in range(10)]
    real_open = store.open_temp
    opened = []

    def open_temp(temp: Path) -> object:
        if len(opened) == 6:
            raise OSError(errno.ENOSPC, "No space left on device")
        opened.append(temp)
        return real_open(temp)

    monkeypatch.setattr(store, "open_temp", open_temp)
    with pytest.raises(StoreFull):
        store.put_many(items)
    assert files_in(store.root) == []


def test_present_chunks_are_written_and_flushed_as_new_ones(
        store: DiskChunkStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The time of a batch must not tell which of its chunks the node had."""
    items = [chunk(i) for i in range(8)]
    store.put_many(items[:4])
    real_open = store.open_temp
    opened: list[Path] = []

    def open_temp(temp: Path) -> object:
        opened.append(temp)
        return real_open(temp)

    monkeypatch.setattr(store, "open_temp", open_temp)
    assert store.put_many(items) == [False] * 4 + [True] * 4
    assert len(opened) == 8
    assert temps_in(store.root) == []


def test_full_disk_fails_the_batch_and_leaves_nothing(tiny_disk: Path) -> None:
    store = DiskChunkStore(tiny_disk / "store")
    items = [chunk(i, 200_000) for i in range(8)]  # 1.6 MB on a 1 MiB disk
    with pytest.raises(StoreFull):
        store.put_many(items)
    assert files_in(tiny_disk / "store") == []
    assert store.put_many(items[:2]) == [True, True]  # the space came back


# -- the node's route -----------------------------------------------------------------------

def test_batch_route_stores_and_answers_per_chunk(node: ServerProcess,
                                                  node_http: httpx.Client) -> None:
    items = [chunk(i) for i in range(100)]
    wrong = (chunk(1000)[0], b"damaged on the way")
    r = node_http.post("/chunks/batch", content=chunk_batch.encode([*items, wrong]))
    assert r.status_code == 200, r.text
    answers = r.json()["chunks"]
    assert answers[:100] == [{"created": True}] * 100
    assert answers[100]["error"]["code"] == "hash_mismatch"
    assert all(node_http.get(f"/chunks/{n}").content == d for n, d in items)
    assert node_http.get(f"/chunks/{wrong[0]}").status_code == 404
    assert node_http.get("/healthz").json()["chunk_count"] == 100
    # The API's client: the same per chunk, present ones False.

    async def again() -> list[bool | HashMismatch]:
        client = AsyncNodeClient(node.url, SECRET)
        try:
            return await client.put_many([*items[:3], chunk(2000), wrong])
        finally:
            await client.aclose()

    results = asyncio.run(again())
    assert results[:4] == [False, False, False, True]
    assert isinstance(results[4], HashMismatch)


def test_a_node_without_batch_writes_gets_single_puts(node: ServerProcess,
                                                      node_http: httpx.Client) -> None:
    """During a rolling upgrade a node from before batch writes answers 405 to the batch
    routes (``/chunks/{name}`` takes no POST): the API's client sends it the chunks one by
    one (and reads them one by one) instead of counting the node as failed, and asks it for
    no batch again."""
    items = [chunk(i) for i in range(20)]
    wrong = (chunk(1000)[0], b"damaged")
    posts = []

    async def send() -> list[bool | HashMismatch]:
        client = AsyncNodeClient(node.url, SECRET)
        real = client._pool.request

        async def old_node(method: str, target: str, headers: dict[str, str],
                           body: bytes | memoryview | None = None) -> NodeResponse:
            if method == "POST":
                posts.append(target)
                return NodeResponse(405, {}, b'{"error": {"code": "method_not_allowed", '
                                             b'"message": "Method Not Allowed"}}')
            return await real(method, target, headers, body)

        client._pool.request = old_node  # type: ignore[method-assign]
        try:
            first = await client.put_many([*items[:10], wrong])
            second = await client.put_many(items[10:])
            read = await client.get_many([n for n, _ in items[:5]] + [wrong[0]])
            again = await client.get_many([items[5][0]])
            assert read == dict(items[:5]) and again == dict(items[5:6])
            return first + second
        finally:
            await client.aclose()

    results = asyncio.run(send())
    assert results[:10] == [True] * 10 and results[11:] == [True] * 10
    assert isinstance(results[10], HashMismatch)
    assert posts == ["/chunks/batch", "/chunks/read"]  # each asked once, then never again
    assert all(node_http.get(f"/chunks/{n}").content == d for n, d in items)


@pytest.mark.parametrize("body, status", [
    (b"no manifest line at all", 400),
    (b'{"chunks": []}\n', 400),
    (b'{"chunk": [["' + b"0" * 64 + b'", 1]]}\nx', 400),
    (b'{"chunks": [["' + b"0" * 64 + b'", "1"]]}\nx', 400),
    (b'{"chunks": [["' + b"0" * 64 + b'", -1]]}\n', 400),
    (b'{"chunks": [["' + b"A" * 64 + b'", 1]]}\nx', 400),
    (b'{"chunks": [["' + b"0" * 64 + b'", 1], ["' + b"0" * 64 + b'", 1]]}\nxx', 400),
    (b'{"chunks": [["' + b"0" * 64 + b'", 5]]}\nxx', 400),  # shorter than its manifest
    (b'{"chunks": [["' + b"0" * 64 + b'", 1]]}\nxx', 400),  # longer than its manifest
], ids=["no manifest", "empty", "no chunks key", "size not int", "negative size",
        "bad name", "named twice", "short", "long"])
def test_malformed_batches_are_refused_and_store_nothing(node_http: httpx.Client,
                                                         body: bytes, status: int) -> None:
    r = node_http.post("/chunks/batch", content=body)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error"}
    assert node_http.get("/healthz").json()["chunk_count"] == 0


def test_batch_bounds_count_and_bytes(node_http: httpx.Client, node: ServerProcess) -> None:
    """No batch costs the node much more than its sender: too many chunks, or a body longer
    than any batch may be, is refused — the latter before a byte of the body is read."""
    many = [chunk(i, 1) for i in range(chunk_batch.MAX_BATCH_CHUNKS + 1)]
    manifest = json.dumps({"chunks": [[n, 1] for n, _ in many]}).encode()
    r = node_http.post("/chunks/batch", content=manifest + b"\n" + b"x" * len(many))
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    # The biggest body a batch may have, plus one: refused from its head alone.
    host, port = node.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST /chunks/batch HTTP/1.1\r\nHost: node\r\nAuthorization: Bearer "
                     f"{SECRET}\r\nContent-Length: {chunk_batch.MAX_BODY_BYTES + 1}\r\n\r\n"
                     .encode())
        head = sock.recv(65536).decode("latin-1")
    assert head.startswith("HTTP/1.1 413"), head
    # A chunk larger than the node takes (64 MiB), or a manifest past the byte bound.
    big = b"y" * (1 << 20)
    huge_name = hashlib.sha256(big).hexdigest()
    r = node_http.post("/chunks/batch", content=json.dumps(
        {"chunks": [[huge_name, 100 * (1 << 20)]]}).encode() + b"\n" + big)
    assert r.status_code == 413
    assert node_http.get("/healthz").json()["chunk_count"] == 0


def test_batch_route_takes_no_grant(node: ServerProcess) -> None:
    """A grant names one chunk: it never reaches the batch route (401), whatever it says."""
    items = [chunk(1)]
    for headers in ({}, {"Authorization": "Grant anything"},
                    {"Authorization": "Bearer " + SECRET[:-1]}):
        r = httpx.post(node.url + "/chunks/batch", headers=headers,
                       content=chunk_batch.encode(items))
        assert r.status_code == 401
    assert httpx.get(node.url + "/healthz", headers=AUTH).json()["chunk_count"] == 0


def test_a_faulty_disk_fails_the_batch_and_refuses_the_next(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_node_app(NodeSettings(dir=tmp_path / "node", cluster_secret=SECRET,
                                       scrub_rate=0))
    store = app.state.store

    def failing(items: object) -> list[bool]:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(store, "put_many", failing)
    body = chunk_batch.encode([chunk(i) for i in range(3)])
    with SyncAsgiClient(app, AUTH) as client:

        def post() -> httpx.Response:
            return client.loop.run_until_complete(
                client.client.post("/chunks/batch", content=body))

        first = post()
        assert first.status_code == 503 and first.json()["error"]["code"] == "disk_io_error"
        monkeypatch.undo()
        second = post()  # refused at once: the disk is marked faulty
        assert second.status_code == 503
        assert client.get("/healthz").json()["fault"] == "io_error"
    assert files_in(tmp_path / "node") == []


def test_a_full_node_answers_507_to_the_client(tiny_disk: Path) -> None:
    async def send(url: str) -> None:
        client = AsyncNodeClient(url, SECRET, timeout=30)
        try:
            with pytest.raises(StoreFull):
                await client.put_many([chunk(i, 200_000) for i in range(8)])
        finally:
            await client.aclose()

    with running_node(tiny_disk) as server:
        asyncio.run(send(server.url))
        assert files_in(tiny_disk / "node") == []


# -- the cluster's batch writes ---------------------------------------------------------------

NODES = ["n1", "n2", "n3"]


class Refusing(AsyncMemoryChunkStore):
    """A node whose every write fails as ``error``."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error
        self.batches = 0

    async def put_many(self, items: object) -> list[bool | HashMismatch]:
        self.batches += 1
        raise self.error

    async def put(self, name: str, data: bytes) -> None:
        raise self.error


class Counting(AsyncMemoryChunkStore):
    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    async def put_many(self, items: list[tuple[str, bytes]]) -> list[bool | HashMismatch]:
        self.batches += 1
        return await super().put_many(items)


def cluster_over(tmp_path: Path, stores: dict[str, AsyncMemoryChunkStore]) -> StorageCluster:
    tmp_path.mkdir()
    settings = Settings(data_dir=tmp_path, cluster_secret="s", replicas=2,
                        nodes=[f"{n}=http://127.0.0.1:9/{n}" for n in NODES])
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    db.migrate()
    return StorageCluster(settings, db, stores=stores)


def test_cluster_sends_one_batch_per_node_and_routes_around_a_failed_one(
        tmp_path: Path) -> None:
    stores: dict[str, AsyncMemoryChunkStore] = {n: Counting() for n in NODES}
    items = [BatchItem(*chunk(i)) for i in range(200)]
    cluster = cluster_over(tmp_path / "ok", stores)
    holders = asyncio.run(cluster.write_many(items))
    assert all(len(h) == 2 and len(set(h)) == 2 for h in holders.values())
    assert all(s.batches == 1 for s in stores.values() if isinstance(s, Counting))
    for item in items:
        for node in holders[item.chunk_hash]:
            assert stores[node].sync.get(item.chunk_hash) == item.data
    # Placement is the per-chunk one: a batch changes how copies travel, not where they go.
    assert all(sorted(holders[i.chunk_hash]) == sorted(cluster.placement(i.chunk_hash))
               for i in items)

    # A node that fails: its chunks go to the next node, one by one, and it is noted.
    down = Refusing(StoreUnavailable("down"))
    stores = {"n1": down, "n2": Counting(), "n3": Counting()}
    cluster = cluster_over(tmp_path / "down", stores)
    holders = asyncio.run(cluster.write_many(items))
    assert down.batches == 1
    assert all(sorted(h) == ["n2", "n3"] for h in holders.values())
    assert cluster.state("n1") != "up"

    # A full node is marked full and skipped, as for single writes.
    full = Refusing(StoreFull("full"))
    stores = {"n1": Counting(), "n2": full, "n3": Counting()}
    cluster = cluster_over(tmp_path / "full", stores)
    holders = asyncio.run(cluster.write_many(items))
    assert "n2" in cluster.full
    assert all(sorted(h) == ["n1", "n3"] for h in holders.values())


# -- batch reads ------------------------------------------------------------------------------

def test_batch_read_answers_what_the_node_has(node: ServerProcess, node_http: httpx.Client) -> None:
    items = [chunk(i) for i in range(30)]
    assert node_http.post("/chunks/batch", content=chunk_batch.encode(items)).status_code == 200
    absent = chunk(999)[0]
    asked = [items[3][0], absent, *(n for n, _ in items[10:20])]
    r = node_http.post("/chunks/read", content=chunk_batch.encode_names(asked))
    assert r.status_code == 200
    found = chunk_batch.split(r.content, 1 << 20, allow_empty=True)
    assert [(n, bytes(d)) for n, d in found] == [items[3], *items[10:20]]
    nothing = node_http.post("/chunks/read", content=chunk_batch.encode_names([absent]))
    assert chunk_batch.split(nothing.content, 1 << 20, allow_empty=True) == []

    async def read() -> dict[str, bytes]:
        client = AsyncNodeClient(node.url, SECRET)
        try:
            return await client.get_many(asked)
        finally:
            await client.aclose()

    assert asyncio.run(read()) == dict([items[3], *items[10:20]])


@pytest.mark.parametrize("body, status", [
    (b"not json", 400),
    (b'{"chunks": []}', 400),
    (b'{"chunks": ["' + b"0" * 64 + b'", "' + b"0" * 64 + b'"]}', 400),
    (b'{"chunks": ["' + b"G" * 64 + b'"]}', 400),
    (chunk_batch.encode_names([chunk(i, 1)[0] for i in range(chunk_batch.MAX_BATCH_CHUNKS
                                                             + 1)]), 413),
], ids=["not json", "empty", "named twice", "bad name", "too many"])
def test_batch_read_bounds(node_http: httpx.Client, body: bytes, status: int) -> None:
    r = node_http.post("/chunks/read", content=body)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error"}


def test_batch_read_refuses_more_bytes_than_a_batch(tmp_path: Path) -> None:
    store = DiskChunkStore(tmp_path / "store")
    items = [chunk(i, 1000) for i in range(5)]
    store.put_many(items)
    assert store.read_many([n for n, _ in items], 5000) == items
    with pytest.raises(PayloadTooLarge):
        store.read_many([n for n, _ in items], 4999)


def test_cluster_reads_in_batches_and_falls_back_for_bad_copies(tmp_path: Path) -> None:
    class CountingReads(AsyncMemoryChunkStore):
        def __init__(self) -> None:
            super().__init__()
            self.batches = 0
            self.gets = 0

        async def get_many(self, names: object) -> dict[str, bytes]:
            self.batches += 1
            return await super().get_many(names)  # type: ignore[arg-type]

        async def get(self, name: str) -> bytes:
            self.gets += 1
            return await super().get(name)

    stores: dict[str, CountingReads] = {n: CountingReads() for n in NODES}
    cluster = cluster_over(tmp_path / "reads", dict(stores))
    items = [chunk(i) for i in range(100)]
    holders = {}
    for name, data in items:
        holders[name] = cluster.placement(name)
        for node in holders[name]:
            stores[node].sync.put(name, data)
    sizes = {n: len(d) for n, d in items}
    got = asyncio.run(cluster.read_many(holders, sizes))
    assert got == dict(items)
    assert sum(s.batches for s in stores.values()) <= 3
    assert sum(s.gets for s in stores.values()) == 0
    # A copy gone and one rotted on the first holder: read again, marked bad, served by the
    # next holder; the rest still in one batch per node.
    with cluster.db.write() as conn:
        for name, data in items:
            chunk_repo.record_chunk(conn, name, len(data), holders[name], None, 0.0)
    gone, rotten = items[0][0], items[1][0]
    stores[cluster.read_order(gone, holders[gone])[0]].sync.delete(gone)
    stores[cluster.read_order(rotten, holders[rotten])[0]].sync.corrupt(rotten, b"rot")
    got = asyncio.run(cluster.read_many(holders, sizes))
    assert got == dict(items)
    with cluster.db.read() as conn:
        bad = conn.execute(select(replicas.c.chunk_hash).where(replicas.c.state == "bad")).all()
    assert sorted(r[0] for r in bad) == sorted([gone, rotten])
