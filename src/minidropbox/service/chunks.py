"""Chunk writes and reads across the storage cluster.

Write ordering (the durability rule): the bytes are verified against their name, written to R
nodes in parallel (each node fsyncs before answering), and only then are the chunk, replica
and ownership rows committed. A chunk is never visible in the metadata before R replicas are
durable. Reads try replicas in order, verify every byte, fall over, and queue repairs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from minidropbox.core.chunking import check_chunk_hash, sha256_hex
from minidropbox.core.errors import HashMismatch, QuotaExceeded, StorageUnavailable
from minidropbox.metadata import chunks as repo
from minidropbox.metadata import fence, journal
from minidropbox.metadata import replicas as replica_repo
from minidropbox.metadata.db import Database
from minidropbox.service.accounts import Principal
from minidropbox.service.cluster import StorageCluster
from minidropbox.service.fence import wait_closed
from minidropbox.storage.base import ChunkNotFound, CorruptChunk, StoreFull

log = logging.getLogger("minidropbox.chunks")

FENCE_RETRIES = 5
READ_AHEAD_BYTES = 8 * 1024 * 1024  # chunk bytes a download fetches ahead of what it sends


class ChunkService:
    def __init__(self, db: Database, cluster: StorageCluster, replicas: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.cluster = cluster
        self.replicas = replicas
        self.clock = clock

    # -- writes -----------------------------------------------------------------------------
    async def store(self, principal: Principal, chunk_hash: str, data: bytes) -> int:
        """Verify, place on R nodes, record. Returns the chunk size."""
        check_chunk_hash(chunk_hash)
        actual = sha256_hex(data) if len(data) < 65536 else await asyncio.to_thread(
            sha256_hex, data)
        if actual != chunk_hash:
            raise HashMismatch(f"The body hashes to {actual}, not {chunk_hash}.")
        # The deletion fence (metadata/fence.py): if a deletion of node copies overlapped
        # this write, our copies may be gone, so wait for it to end and write again.
        for _ in range(FENCE_RETRIES):
            holders, stale, token = await run_in_threadpool(self._admit, principal,
                                                            chunk_hash, len(data))
            if token is not None:
                if len(holders) < self.replicas:
                    holders = await self._replicate(chunk_hash, data, holders, stale)
                if await run_in_threadpool(self._record, principal, chunk_hash, len(data),
                                           holders, token):
                    return len(data)
            await wait_closed(self.db, self.clock)
        raise StorageUnavailable("Storage is busy deleting unused data; try again shortly.")

    def _admit(self, principal: Principal, chunk_hash: str,
               size: int) -> tuple[list[str], set[str], int | None]:
        """Quota check (before any byte is kept); returns the nodes already holding a good
        copy, those holding a bad one, and the deletion-fence token to record under (None
        while a deletion runs).

        Without a quota there is nothing to serialise: a read transaction will do, so chunk
        uploads do not queue behind each other on the database's one writer."""
        with self.db.write() if principal.quota_bytes is not None else self.db.read() as conn:
            if principal.quota_bytes is not None:
                journal.lock_namespace(conn, principal.namespace_id)
                _check_quota(conn, principal, chunk_hash, size)
            return ([n for n in repo.good_replicas(conn, chunk_hash)
                     if n in self.cluster.health],
                    set(replica_repo.bad_holders(conn, chunk_hash)), fence.writer_token(conn))

    async def _replicate(self, chunk_hash: str, data: bytes, holders: list[str],
                         stale: set[str]) -> list[str]:
        """Put the chunk on nodes until R hold it; ``stale`` nodes hold a bad copy.

        A node keeps the file it has on PUT, so a copy known to be bad is deleted first."""
        done = list(holders)
        candidates = [n for n in self.cluster.targets(chunk_hash) if n not in done]
        while len(done) < self.replicas and candidates:
            batch, candidates = (candidates[: self.replicas - len(done)],
                                 candidates[self.replicas - len(done):])
            results = await asyncio.gather(*(self._put(n, chunk_hash, data, n in stale)
                                             for n in batch))
            done += [n for n, ok in zip(batch, results, strict=True) if ok]
        if len(done) < self.replicas:
            raise StorageUnavailable(
                f"Only {len(done)} of the {self.replicas} storage nodes needed could store the "
                "data; try again when more nodes are up.")
        return done

    async def _put(self, node: str, chunk_hash: str, data: bytes, replace: bool = False) -> bool:
        try:
            if replace:
                await self.cluster.client(node).delete(chunk_hash)
            await self.cluster.client(node).put(chunk_hash, data)
        except StoreFull:
            log.warning("node %s is full", node)
            return False
        except Exception as exc:
            log.warning("write of %s to %s failed: %s", chunk_hash[:12], node, exc)
            self.cluster.note_failure(node)
            return False
        self.cluster.note_success(node)
        return True

    def _record(self, principal: Principal, chunk_hash: str, size: int,
                holders: list[str], token: int) -> bool:
        """Record the durable copies; False when a deletion overlapped the write."""
        refused: QuotaExceeded | None = None
        owner: int | None = principal.user_id
        with self.db.write() as conn:
            if principal.quota_bytes is not None:
                journal.lock_namespace(conn, principal.namespace_id)
            if not fence.still_valid(conn, token):
                return False
            # The quota again, under the lock: uploads admitted side by side may have taken
            # the room since. The copies are then recorded without an owner, so nobody can
            # reference them and GC deletes them after its grace period.
            try:
                _check_quota(conn, principal, chunk_hash, size)
            except QuotaExceeded as exc:
                refused, owner = exc, None
            repo.record_chunk(conn, chunk_hash, size, holders, owner, self.clock())
        if refused is not None:
            raise refused
        return True

    # -- reads ------------------------------------------------------------------------------
    async def fetch(self, chunk_hash: str, holders: list[str] | None = None) -> bytes:
        """The verified bytes of a chunk, from the first replica that has them intact."""
        if holders is None:
            holders = (await run_in_threadpool(self._holders, [chunk_hash]))[chunk_hash]
        for node in self.cluster.read_order(chunk_hash, holders):
            try:
                data = await self.cluster.client(node).get(chunk_hash)
            except (ChunkNotFound, CorruptChunk) as exc:
                reason = "missing" if isinstance(exc, ChunkNotFound) else "corrupt"
                log.warning("replica of %s on %s is %s", chunk_hash[:12], node, reason)
                await run_in_threadpool(self._mark_bad, chunk_hash, node, reason)
                continue
            except Exception as exc:
                log.warning("read of %s from %s failed: %s", chunk_hash[:12], node, exc)
                self.cluster.note_failure(node)
                continue
            self.cluster.note_success(node)
            return data
        raise StorageUnavailable(f"No intact replica of chunk {chunk_hash[:12]} is reachable.")

    def _holders(self, hashes: list[str]) -> dict[str, list[str]]:
        with self.db.read() as conn:
            return repo.replicas_for(conn, hashes)

    def _mark_bad(self, chunk_hash: str, node: str, reason: str) -> None:
        with self.db.write() as conn:
            repo.mark_bad(conn, chunk_hash, node, reason, self.clock(), priority=10)

    async def stream(self, chunk_list: list[tuple[str, int]], start: int,
                     end: int) -> AsyncIterator[bytes | memoryview]:
        """Bytes ``start..end`` (inclusive) of a file made of ``chunk_list``, verified.

        The next chunks are fetched while the current one is sent, so the network to the
        client and to the nodes overlap: up to ``READ_AHEAD_BYTES`` of chunks (at least one)
        are on their way or waiting, besides the one being sent.
        """
        wanted: list[tuple[str, int, int, int]] = []  # (hash, size, slice start, slice end)
        offset = 0
        for chunk_hash, size in chunk_list:
            lo, hi = offset, offset + size - 1
            if hi >= start and lo <= end:
                wanted.append((chunk_hash, size, max(start, lo) - lo, min(end, hi) - lo + 1))
            offset += size
        if not wanted:
            return
        holders = await run_in_threadpool(self._holders, [w[0] for w in wanted])
        ahead: deque[tuple[asyncio.Task[bytes], int]] = deque()
        next_fetch = 0
        try:
            for _, _, lo, hi in wanted:
                while next_fetch < len(wanted) and (
                        not ahead or sum(n for _, n in ahead) + wanted[next_fetch][1]
                        <= READ_AHEAD_BYTES):
                    h, size = wanted[next_fetch][:2]
                    ahead.append((asyncio.create_task(self.fetch(h, holders[h])), size))
                    next_fetch += 1
                data = await ahead.popleft()[0]
                # Views, not copies: the chunk is in memory already and the server writes
                # each block to the socket before asking for the next.
                view = memoryview(data)[lo:hi]
                for block in range(0, len(view), 1 << 20):
                    yield view[block:block + (1 << 20)]
        finally:
            for task, _ in ahead:
                task.cancel()

    def status(self) -> dict[str, Any]:
        return {"nodes_up": len(self.cluster.up_nodes()), "replicas": self.replicas}


def _check_quota(conn: Connection, principal: Principal, chunk_hash: str, size: int) -> None:
    """``QuotaExceeded`` unless ``size`` more bytes fit (a chunk the user has is free).

    Callers hold the namespace lock, so two uploads cannot both take the last free bytes.
    """
    if principal.quota_bytes is None or repo.user_owns(conn, principal.user_id, chunk_hash):
        return
    used = repo.used_bytes(conn, principal.user_id)
    if used + size > principal.quota_bytes:
        raise QuotaExceeded(
            f"This upload needs {size} bytes but only "
            f"{max(0, principal.quota_bytes - used)} of your quota are left.")
