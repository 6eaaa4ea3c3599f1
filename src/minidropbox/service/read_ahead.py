"""A file's bytes from its chunk list, with the next chunks fetched while one is sent.

What one download may cost the cluster is bounded whatever its chunk list holds:

- at most ``max_bytes`` of chunks (at least one) and ``max_fetches`` distinct chunk fetches
  are ahead of what is being sent, counted as they change (never re-summed per chunk);
- a chunk listed again while it is still ahead is fetched once;
- small chunks (at most ``SMALL_CHUNK`` bytes) stay in a cache of ``SMALL_CACHE_BYTES`` for
  the rest of the download, so a file that lists a few tiny chunks thousands of times (a
  commit may name any chunk the user owns, as often as it likes) costs a few node reads, not
  thousands. Larger chunks move enough bytes to the client per fetch that repeating them buys
  an attacker nothing.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

SMALL_CHUNK = 64 * 1024
SMALL_CACHE_BYTES = 1024 * 1024
BLOCK = 1 << 20  # bytes handed to the server per yield
Bytes = bytes | bytearray  # a chunk as fetched: node clients receive into a bytearray


class ReadAhead:
    """Stream ``wanted`` = ``[(hash, size, slice start, slice stop)]`` in order."""

    def __init__(self, fetch: Callable[[str], Awaitable[Bytes]], max_bytes: int,
                 max_fetches: int) -> None:
        self.fetch = fetch
        self.max_bytes = max_bytes
        self.max_fetches = max(1, max_fetches)
        # Ahead of the sender, by hash: the fetch and how many queued places still use it.
        self._ahead: dict[str, tuple[asyncio.Future[Bytes], int]] = {}
        self._queued: deque[tuple[str, int]] = deque()  # (hash, size) in file order
        self._ahead_bytes = 0
        self._fetching = 0  # fetches not finished yet
        self._small: OrderedDict[str, Bytes] = OrderedDict()
        self._small_bytes = 0

    async def blocks(self, wanted: Sequence[tuple[str, int, int, int]],
                     ) -> AsyncIterator[bytes | memoryview]:
        next_fetch = 0
        pending = bytearray()  # small slices gathered into one write to the client
        try:
            for chunk_hash, size, lo, hi in wanted:
                while next_fetch < len(wanted) and self._take(*wanted[next_fetch][:2]):
                    next_fetch += 1
                data = await self._next(chunk_hash, size)
                # Views, not copies: the chunk is in memory already and the server writes
                # each block to the socket before asking for the next.
                view = memoryview(data)[lo:hi]
                if len(view) < SMALL_CHUNK:
                    pending += view
                    if len(pending) < SMALL_CHUNK:
                        continue
                    view, pending = memoryview(bytes(pending)), bytearray()
                elif pending:
                    yield bytes(pending)
                    pending = bytearray()
                for block in range(0, len(view), BLOCK):
                    yield view[block:block + BLOCK]
            if pending:
                yield bytes(pending)
        finally:
            for future, _ in self._ahead.values():
                future.cancel()

    def _take(self, chunk_hash: str, size: int) -> bool:
        """Queue the next place of the file (starting its fetch if needed), unless that would
        go past a bound while something is queued already."""
        new = chunk_hash not in self._ahead
        if self._queued and (self._ahead_bytes + size > self.max_bytes or (
                new and chunk_hash not in self._small and self._fetching >= self.max_fetches)):
            return False
        if new:
            self._ahead[chunk_hash] = (self._start(chunk_hash), 1)
        else:
            future, uses = self._ahead[chunk_hash]
            self._ahead[chunk_hash] = (future, uses + 1)
        self._queued.append((chunk_hash, size))
        self._ahead_bytes += size
        return True

    def _start(self, chunk_hash: str) -> asyncio.Future[Bytes]:
        cached = self._small.get(chunk_hash)
        if cached is not None:
            self._small.move_to_end(chunk_hash)
            done: asyncio.Future[Bytes] = asyncio.get_running_loop().create_future()
            done.set_result(cached)
            return done
        future = asyncio.ensure_future(self.fetch(chunk_hash))
        self._fetching += 1
        future.add_done_callback(self._fetched)
        return future

    def _fetched(self, _: asyncio.Future[Bytes]) -> None:
        self._fetching -= 1

    async def _next(self, chunk_hash: str, size: int) -> Bytes:
        self._queued.popleft()
        self._ahead_bytes -= size
        future, uses = self._ahead[chunk_hash]
        data = await future
        if uses == 1:
            del self._ahead[chunk_hash]
        else:
            self._ahead[chunk_hash] = (future, uses - 1)
        if len(data) <= SMALL_CHUNK and chunk_hash not in self._small:
            self._small[chunk_hash] = data
            self._small_bytes += len(data)
            while self._small_bytes > SMALL_CACHE_BYTES:
                _, dropped = self._small.popitem(last=False)
                self._small_bytes -= len(dropped)
        return data
