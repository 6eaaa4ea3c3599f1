"""An in-memory chunk store: the fake for unit tests of code that needs a ``ChunkStore``.

It passes the same contract suite as the disk store and the node client, so a test that runs
against it says something true about the real ones. Two extras that only a fake can offer:
``capacity`` (to provoke ``StoreFull``) and ``corrupt`` (to plant bit rot).
"""

from __future__ import annotations

import bisect
import hashlib
import threading
from collections.abc import AsyncIterator, Iterator, Sequence

from minidropbox.core.errors import HashMismatch
from minidropbox.storage.base import ChunkNotFound, CorruptChunk, StoreFull, StoreStats
from minidropbox.storage.disk import BLOCK, check_name, check_range


class MemoryChunkStore:
    """Chunks in a dict, names kept sorted for ``list``. Thread-safe."""

    def __init__(self, capacity: int | None = None) -> None:
        self.capacity = capacity
        self._chunks: dict[str, bytes] = {}
        self._names: list[str] = []
        self._used = 0
        self._lock = threading.Lock()

    def put(self, name: str, data: bytes) -> None:
        check_name(name)
        if hashlib.sha256(data).hexdigest() != name:
            raise HashMismatch(f"The bytes received do not hash to {name}.")
        with self._lock:
            if name in self._chunks:
                return
            if self.capacity is not None and self._used + len(data) > self.capacity:
                raise StoreFull("The store is full.")
            self._chunks[name] = bytes(data)
            bisect.insort(self._names, name)
            self._used += len(data)

    def _bytes(self, name: str) -> bytes:
        check_name(name)
        try:
            return self._chunks[name]
        except KeyError:
            raise ChunkNotFound(f"Chunk {name} is not in this store.") from None

    def get(self, name: str) -> bytes:
        data = self._bytes(name)
        if hashlib.sha256(data).hexdigest() != name:
            raise CorruptChunk(f"Chunk {name} is corrupt.")
        return data

    def has(self, name: str) -> bool:
        return check_name(name) in self._chunks

    def delete(self, name: str) -> None:
        check_name(name)
        with self._lock:
            data = self._chunks.pop(name, None)
            if data is not None:
                self._names.pop(bisect.bisect_left(self._names, name))
                self._used -= len(data)

    def list(self, after: str = "", limit: int = 1000) -> list[str]:
        with self._lock:
            i = bisect.bisect_right(self._names, after)
            return self._names[i:i + max(limit, 0)]

    def stat(self) -> StoreStats:
        with self._lock:
            free = (self.capacity - self._used) if self.capacity is not None else 1 << 40
            return StoreStats(used_bytes=self._used, free_bytes=free,
                              chunk_count=len(self._chunks))

    def iter_range(self, name: str, start: int = 0, end: int | None = None,
                   block: int = BLOCK) -> Iterator[bytes]:
        data = self._bytes(name)
        stop = check_range(len(data), start, end)
        return (data[i:min(i + block, stop)] for i in range(start, stop, block))

    def corrupt(self, name: str, data: bytes) -> None:
        """Replace a stored chunk's bytes without checking them, as bit rot would."""
        self._bytes(name)
        self._chunks[name] = data


class AsyncMemoryChunkStore:
    """The in-memory store behind the async port (``AsyncChunkStore``): the fake node of the
    cluster's unit tests. ``sync`` is the store underneath, for planting faults."""

    def __init__(self, capacity: int | None = None) -> None:
        self.sync = MemoryChunkStore(capacity)

    async def put(self, name: str, data: bytes) -> None:
        self.sync.put(name, data)

    async def put_many(self, items: Sequence[tuple[str, bytes]]) -> list[bool | HashMismatch]:
        """The batch write (``BatchChunkStore``), chunk by chunk through ``put`` so a fault a
        test plants there fails the whole call, as a node's would."""
        results: list[bool | HashMismatch] = []
        for name, data in items:
            present = self.sync.has(name)
            try:
                await self.put(name, data)
            except HashMismatch as exc:
                results.append(exc)
                continue
            results.append(not present)
        return results

    async def get_many(self, names: Sequence[str]) -> dict[str, bytes]:
        """The batch read (``BatchReadStore``): unverified, as a node's."""
        return {n: self.sync._chunks[n] for n in names if self.sync.has(n)}

    async def get(self, name: str) -> bytes:
        return self.sync.get(name)

    async def has(self, name: str) -> bool:
        return self.sync.has(name)

    async def delete(self, name: str, before: float | None = None) -> None:
        self.sync.delete(name)  # in this process, at once: it cannot happen later

    async def list(self, after: str = "", limit: int = 1000) -> list[str]:
        return self.sync.list(after, limit)

    async def stat(self) -> StoreStats:
        return self.sync.stat()

    async def stream(self, name: str, start: int = 0,
                     end: int | None = None) -> AsyncIterator[bytes]:
        for block in self.sync.iter_range(name, start, end):
            yield block
