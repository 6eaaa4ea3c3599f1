"""Small PUT bodies of one account stored together: one batch write per node for several files.

A WebDAV client copying a folder of small files keeps several PUTs in flight (rclone: 4 or 8
transfers), each body one chunk. Stored one by one, each cost an admission read, a write of
the chunk to R nodes (R requests, each node's fsyncs) and a recording transaction, per file:
most of the nodes' CPU and a large share of the API's. Here, while one account's small body
is being stored, the small bodies of that account's other PUTs that arrive wait, and are
stored together as soon as it is done (group commit: no timer, so a lone PUT waits for
nothing) through ``ChunkService.store_batch`` — one admission transaction, one request per
node made durable with one flush, one recording transaction.

What each PUT means is unchanged: its body is fully received and hashed first, counted
against the quota as ``store_cut`` counts it, and its commit (version, journal, notification,
checksums) stays its own. A PUT with nothing in flight for its account is stored alone exactly
as before. If a batch fails (quota, storage, a deletion under way), each of its bodies is
stored again on its own through the ordinary path, so every PUT gets the answer it would have
had alone — a file that fits is never refused because another in its batch did not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from minidropbox.service.accounts import Principal
from minidropbox.service.chunks import ChunkService, RoomCheck

log = logging.getLogger("minidropbox.dav")

MAX_BATCH = 64  # bodies per batch; more wait for the next one


@dataclass
class _Waiting:
    principal: Principal
    chunk_hash: str
    data: bytes
    done: asyncio.Future[None]


@dataclass
class _Account:
    """An account with a store in flight, and the bodies waiting for the next batch."""

    waiting: list[_Waiting] = field(default_factory=list)


class SmallStores:
    def __init__(self, chunks: ChunkService) -> None:
        self.chunks = chunks
        self._accounts: dict[tuple[int, int, int | None], _Account] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0  # batches of more than one body stored (for tests and profiles)

    async def store(self, principal: Principal, chunk_hash: str, data: bytes,
                    room: RoomCheck | None) -> None:
        """Store one small body (its SHA-256 already taken) on R nodes, recorded as the
        caller's; with other PUTs of the account's in flight, together with them."""
        if room is not None:
            await room.take(len(data))  # as store_cut counts each piece
        key = (principal.user_id, principal.namespace_id, principal.quota_bytes)
        account = self._accounts.get(key)
        if account is not None:
            waiting = _Waiting(principal, chunk_hash, data,
                               asyncio.get_running_loop().create_future())
            account.waiting.append(waiting)
            await waiting.done
            return
        self._accounts[key] = _Account()
        try:
            await self._alone(principal, chunk_hash, data)
        finally:
            self._next(key)

    async def _alone(self, principal: Principal, chunk_hash: str, data: bytes) -> None:
        """The ordinary path of a one-chunk body (``store_cut``)."""
        async def one() -> AsyncIterator[tuple[str, bytes]]:
            yield chunk_hash, data
        await self.chunks.store_cut(principal, one())

    def _next(self, key: tuple[int, int, int | None]) -> None:
        """The store in flight for ``key`` is done: start the next batch, if any waits."""
        account = self._accounts[key]
        if not account.waiting:
            del self._accounts[key]
            return
        batch, account.waiting = account.waiting[:MAX_BATCH], account.waiting[MAX_BATCH:]
        task = asyncio.get_running_loop().create_task(self._batch(key, batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _batch(self, key: tuple[int, int, int | None], batch: list[_Waiting]) -> None:
        try:
            if len(batch) > 1:
                try:
                    await self.chunks.store_batch(batch[0].principal,
                                                  [(w.chunk_hash, w.data) for w in batch])
                except Exception as exc:  # each on its own: the answer it would have had alone
                    log.debug("a batch of %d small bodies failed (%s); storing each alone",
                              len(batch), exc)
                else:
                    self.batches += 1
                    for w in batch:
                        _settle(w.done, None)
                    return
            for w in batch:
                try:
                    await self._alone(w.principal, w.chunk_hash, w.data)
                except Exception as exc:
                    _settle(w.done, exc)
                else:
                    _settle(w.done, None)
        except BaseException as exc:  # cancelled (shutting down): nobody is left waiting
            for w in batch:
                _settle(w.done, exc if isinstance(exc, Exception) else
                        RuntimeError("the server is stopping"))
            raise
        finally:
            self._next(key)


def _settle(done: asyncio.Future[None], error: Exception | None) -> None:
    if done.done():  # the request went away meanwhile
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
