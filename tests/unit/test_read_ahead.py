"""The download read-ahead: bounded fetches in flight, repeated and small chunks fetched once,
bytes in order."""

from __future__ import annotations

import asyncio
import hashlib

from minidropbox.service.read_ahead import SMALL_CHUNK, ReadAhead


class CountingStore:
    def __init__(self, chunks: dict[str, bytes]) -> None:
        self.chunks = chunks
        self.reads: list[str] = []
        self.in_flight = self.most_in_flight = 0

    async def fetch(self, chunk_hash: str) -> bytes:
        self.reads.append(chunk_hash)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.001)
        self.in_flight -= 1
        return self.chunks[chunk_hash]


def _chunks(*payloads: bytes) -> dict[str, bytes]:
    return {hashlib.sha256(p).hexdigest(): p for p in payloads}


def _read(store: CountingStore, order: list[str], max_fetches: int = 4,
          max_bytes: int = 8 << 20) -> bytes:
    wanted = [(h, len(store.chunks[h]), 0, len(store.chunks[h])) for h in order]

    async def run() -> bytes:
        ahead = ReadAhead(store.fetch, max_bytes, max_fetches)
        return b"".join([bytes(b) async for b in ahead.blocks(wanted)])

    return asyncio.run(run())


def test_one_tiny_chunk_listed_ten_thousand_times_is_read_once() -> None:
    store = CountingStore(_chunks(b"x"))
    (h,) = store.chunks
    assert _read(store, [h] * 10_000) == b"x" * 10_000
    assert store.reads == [h]


def test_interleaved_small_chunks_are_read_once_each() -> None:
    payloads = [bytes([i]) * 100 for i in range(50)]
    store = CountingStore(_chunks(*payloads))
    order = list(store.chunks) * 200
    assert _read(store, order) == b"".join(payloads) * 200
    assert sorted(store.reads) == sorted(store.chunks)
    assert store.most_in_flight <= 4


def test_large_chunks_are_bounded_by_fetches_and_bytes() -> None:
    payloads = [bytes([i]) * (SMALL_CHUNK + 1) for i in range(40)]
    store = CountingStore(_chunks(*payloads))
    order = list(store.chunks)
    assert _read(store, order, max_fetches=3) == b"".join(payloads)
    assert store.most_in_flight <= 3
    store.reads.clear()
    store.most_in_flight = 0
    # A byte budget smaller than two chunks: one fetch at a time, never none.
    assert _read(store, order, max_bytes=SMALL_CHUNK + 1) == b"".join(payloads)
    assert store.most_in_flight == 1 and len(store.reads) == 40
