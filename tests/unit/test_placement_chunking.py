from __future__ import annotations

import hashlib
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from minidropbox.core.chunking import (
    MAX_CHUNK,
    MIN_CHUNK,
    chunk_bytes,
    content_hash,
    iter_chunks,
)
from minidropbox.core.placement import place_replicas, rank_nodes

NODES = ["node-1", "node-2", "node-3"]


@given(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
def test_placement_is_stable_and_distinct(h: str) -> None:
    placed = place_replicas(h, NODES, 2)
    assert len(set(placed)) == 2
    assert placed == place_replicas(h, list(reversed(NODES)), 2)
    # A down node's place goes to the next in this chunk's order.
    order = rank_nodes(h, NODES)
    without_first = place_replicas(h, [n for n in NODES if n != order[0]], 2)
    assert without_first == order[1:3]


def test_placement_spreads_load() -> None:
    counts = dict.fromkeys(NODES, 0)
    for i in range(3000):
        for n in place_replicas(hashlib.sha256(str(i).encode()).hexdigest(), NODES, 2):
            counts[n] += 1
    assert all(1700 < c < 2300 for c in counts.values()), counts


def test_chunk_bounds_and_stream_agree() -> None:
    rng = random.Random(7)
    data = rng.randbytes(9 * 1024 * 1024)
    pieces = chunk_bytes(data)
    assert b"".join(p for _, p in pieces) == data
    assert all(MIN_CHUNK <= r.length <= MAX_CHUNK for r, _ in pieces[:-1])
    import io

    streamed = [ref for ref, _ in iter_chunks(io.BytesIO(data))]
    assert streamed == [ref for ref, _ in pieces]


@settings(max_examples=5, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_insert_changes_few_chunks(seed: int) -> None:
    rng = random.Random(seed)
    data = rng.randbytes(12 * 1024 * 1024)
    middle = len(data) // 2
    edited = data[:middle] + b"X" + data[middle:]
    before = {r.hash for r, _ in chunk_bytes(data)}
    after = [r.hash for r, _ in chunk_bytes(edited)]
    assert sum(1 for h in after if h not in before) <= 3


def test_content_hash_of_empty_file() -> None:
    assert content_hash([]) == hashlib.sha256(b"").hexdigest()


class _Trickle:
    """A reader that hands out at most ``step`` bytes per call (a socket, a slow disk)."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.pos, self.step = data, 0, step

    def readinto(self, buffer: memoryview, /) -> int:
        n = min(len(buffer), self.step, len(self.data) - self.pos)
        buffer[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


def test_small_streams_cut_as_the_buffer_chunker_does() -> None:
    """Streams below MIN_CHUNK skip the stream chunker (one chunk, hashed at once); at and
    above it the cuts must still be exactly the buffer chunker's, however the bytes arrive."""
    rng = random.Random(11)
    for size in (0, 1, 100, MIN_CHUNK - 1, MIN_CHUNK, MIN_CHUNK + 1, 3 * MIN_CHUNK + 5,
                 6 * 1024 * 1024 + 3):
        data = rng.randbytes(size)
        want = [ref for ref, _ in chunk_bytes(data)]
        for step in (7, 65536, size or 1):
            got = []
            for ref, piece in iter_chunks(_Trickle(data, step)):
                assert bytes(piece) == data[ref.offset : ref.offset + ref.length]
                got.append(ref)
            assert got == want, (size, step)
