"""Everything about chunks a user sends and reads: which ones they must send, their quota and
used bytes, storing them on the cluster, a whole streamed file cut into chunks, and reading a
file's bytes back.

Write ordering (the durability rule): the bytes are verified against their name, written to R
nodes in parallel (each node fsyncs before answering), and only then are the chunk, replica
and ownership rows committed. A chunk is never visible in the metadata before R replicas are
durable. Reads go through the cluster (``StorageCluster.read``), which verifies every byte,
falls over, and queues repairs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from minidropbox.core.chunking import StreamCutter, check_chunk_hash, sha256_hex
from minidropbox.core.errors import (
    HashMismatch,
    PayloadTooLarge,
    QuotaExceeded,
    StorageUnavailable,
)
from minidropbox.metadata import chunks as repo
from minidropbox.metadata import fence, journal
from minidropbox.metadata import replicas as replica_repo
from minidropbox.metadata.db import Database
from minidropbox.service.accounts import Principal
from minidropbox.service.cluster import BatchItem, StorageCluster
from minidropbox.service.fence import wait_closed
from minidropbox.service.quota import StoreRoom, check_store_room
from minidropbox.service.read_ahead import ReadAhead
from minidropbox.service.store_pipeline import Durable, GroupRecorder, StorePipeline

log = logging.getLogger("minidropbox.chunks")

FENCE_RETRIES = 5
READ_AHEAD_BYTES = 8 * 1024 * 1024  # chunk bytes a download fetches ahead of what it sends
FETCHES_PER_DOWNLOAD = 4  # distinct chunks a download fetches at once, at most


@dataclass(frozen=True)
class StoredFile:
    """A whole file stored as chunks: what a commit of it needs."""

    size: int
    chunks: list[str]


class ChunkService:
    def __init__(self, db: Database, cluster: StorageCluster, replicas: int,
                 clock: Callable[[], float] = time.time,
                 fetches_per_download: int = FETCHES_PER_DOWNLOAD) -> None:
        self.db = db
        self.fetches_per_download = fetches_per_download
        self.cluster = cluster
        self.replicas = replicas
        self.clock = clock

    # -- what the user has ------------------------------------------------------------------
    def missing(self, principal: Principal, hashes: list[str]) -> list[str]:
        """The hashes this user must upload: those they never proved they have, or whose every
        copy is known to be bad. Each once, in the order asked."""
        for h in hashes:
            check_chunk_hash(h)
        with self.db.read() as conn:
            present = repo.owned_with_replica(conn, principal.user_id, hashes)
        return list(dict.fromkeys(h for h in hashes if h not in present))

    def used_bytes(self, principal: Principal) -> int:
        """The bytes the quota counts (committed versions only)."""
        with self.db.read() as conn:
            return repo.used_bytes(conn, principal.user_id)

    def usage(self, principal: Principal) -> repo.ChunkUsage:
        with self.db.read() as conn:
            return repo.usage(conn, principal.user_id)

    def check_room(self, principal: Principal, size: int) -> None:
        """Refuse at once a whole file that cannot fit (each chunk is checked again as it is
        stored): ``PayloadTooLarge`` past the whole quota, ``QuotaExceeded`` past what is left."""
        if principal.quota_bytes is None:
            return
        if size > principal.quota_bytes:
            raise PayloadTooLarge("The file is larger than the account's whole quota.")
        with self.db.read() as conn:
            check_store_room(conn, principal, size)

    def _room(self, principal: Principal) -> int | None:
        """Bytes left in the quota (None: no quota)."""
        if principal.quota_bytes is None:
            return None
        return max(0, principal.quota_bytes - self.used_bytes(principal))

    # -- writes -----------------------------------------------------------------------------
    async def store(self, principal: Principal, chunk_hash: str, data: bytes) -> int:
        """Verify, place on R nodes, record. Returns the chunk size."""
        await self._verify(chunk_hash, data)
        return await self._store_named(principal, chunk_hash, data,
                                       lambda item: self._record_one(principal, item))

    async def store_batch(self, principal: Principal,
                          parts: list[tuple[str, bytes]]) -> list[int]:
        """Several small chunks (a multipart batch): each verified, then all admitted in one
        transaction, placed on R nodes in batch writes (``StorageCluster.write_many``: one
        request per node for many chunks, made durable with one flush) and recorded in one
        transaction — instead of a transaction, R requests and R pairs of fsyncs per chunk,
        which is what bounded many small files. Their sizes, in order; a chunk that cannot
        get R copies fails the batch."""
        for chunk_hash, data in parts:
            await self._verify(chunk_hash, data)
        pending = dict(parts)
        for _ in range(FENCE_RETRIES):
            # The deletion fence, as in _store_named: chunks whose record finds that a
            # deletion overlapped their writes are written again once it has ended.
            pending = await self._store_all(principal, pending)
            if not pending:
                return [len(data) for _, data in parts]
            await wait_closed(self.db, self.clock)
        raise StorageUnavailable("Storage is busy deleting unused data; try again shortly.")

    async def _store_all(self, principal: Principal,
                         chunks: dict[str, bytes]) -> dict[str, bytes]:
        """One round of ``store_batch``: the chunks left to store again (a deletion overlapped)."""
        sizes = {h: len(d) for h, d in chunks.items()}
        admitted, token = await run_in_threadpool(self._admit_many, principal, sizes)
        if token is None:
            return chunks  # a deletion is under way: wait for it
        writes = [BatchItem(h, chunks[h], have=holders if owned else [], replace=stale)
                  for h, (holders, stale, owned) in admitted.items()
                  if len(holders) < self.replicas or not owned]  # as _store_named decides
        written = await self.cluster.write_many(writes) if writes else {}
        durable = []
        for h, (holders, _, owned) in admitted.items():
            held = written.get(h, holders)
            if len(held) < self.replicas:
                raise StorageUnavailable(
                    f"Only {len(held)} of the {self.replicas} storage nodes needed could "
                    "store the data; try again when more nodes are up.")
            kept = frozenset(holders) if owned else frozenset()  # as BatchItem's have
            durable.append(Durable(h, sizes[h], held, token, kept=kept))
        recorded = await run_in_threadpool(self._record_many, principal, durable)
        return {item.chunk_hash: chunks[item.chunk_hash]
                for item, ok in zip(durable, recorded, strict=True) if not ok}

    @staticmethod
    async def _verify(chunk_hash: str, data: bytes) -> None:
        check_chunk_hash(chunk_hash)
        actual = sha256_hex(data) if len(data) < 65536 else await asyncio.to_thread(
            sha256_hex, data)
        if actual != chunk_hash:
            raise HashMismatch(f"The body hashes to {actual}, not {chunk_hash}.")

    async def _record_one(self, principal: Principal, item: Durable) -> bool:
        return (await run_in_threadpool(self._record_many, principal, [item]))[0]

    async def _store_named(self, principal: Principal, chunk_hash: str, data: bytes,
                           record: Callable[[Durable], Awaitable[bool]],
                           gained: set[str] | None = None) -> int:
        """Place bytes known to hash to ``chunk_hash`` on R nodes, then ``record`` them;
        ``gained`` collects the chunks the user did not own when they were admitted."""
        # The deletion fence (metadata/fence.py): if a deletion of node copies overlapped
        # this write, our copies may be gone, so wait for it to end and write again.
        for _ in range(FENCE_RETRIES):
            holders, stale, token, owned = await run_in_threadpool(
                self._admit, principal, chunk_hash, len(data))
            if gained is not None and not owned:
                gained.add(chunk_hash)
            if token is not None:
                # A chunk that someone else stored costs the same as a new one: its copies
                # are written again (the nodes keep the ones they have). Skipping them would
                # answer faster, telling the uploader that someone has this content.
                kept = frozenset(holders) if owned else frozenset()  # not written again
                if len(holders) < self.replicas or not owned:
                    holders = await self.cluster.write(
                        chunk_hash, data, have=holders if owned else (), replace=stale)
                    if len(holders) < self.replicas:
                        raise StorageUnavailable(
                            f"Only {len(holders)} of the {self.replicas} storage nodes needed "
                            "could store the data; try again when more nodes are up.")
                if await record(Durable(chunk_hash, len(data), holders, token, kept=kept)):
                    return len(data)
            await wait_closed(self.db, self.clock)
        raise StorageUnavailable("Storage is busy deleting unused data; try again shortly.")

    async def store_stream(self, principal: Principal, body: AsyncIterable[bytes],
                           declared_size: int | None = None) -> StoredFile:
        """A whole file sent in one stream, cut into chunks like a client would as its bytes
        arrive, each chunk stored while the next ones come in (memory stays flat whatever
        the size). ``declared_size`` (a Content-Length) lets a file that cannot fit be
        refused before a byte is read."""
        cutter = StreamCutter()

        async def pieces() -> AsyncIterator[tuple[str, bytes]]:
            async for block in body:
                await room.take(len(block))
                if not block:
                    continue
                done = (cutter.feed(block) if len(block) < 65536
                        else await run_in_threadpool(cutter.feed, block))
                for piece in done:
                    yield piece
            for piece in await run_in_threadpool(cutter.finish):
                yield piece

        room = await self.room_check(principal, declared_size)
        await self.store_cut(principal, pieces())
        return StoredFile(size=cutter.size, chunks=cutter.hashes)

    async def room_check(self, principal: Principal,
                         declared_size: int | None = None) -> RoomCheck:
        """Quota for a streamed body: a declared size is judged at once; a body without one
        (chunked) as it arrives, refused as soon as it passes the room left."""
        if declared_size is not None:
            await run_in_threadpool(self.check_room, principal, declared_size)
        return RoomCheck(self, principal, await run_in_threadpool(self._room, principal))

    async def store_cut(self, principal: Principal, pieces: AsyncIterable[tuple[str, bytes]],
                        room: RoomCheck | None = None) -> None:
        """Store a file's chunks as a ``StreamCutter`` in this process hands them over
        (hash, bytes): the cutter hashed those very bytes, so they are not hashed again
        here (each node still verifies them). Several are stored at once and recorded in
        group commits (``store_pipeline``). ``room`` counts each against the quota before
        it is stored. The first failure cancels the rest."""
        recorder = GroupRecorder(lambda batch: run_in_threadpool(
            self._record_many, principal, batch))
        gained: set[str] = set()
        pipeline = StorePipeline(lambda h, data: self._store_named(
            principal, h, data, recorder.record, gained))
        try:
            async for chunk_hash, data in pieces:
                if room is not None:
                    await room.take(len(data))
                await pipeline.add(chunk_hash, data)
            await pipeline.drain()
        except (QuotaExceeded, PayloadTooLarge):
            # Refused for its size: what it stored so far is not counted as the user's (it
            # is left to GC), as if the whole body had been judged before any was stored.
            await pipeline.cancel()
            await recorder.settle()
            await run_in_threadpool(self._release, principal, sorted(gained))
            raise
        finally:
            await pipeline.cancel()

    def _release(self, principal: Principal, hashes: list[str]) -> None:
        if hashes:
            with self.db.write() as conn:
                repo.release(conn, principal.user_id, hashes)

    def _admit(self, principal: Principal, chunk_hash: str,
               size: int) -> tuple[list[str], set[str], int | None, bool]:
        """Quota check (before any byte is kept); returns the nodes already holding a good
        copy, those holding a bad one, the deletion-fence token to record under (None
        while a deletion runs), and whether the user owns the chunk already.

        Without a quota there is nothing to serialise: a read transaction will do, so chunk
        uploads do not queue behind each other on the database's one writer."""
        with self.db.write() if principal.quota_bytes is not None else self.db.read() as conn:
            if principal.quota_bytes is not None:
                journal.lock_namespace(conn, principal.namespace_id)
                check_store_room(conn, principal, size, chunk_hash)
            return ([n for n in replica_repo.good_replicas(conn, chunk_hash)
                     if n in self.cluster.health],
                    set(replica_repo.bad_holders(conn, chunk_hash)), fence.writer_token(conn),
                    repo.user_owns(conn, principal.user_id, chunk_hash))

    def _admit_many(self, principal: Principal, sizes: dict[str, int],
                    ) -> tuple[dict[str, tuple[list[str], frozenset[str], bool]], int | None]:
        """``_admit`` for many chunks in one transaction and a few queries: per chunk, the
        nodes holding a good copy, those holding a bad one, and whether the user owns it;
        and the deletion-fence token. The quota is taken chunk by chunk (``StoreRoom``), so
        the batch is refused if its new chunks do not fit together."""
        hashes = list(sizes)
        with self.db.write() if principal.quota_bytes is not None else self.db.read() as conn:
            if principal.quota_bytes is not None:
                journal.lock_namespace(conn, principal.namespace_id)
                room = StoreRoom(conn, principal, hashes)
                for chunk_hash, size in sizes.items():
                    room.take(chunk_hash, size)
            good = replica_repo.replicas_for(conn, hashes)
            bad = replica_repo.bad_holders_of(conn, hashes)
            owned = repo.owned_among(conn, principal.user_id, hashes)
            token = fence.writer_token(conn)
        health = self.cluster.health
        return ({h: ([n for n in good[h] if n in health], frozenset(bad[h]), h in owned)
                 for h in hashes}, token)

    def _record_many(self, principal: Principal, items: list[Durable]) -> list[bool]:
        """Record durable copies, several chunks in one transaction and a few statements;
        per chunk, False when a deletion overlapped its write (it must be written again)."""
        refused: QuotaExceeded | None = None
        results = []
        owned: list[repo.NewChunk] = []
        unowned: list[repo.NewChunk] = []
        with self.db.write() as conn:
            if principal.quota_bytes is not None:
                journal.lock_namespace(conn, principal.namespace_id)
            valid = {t: fence.still_valid(conn, t) for t in {item.token for item in items}}
            room = StoreRoom(conn, principal, [i.chunk_hash for i in items if valid[i.token]])
            for item in items:
                if not valid[item.token]:
                    results.append(False)
                    continue
                # The quota again, under the lock: uploads admitted side by side may have
                # taken the room since. The copies are then recorded without an owner, so
                # nobody can reference them and GC deletes them after its grace period.
                new = repo.NewChunk(item.chunk_hash, item.size,
                                    [n for n in item.holders if n not in item.kept],
                                    [n for n in item.holders if n in item.kept])
                try:
                    room.take(item.chunk_hash, item.size)
                    owned.append(new)
                except QuotaExceeded as exc:
                    refused = exc
                    unowned.append(new)
                results.append(True)
            now = self.clock()
            repo.record_chunks(conn, owned, principal.user_id, now)
            repo.record_chunks(conn, unowned, None, now)
        if refused is not None:
            raise refused
        return results

    # -- reads ------------------------------------------------------------------------------
    def _holders(self, hashes: list[str]) -> dict[str, list[str]]:
        with self.db.read() as conn:
            return replica_repo.replicas_for(conn, hashes)

    async def read_files(self, chunk_lists: list[list[tuple[str, int]]]) -> list[bytes]:
        """The whole, verified bytes of several small files (the many-small-files download):
        every chunk's holders read in one query, the chunks read in batch reads
        (``StorageCluster.read_many``: one request per node, not one per chunk). The caller
        bounds the bytes: they are all held at once."""
        sizes = {h: size for chunk_list in chunk_lists for h, size in chunk_list}
        if not sizes:
            return [b"" for _ in chunk_lists]
        holders = await run_in_threadpool(self._holders, list(sizes))
        found = await self.cluster.read_many(holders, sizes)
        return [b"".join([found[h] for h, _ in chunk_list]) for chunk_list in chunk_lists]

    async def stream(self, chunk_list: list[tuple[str, int]], start: int,
                     end: int) -> AsyncGenerator[bytes | memoryview, None]:
        """Bytes ``start..end`` (inclusive) of a file made of ``chunk_list``, verified.

        The next chunks are fetched while the current one is sent, so the network to the
        client and to the nodes overlap, within the bounds of ``ReadAhead``: at most
        ``READ_AHEAD_BYTES`` and ``fetches_per_download`` fetches ahead, repeated chunks
        fetched once.
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
        ahead = ReadAhead(lambda h: self.cluster.read(h, holders[h]), READ_AHEAD_BYTES,
                          self.fetches_per_download)
        async for block in ahead.blocks(wanted):
            yield block



class RoomCheck:
    """Counts a streamed body's bytes against the room its account had left when it began;
    past it, the room is read again (a commit may have freed some) and, if still passed, the
    upload is refused before any more of it is stored."""

    def __init__(self, chunks: ChunkService, principal: Principal, room: int | None) -> None:
        self.chunks, self.principal, self.room = chunks, principal, room
        self.received = 0

    async def take(self, size: int) -> None:
        self.received += size
        if self.room is not None and self.received > self.room:
            self.room = await run_in_threadpool(self.chunks._room, self.principal)
            if self.room is not None and self.received > self.room:
                await run_in_threadpool(self.chunks.check_room, self.principal, self.received)
