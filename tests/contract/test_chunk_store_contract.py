"""One suite, every chunk store: the in-memory fake, the disk store, and a real storage node
process over HTTP through both clients — the blocking one (backup, tools) and the async one
every upload and download of the API goes through (run here from a blocking portal). A store
that passes it honours the contract in ``storage/base.py``.
"""

from __future__ import annotations

import hashlib
import os
import random
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import obstore
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from minidropbox.core.errors import HashMismatch, InvalidInput, RangeNotSatisfiable
from minidropbox.storage.base import (
    AsyncChunkStore,
    ChunkNotFound,
    ChunkStore,
    CorruptChunk,
    StoreStats,
)
from minidropbox.storage.disk import BLOCK, DiskChunkStore
from minidropbox.storage.memory import AsyncMemoryChunkStore, MemoryChunkStore
from minidropbox.storage.node_client import AsyncNodeClient, NodeClient
from minidropbox.storage.s3 import AsyncS3Store, S3ChunkStore, S3Location
from tests.harness import ServerProcess, start_node
from tests.seaweedfs import SeaweedFS

SECRET = "contract-suite-cluster-secret"
MiB = 1 << 20


def name_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chunk(seed: int, size: int = 1000) -> bytes:
    return random.Random(seed).randbytes(size)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and "secrets" not in p.parts)


@dataclass
class StoreUnderTest:
    store: ChunkStore
    corrupt: Callable[[str, bytes], None]
    """Overwrite a stored chunk's bytes behind the store's back, as bit rot would."""
    leftovers: Callable[[], list[Path]]
    """Every file the store keeps (empty for the fake): nothing stray may remain."""


def _overwrite(root: Path) -> Callable[[str, bytes], None]:
    def corrupt(name: str, data: bytes) -> None:
        (root / name[:2] / name[2:4] / name).write_bytes(data)
    return corrupt


class Blocking:
    """An ``AsyncChunkStore`` driven from blocking code, so the one suite runs it too."""

    def __init__(self, store: AsyncChunkStore, portal: BlockingPortal) -> None:
        self.store, self.portal = store, portal

    def put(self, name: str, data: bytes) -> None:
        self.portal.call(self.store.put, name, data)

    def get(self, name: str) -> bytes:
        return self.portal.call(self.store.get, name)

    def has(self, name: str) -> bool:
        return self.portal.call(self.store.has, name)

    def delete(self, name: str) -> None:
        self.portal.call(self.store.delete, name)

    def list(self, after: str = "", limit: int = 1000) -> list[str]:
        return self.portal.call(self.store.list, after, limit)

    def stat(self) -> StoreStats:
        return self.portal.call(self.store.stat)

    def iter_range(self, name: str, start: int = 0, end: int | None = None,
                   block: int = BLOCK) -> Iterator[bytes]:
        async def collect() -> list[bytes]:
            blocks: AsyncIterator[bytes] = self.store.stream(name, start, end)
            return [b async for b in blocks]
        return iter(self.portal.call(collect))


@pytest.fixture(scope="module")
def portal() -> Iterator[BlockingPortal]:
    with start_blocking_portal() as running:
        yield running


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    # One node process for the module (starting one per test would dominate the run time);
    # the fixture below empties it between tests.
    tmp = tmp_path_factory.mktemp("node")
    server = start_node(tmp, "node1", SECRET)
    try:
        yield server, tmp / "node1"
    finally:
        server.stop()


def _s3_under_test(store: ChunkStore, location: S3Location) -> StoreUnderTest:
    raw = location.open(30.0)

    def corrupt(name: str, data: bytes) -> None:
        obstore.put(raw, location.key(name), data)

    def leftovers() -> list[Path]:  # any object of the prefix that is not a whole chunk
        keys = [str(m["path"]) for batch in obstore.list(raw, location.prefix.rstrip("/"))
                for m in batch]
        return [Path(k) for k in keys if not k.startswith(location.chunks_prefix + "/")]

    return StoreUnderTest(store, corrupt, leftovers)


@pytest.fixture(params=["memory", "async-memory", "disk", "node", "async-node", "s3",
                        "async-s3"])
