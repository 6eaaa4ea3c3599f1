"""Storing a file the server cuts itself (a streamed PUT), chunk by chunk as its bytes arrive.

A chunk is stored while the next ones are still on the wire: up to ``STORE_AHEAD_BYTES`` of
chunks are on their way to the nodes at once (each waits on R fsyncs, so one after the other
would leave the nodes idle most of the time), and the body is never spooled, re-read or hashed
twice — the cutter named each chunk from the very bytes that go to the nodes (each node
verifies the name again before its fsync).

Recording is a group commit: chunks whose R copies are durable wait together for one write
transaction, rather than one each, so the metadata writer keeps up with the nodes. The write
ordering is ``ChunkService``'s: a chunk's rows are committed only after R nodes answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

STORE_AHEAD_BYTES = 16 * 1024 * 1024  # chunk bytes of one upload on their way to the nodes
RECORD_BATCH = 64  # durable chunks recorded in one transaction, at most


@dataclass
class Durable:
    """A chunk whose copies are durable, waiting for its rows: ``recorded`` says whether it
    was recorded (False: a deletion overlapped the write, so it must be written again)."""

    chunk_hash: str
    size: int
    holders: list[str]
    token: int
    recorded: asyncio.Future[bool] = field(default_factory=lambda: (
        asyncio.get_running_loop().create_future()))
    # Holders that already had a good copy and were not written this time: their rows are
    # left as they are now (one marked bad since the upload was admitted stays bad).
    kept: frozenset[str] = frozenset()


class GroupRecorder:
    """Records durable chunks in batches: one transaction for all those that became durable
    while the previous one ran. ``record_many`` runs in a thread and returns, per chunk,
    whether it was recorded, or raises (every waiter of that batch gets the error)."""

    def __init__(self, record_many: Callable[[list[Durable]], Awaitable[list[bool]]]) -> None:
        self._record_many = record_many
        self._waiting: list[Durable] = []
        self._running: asyncio.Task[None] | None = None

    async def record(self, item: Durable) -> bool:
        self._waiting.append(item)
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._drain())
        return await item.recorded

    async def settle(self) -> None:
        """Until every transaction started has ended (its waiters may have gone)."""
        if self._running is not None:
            await asyncio.gather(self._running, return_exceptions=True)

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:RECORD_BATCH], self._waiting[RECORD_BATCH:]
            try:
                results = await self._record_many(batch)
            except BaseException as exc:  # handed to every waiter, whatever it is
                for item in batch:
                    if not item.recorded.done():
                        item.recorded.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for item, ok in zip(batch, results, strict=True):
                if not item.recorded.done():
                    item.recorded.set_result(ok)


class StorePipeline:
    """Stores chunks handed over one by one (``add``), several at once, bounded by bytes; a
    chunk that repeats in the file is stored once. ``drain`` waits for all; the first
    failure is raised (by ``add`` or ``drain``) and cancels the rest."""

    def __init__(self, store: Callable[[str, bytes], Coroutine[Any, Any, int]],
                 ahead_bytes: int = STORE_AHEAD_BYTES) -> None:
        self._store = store
        self._ahead = ahead_bytes
        self._pending: dict[asyncio.Task[int], int] = {}
        self._scheduled: set[str] = set()

    async def add(self, chunk_hash: str, data: bytes) -> None:
        if chunk_hash in self._scheduled:
            return
        self._scheduled.add(chunk_hash)
        while self._pending and sum(self._pending.values()) + len(data) > self._ahead:
            await self._wait_one()
        self._pending[asyncio.create_task(self._store(chunk_hash, data))] = len(data)

    async def _wait_one(self) -> None:
        done, _ = await asyncio.wait(self._pending, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            del self._pending[task]
            task.result()  # the first failure ends the upload

    async def drain(self) -> None:
        while self._pending:
            await self._wait_one()

    async def cancel(self) -> None:
        for task in self._pending:
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        self._pending.clear()
