"""A streamed PUT is cut as it arrives (``StreamCutter``) into exactly the chunks a client cuts,
and stored several chunks at once within a byte bound, recorded in group commits
(``store_pipeline``)."""

from __future__ import annotations

import asyncio
import io
import random

import pytest

from minidropbox.core.chunking import MAX_CHUNK, MIN_CHUNK, StreamCutter, iter_chunks
from minidropbox.service.store_pipeline import Durable, GroupRecorder, StorePipeline


@pytest.mark.parametrize(("size", "random_bytes"), [
    (0, True), (100, True), (MIN_CHUNK - 1, True), (MIN_CHUNK, True), (MIN_CHUNK + 5, True),
    (9 * 1024 * 1024 + 7, True), (3 * MAX_CHUNK + 11, False), (MAX_CHUNK, False),
])
def test_cutting_as_blocks_arrive_gives_the_clients_chunks(size: int,
                                                           random_bytes: bool) -> None:
    rng = random.Random(size)
    data = rng.randbytes(size) if random_bytes else bytes(size)  # zeros: every cut at max
    expected = [(ref.hash, ref.length) for ref, _ in iter_chunks(io.BytesIO(data))]
    cutter = StreamCutter()
    got, offset = [], 0
    while offset < size:
        step = rng.choice([1, 4096, 65536, 1024 * 1024 + 3, 3 * 1024 * 1024])
        got += cutter.feed(data[offset:offset + step])
        offset += step
    got += cutter.finish()
    assert [(h, len(piece)) for h, piece in got] == expected
    assert b"".join(piece for _, piece in got) == data
    assert cutter.hashes == [h for h, _ in expected] and cutter.size == size


def test_chunks_are_stored_side_by_side_within_the_byte_bound_and_each_once() -> None:
    running, peak, stored = 0, 0, []

    async def store(chunk_hash: str, data: bytes) -> int:
        nonlocal running, peak
        running += len(data)
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= len(data)
        stored.append(chunk_hash)
        return len(data)

    async def run() -> None:
        pipeline = StorePipeline(store, ahead_bytes=3000)
        for i in [*range(10), 3, 4]:  # 3 and 4 repeat: stored once
            await pipeline.add(f"h{i}", b"x" * 1000)
        await pipeline.drain()

    asyncio.run(run())
    assert sorted(stored) == sorted(f"h{i}" for i in range(10))
    assert peak == 3000  # three at once: never more, and not one after the other


def test_the_first_failure_ends_the_upload_and_cancels_the_rest() -> None:
    cancelled = []

    async def store(chunk_hash: str, data: bytes) -> int:
        try:
            await asyncio.sleep(0 if chunk_hash == "bad" else 5)
        except asyncio.CancelledError:
            cancelled.append(chunk_hash)
            raise
        if chunk_hash == "bad":
            raise OSError("node gone")
        return len(data)

    async def run() -> None:
        pipeline = StorePipeline(store, ahead_bytes=10)
        try:
            for h in ["a", "b", "bad", "c"]:
                await pipeline.add(h, b"x")
            await pipeline.drain()
        finally:
            await pipeline.cancel()

    with pytest.raises(OSError, match="node gone"):
        asyncio.run(run())
    assert sorted(cancelled) == ["a", "b", "c"]


def test_durable_chunks_are_recorded_together_in_one_transaction() -> None:
    batches: list[list[str]] = []

    async def record_many(batch: list[Durable]) -> list[bool]:
        batches.append([d.chunk_hash for d in batch])
        await asyncio.sleep(0.01)  # the transaction: more chunks become durable meanwhile
        return [d.chunk_hash != "fenced" for d in batch]

    async def run() -> list[bool]:
        recorder = GroupRecorder(record_many)
        first = asyncio.ensure_future(recorder.record(Durable("a", 1, ["n1", "n2"], 1)))
        await asyncio.sleep(0)
        rest = [recorder.record(Durable(h, 1, ["n1", "n2"], 1)) for h in ("b", "fenced", "c")]
        return [await first, *await asyncio.gather(*rest)]

    assert asyncio.run(run()) == [True, True, False, True]
    assert batches == [["a"], ["b", "fenced", "c"]]


def test_blocks_larger_than_the_buffer_so_far_and_a_small_body() -> None:
    """The cutter's one buffer grows when a block does not fit even after the uncut bytes
    moved to its start, and stays small for a small body."""
    rng = random.Random(3)
    data = rng.randbytes(20 * 1024 * 1024 + 3)
    expected = [(ref.hash, ref.length) for ref, _ in iter_chunks(io.BytesIO(data))]
    cutter, got, offset = StreamCutter(), [], 0
    for step in (1000, 5 * 1024 * 1024, 10, 9 * 1024 * 1024, 65536, 1, 6 * 1024 * 1024):
        got += cutter.feed(memoryview(data)[offset:offset + step])
        offset += step
    got += cutter.feed(data[offset:])
    got += cutter.finish()
    assert [(h, len(piece)) for h, piece in got] == expected
    assert b"".join(piece for _, piece in got) == data
    small = StreamCutter()
    assert small.feed(b"x" * 4096) == []
    assert [len(piece) for _, piece in small.finish()] == [4096]