def sut(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreUnderTest]:
    if request.param in ("s3", "async-s3"):
        # A fresh prefix per test in one real SeaweedFS bucket (tests/seaweedfs.py).
        server: SeaweedFS = request.getfixturevalue("seaweed")
        location = S3Location.parse(server.url("contract", f"t{secrets.token_hex(6)}"),
                                    server.credentials)
        if request.param == "s3":
            yield _s3_under_test(S3ChunkStore(location), location)
            return
        yield _s3_under_test(Blocking(AsyncS3Store(location, timeout=30),
                                      request.getfixturevalue("portal")), location)
    elif request.param == "memory":
        memory = MemoryChunkStore()
        yield StoreUnderTest(memory, memory.corrupt, lambda: [])
    elif request.param == "async-memory":
        fake = AsyncMemoryChunkStore()
        yield StoreUnderTest(Blocking(fake, request.getfixturevalue("portal")), fake.sync.corrupt,
                             lambda: [])
    elif request.param == "disk":
        root = tmp_path / "chunks"
        yield StoreUnderTest(DiskChunkStore(root), _overwrite(root), lambda: files_under(root))
    else:
        server, root = request.getfixturevalue("node")
        with NodeClient(server.url, SECRET, timeout=10) as client:
            for name in client.list(limit=10_000):
                client.delete(name)
            if request.param == "node":
                yield StoreUnderTest(client, _overwrite(root), lambda: files_under(root))
                return
        running: BlockingPortal = request.getfixturevalue("portal")
        async_client = AsyncNodeClient(server.url, SECRET, timeout=10)
        try:
            yield StoreUnderTest(Blocking(async_client, running), _overwrite(root),
                                 lambda: files_under(root))
        finally:
            running.call(async_client.aclose)


@pytest.mark.parametrize("size", [0, 1, 1000, MiB + 3])
def test_put_get_round_trip(sut: StoreUnderTest, size: int) -> None:
    data = chunk(size, size)
    sut.store.put(name_of(data), data)
    assert sut.store.has(name_of(data))
    assert sut.store.get(name_of(data)) == data


def test_put_is_idempotent(sut: StoreUnderTest) -> None:
    data = chunk(1)
    sut.store.put(name_of(data), data)
    sut.store.put(name_of(data), data)
    assert sut.store.get(name_of(data)) == data
    assert sut.store.list() == [name_of(data)]
    assert sut.store.stat().chunk_count == 1
    assert sut.store.stat().used_bytes == len(data)


def test_mismatch_is_rejected_and_nothing_kept(sut: StoreUnderTest) -> None:
    data, other = chunk(1), chunk(2)
    with pytest.raises(HashMismatch):
        sut.store.put(name_of(data), other)
    assert not sut.store.has(name_of(data))
    assert sut.store.list() == []
    assert sut.store.stat().chunk_count == 0
    assert sut.leftovers() == []


def test_mismatch_on_a_present_chunk_is_still_rejected(sut: StoreUnderTest) -> None:
    data = chunk(1)
    sut.store.put(name_of(data), data)
    with pytest.raises(HashMismatch):
        sut.store.put(name_of(data), chunk(2))
    assert sut.store.get(name_of(data)) == data


def test_missing_chunk(sut: StoreUnderTest) -> None:
    name = name_of(b"never stored")
    assert not sut.store.has(name)
    with pytest.raises(ChunkNotFound):
        sut.store.get(name)
    with pytest.raises(ChunkNotFound):
        b"".join(sut.store.iter_range(name, 0, 10))
    sut.store.delete(name)  # missing is not an error


def test_delete(sut: StoreUnderTest) -> None:
    keep, gone = chunk(1), chunk(2)
    sut.store.put(name_of(keep), keep)
    sut.store.put(name_of(gone), gone)
    sut.store.delete(name_of(gone))
    assert not sut.store.has(name_of(gone))
    with pytest.raises(ChunkNotFound):
        sut.store.get(name_of(gone))
    assert sut.store.list() == [name_of(keep)]
    assert sut.store.stat().chunk_count == 1
    sut.store.delete(name_of(gone))
    assert sut.store.stat().chunk_count == 1


def test_list_is_ascending_and_pages(sut: StoreUnderTest) -> None:
    names = sorted(name_of(data) for data in (chunk(i, 10) for i in range(25)))
    for i in range(25):
        sut.store.put(name_of(chunk(i, 10)), chunk(i, 10))
    assert sut.store.list() == names
    pages, after = [], ""
    while page := sut.store.list(after=after, limit=10):
        pages.append(page)
        after = page[-1]
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [n for p in pages for n in p] == names
    assert sut.store.list(after=names[7], limit=3) == names[8:11]
    assert sut.store.list(after=names[-1]) == []
    # ``after`` need not be a stored name, nor a whole one.
    assert sut.store.list(after=names[12][:3]) == [n for n in names if n > names[12][:3]]


@pytest.mark.parametrize(("start", "end"), [
    (0, None), (0, 1), (5, 100), (MiB - 1, MiB + 1), (MiB, 2 * MiB + 500), (1234, None),
    (2 * MiB + 500, None), (700, 700)])
def test_iter_range_slices(sut: StoreUnderTest, start: int, end: int | None) -> None:
    data = chunk(3, 2 * MiB + 500)
    sut.store.put(name_of(data), data)
    blocks = list(sut.store.iter_range(name_of(data), start, end))
    assert b"".join(blocks) == data[start:end]
    assert all(len(b) <= MiB for b in blocks)


def test_iter_range_small_blocks(sut: StoreUnderTest) -> None:
    data = chunk(4, 10_000)
    sut.store.put(name_of(data), data)
    blocks = list(sut.store.iter_range(name_of(data), 10, 9_990, block=1000))
    assert b"".join(blocks) == data[10:9_990]


@pytest.mark.parametrize(("start", "end"), [(1001, None), (0, 1001), (500, 1500), (2000, 3000)])
def test_iter_range_outside_the_chunk(sut: StoreUnderTest, start: int, end: int | None) -> None:
    data = chunk(5, 1000)
    sut.store.put(name_of(data), data)
    with pytest.raises(RangeNotSatisfiable):
        b"".join(sut.store.iter_range(name_of(data), start, end))


def test_stat_counts(sut: StoreUnderTest) -> None:
    sizes = [0, 10, 4096, MiB]
    for i, size in enumerate(sizes):
        sut.store.put(name_of(chunk(i, size)), chunk(i, size))
    stats = sut.store.stat()
    assert stats.chunk_count == len(sizes)
    assert stats.used_bytes == sum(sizes)
    assert stats.free_bytes > 0
    sut.store.delete(name_of(chunk(3, MiB)))
    assert sut.store.stat().used_bytes == sum(sizes) - MiB


def test_corrupt_chunk_is_detected_on_get(sut: StoreUnderTest) -> None:
    data = chunk(6, 5000)
    sut.store.put(name_of(data), data)
    rotten = bytearray(data)
    rotten[2500] ^= 0x01
    sut.corrupt(name_of(data), bytes(rotten))
    with pytest.raises(CorruptChunk):
        sut.store.get(name_of(data))


@pytest.mark.parametrize("name", ["", "abc", "A" * 64, "g" * 64, "0" * 63, "../" + "0" * 61])
def test_invalid_names_are_refused(sut: StoreUnderTest, name: str) -> None:
    with pytest.raises(InvalidInput):
        sut.store.put(name, b"x")
    with pytest.raises(InvalidInput):
        sut.store.get(name)


def test_random_operations_match_a_model(sut: StoreUnderTest) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    print(f"seed={seed}")
    rng = random.Random(seed)
    model: dict[str, bytes] = {}
    pool = [chunk(i, rng.randrange(0, 3000)) for i in range(12)]
    for _ in range(60):
        data = rng.choice(pool)
        name = name_of(data)
        op = rng.random()
        if op < 0.5:
            sut.store.put(name, data)
            model[name] = data
        elif op < 0.8:
            sut.store.delete(name)
            model.pop(name, None)
        elif name in model:
            assert sut.store.get(name) == data
        else:
            with pytest.raises(ChunkNotFound):
                sut.store.get(name)
    assert sut.store.list() == sorted(model)
    stats = sut.store.stat()
    assert (stats.chunk_count, stats.used_bytes) == (len(model), sum(map(len, model.values())))
