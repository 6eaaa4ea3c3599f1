"""The storage cluster as the API sees it: node clients, their health, placement, and the two
data-path operations every caller shares.

- ``read(chunk, holders)``: the verified bytes from the first holder that has them intact. A
  copy found missing or corrupt is marked bad (repair queued at priority 10); a node that fails
  is noted suspect and the next holder is tried. ``NoIntactCopy`` when none served.
- ``write(chunk, data)``: put the chunk on nodes until R hold it, a failed, full or hung
  node's place going to the next in rendezvous order; returns who holds it.

Both hedge (``core/latency.py``): a holder that has not answered within its recent p95 (a
read) or three times it (a write) gets company from the next node, so a hung node costs a
request a fraction of a second instead of ``node_timeout``.

Only ``StoreError`` counts as a node's fault. Anything else raised below (a bug) propagates:
it must not mark a healthy node suspect, nor turn into a 503.

Health comes from periodic ``/healthz`` probes and from real requests (a failed request marks
its node suspect at once). Writes go only to ``up`` nodes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from minidropbox.core.errors import HashMismatch
from minidropbox.core.health import DOWN, UP, NodeHealth, parse_node_spec
from minidropbox.core.latency import LatencyWindow, hedge_delay
from minidropbox.core.placement import place_replicas, rank_nodes
from minidropbox.metadata import nodes as node_repo
from minidropbox.metadata import replicas as replica_repo
from minidropbox.metadata.db import Database
from minidropbox.settings import Settings
from minidropbox.storage.base import (
    AsyncChunkStore,
    BatchChunkStore,
    BatchReadStore,
    DiskFault,
    NoIntactCopy,
    StoreError,
    StoreFull,
    StoreStats,
    copy_fault,
)
from minidropbox.storage.node_client import AsyncNodeClient
from minidropbox.storage.node_fetch import ReceiveBuffers
from minidropbox.storage.s3 import AsyncS3Store, is_object_store, location_from

log = logging.getLogger("minidropbox.cluster")
T = TypeVar("T")

NODE_BATCH_CHUNKS = 512  # chunks in one batch write to a node (its bound: core/chunk_batch.py)
NODE_BATCH_BYTES = 4 * 1024 * 1024  # chunk bytes in one batch write to a node
BATCH_FALLBACK_WRITES = 16  # chunks of a batch written (or read) one by one at once, at most


@dataclass(frozen=True)
class BatchItem:
    """A verified chunk for ``write_many``: nodes that hold a good copy already (``have``)
    and nodes that hold a known-bad one (``replace``)."""

    chunk_hash: str
    data: bytes
    have: list[str] = field(default_factory=list)
    replace: frozenset[str] = frozenset()


def _split_names(names: list[str], sizes: Mapping[str, int]) -> list[list[str]]:
    """``names`` in batch reads within ``NODE_BATCH_CHUNKS`` and ``NODE_BATCH_BYTES``."""
    parts: list[list[str]] = [[]]
    size = 0
    for name in names:
        if parts[-1] and (len(parts[-1]) >= NODE_BATCH_CHUNKS
                          or size + sizes[name] > NODE_BATCH_BYTES):
            parts.append([])
            size = 0
        parts[-1].append(name)
        size += sizes[name]
    return parts


def _intact(found: Mapping[str, bytes]) -> dict[str, bytes]:
    """The chunks of a batch read that hash to their names (the rest are read again)."""
    return {h: d for h, d in found.items() if hashlib.sha256(d).hexdigest() == h}


def _split_batch(items: list[BatchItem]) -> list[list[BatchItem]]:
    """``items`` in batch writes within ``NODE_BATCH_CHUNKS`` and ``NODE_BATCH_BYTES``."""
    parts: list[list[BatchItem]] = [[]]
    size = 0
    for item in items:
        if parts[-1] and (len(parts[-1]) >= NODE_BATCH_CHUNKS
                          or size + len(item.data) > NODE_BATCH_BYTES):
            parts.append([])
            size = 0
        parts[-1].append(item)
        size += len(item.data)
    return parts


class StorageCluster:
    def __init__(self, settings: Settings, db: Database,
                 clock: Callable[[], float] = time.time,
                 stores: Mapping[str, AsyncChunkStore] | None = None) -> None:
        """``stores`` replaces the node clients of ``read``, ``write`` and ``delete`` (tests
        run the cluster over in-memory stores); everything else talks to the nodes."""
        assert settings.cluster_secret
        self.settings = settings
        self.db = db
        self.clock = clock
        self.specs = [parse_node_spec(s, i) for i, s in enumerate(settings.nodes)]
        self.urls = dict(self.specs)
        self.health = {name: NodeHealth(name, last_ok=clock()) for name, _ in self.specs}
        self.stats: dict[str, dict[str, int]] = {}
        self._drain_flags: set[str] = set()  # drains an operator started (the nodes table)
        # Disk trouble a node reported (its /healthz, or a refused write): a full node takes
        # no new chunks; a faulty one ("read_only", "io_error") is drained as well.
        self.full: set[str] = set()
        self.faults: dict[str, str] = {}
        self._clients: dict[str, AsyncNodeClient | AsyncS3Store] = {}
        # Chunks read from any node are received into buffers from one pool (node_fetch.py).
        self._receive_buffers = ReceiveBuffers()
        self._stores = dict(stores or {})
        # What /healthz says of each node (direct transfers, service/direct.py): its current
        # id (new at each start of the node) and the URL clients should use. ``node_names``
        # keeps every id seen, so a receipt signed just before a node restarted still counts.
        self.node_ids: dict[str, str] = {}
        self.public_urls: dict[str, str] = {}
        self.node_names: dict[str, str] = {}
        self._latencies: dict[tuple[str, str], LatencyWindow] = {}
        # Chunk reads and writes open to each node at once. Waiting for a turn happens
        # before the node client's timeout starts, so a busy API never blames a node.
        self._turns = {name: asyncio.Semaphore(settings.node_requests_at_once)
                       for name, _ in self.specs}
        with db.write() as conn:
            node_repo.upsert_nodes(conn, self.specs)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.specs]

    def client(self, name: str) -> AsyncNodeClient | AsyncS3Store:
        """The node's own API (quarantine, size probes); chunk I/O goes through ``store``.
        A bucket (``s3://``) stands in for a node: it keeps its own copies (R = 1)."""
        if name not in self._clients:
            url, settings = self.urls[name], self.settings
            self._clients[name] = (
                AsyncS3Store(location_from(url, settings.s3_credentials_file),
                             settings.node_timeout, settings.s3_scrub_rate)
                if is_object_store(url) else
                AsyncNodeClient(url, settings.cluster_secret or "", settings.node_timeout,
                                self._receive_buffers))
        return self._clients[name]

    def store(self, name: str) -> AsyncChunkStore:
        return self._stores.get(name) or self.client(name)

    # -- placement --------------------------------------------------------------------------
    def up_nodes(self) -> list[str]:
        return [n for n in self.names if self.health[n].state == UP]

    @property
    def draining(self) -> set[str]:
        """Nodes whose replicas move elsewhere: drained by an operator, or with a faulty disk."""
        return self._drain_flags | set(self.faults)

    @draining.setter
    def draining(self, names: set[str]) -> None:
        self._drain_flags = set(names)

    def set_drain_flag(self, name: str, on: bool) -> None:
        if on:
            self._drain_flags.add(name)
        else:
            self._drain_flags.discard(name)

    def writable_nodes(self) -> list[str]:
        """Nodes that may take new replicas: up, not being drained, not full."""
        leaving = self.draining
        return [n for n in self.up_nodes() if n not in leaving and n not in self.full]

    def targets(self, chunk_hash: str) -> list[str]:
        """Where a new chunk should go, best first: all writable nodes in rendezvous order."""
        return rank_nodes(chunk_hash, self.writable_nodes())

    def placement(self, chunk_hash: str) -> list[str]:
        return place_replicas(chunk_hash, self.writable_nodes(), self.settings.replicas)

    def read_order(self, chunk_hash: str, holders: Sequence[str]) -> list[str]:
        """Replica holders in the order to read them: up nodes first, then rendezvous order."""
        ranked = rank_nodes(chunk_hash, [h for h in holders if h in self.health])
        return sorted(ranked, key=lambda n: self.health[n].state != UP)

    # -- the data path ----------------------------------------------------------------------
    async def read(self, chunk_hash: str, holders: Sequence[str]) -> bytes | bytearray:
        """The chunk's verified bytes from the first of ``holders`` (nodes recorded with an
        ``ok`` copy) that has them intact, in ``read_order``.

        Hedged: when a holder has not answered within its usual time (``read_hedge``), the
        next holder is asked too and the first intact answer wins; the others are cancelled.
        A holder that fails is replaced by the next at once. Copies found missing or corrupt
        are marked bad and queued for repair; nodes that fail are noted suspect.
        ``NoIntactCopy`` (a ``StoreUnavailable``) when no holder served.
        """
        order = self.read_order(chunk_hash, holders)
        failures: list[tuple[str, StoreError]] = []
        running: dict[asyncio.Task[bytes | bytearray], tuple[str, float]] = {}
        newest = ""
        try:
            while order or running:
                if not running:
                    newest = self._start(running, order.pop(0), self._getter(chunk_hash))
                wait = self.read_hedge(newest) if order else None
                finished, _ = await asyncio.wait(running, timeout=wait,
                                                 return_when=asyncio.FIRST_COMPLETED)
                if not finished:  # slow to answer: ask the next holder as well
                    newest = self._start(running, order.pop(0), self._getter(chunk_hash))
                    continue
                for task in finished:
                    node, started = running.pop(task)
                    try:
                        data = task.result()
                    except StoreError as exc:
                        failures.append((node, exc))
                        await self._read_failed(chunk_hash, node, exc)
                        continue
                    self._latency(node, "get").add(time.monotonic() - started)
                    self.note_success(node)
                    return data
            raise NoIntactCopy(chunk_hash, failures)
        finally:
            await _cancel(running)

    async def read_many(self, holders: Mapping[str, Sequence[str]],
                        sizes: Mapping[str, int]) -> dict[str, bytes | bytearray]:
        """``read`` for many small chunks (``holders``: chunk → nodes with an ``ok`` copy;
        ``sizes``: chunk → its size): their verified bytes, by hash.

        Each chunk is asked of its first holder in ``read_order``, the chunks bound for one
        node together in batch reads (``BatchReadStore``, within ``NODE_BATCH_CHUNKS`` and
        ``NODE_BATCH_BYTES``). A chunk its node lacks or returns damaged, or whose node fails
        or takes no batch reads, goes through ``read``, which marks bad copies, queues their
        repair and tries the next holders (``NoIntactCopy`` when none serves).
        """
        bound: dict[str, list[str]] = {}
        for chunk_hash, nodes in holders.items():
            order = self.read_order(chunk_hash, nodes)
            if order and isinstance(self.store(order[0]), BatchReadStore):
                bound.setdefault(order[0], []).append(chunk_hash)
        got: dict[str, bytes | bytearray] = {}

        async def batch(node: str, names: list[str]) -> None:
            store = self.store(node)
            assert isinstance(store, BatchReadStore)
            try:
                async with self._turns[node]:
                    found = await store.get_many(names)
            except StoreError as exc:
                log.warning("batch read of %d chunks from %s failed: %s", len(names), node,
                            exc.message)
                self.note_failure(node)
                return
            self.note_success(node)
            large = sum(len(d) for d in found.values()) > 256 * 1024
            got.update(await asyncio.to_thread(_intact, found) if large else _intact(found))

        await asyncio.gather(*(batch(node, part) for node, names in bound.items()
                               for part in _split_names(names, sizes)))
        gate = asyncio.Semaphore(BATCH_FALLBACK_WRITES)

        async def one(chunk_hash: str) -> None:
            async with gate:
                got[chunk_hash] = await self.read(chunk_hash, holders[chunk_hash])

        await asyncio.gather(*(one(h) for h in holders if h not in got))
        return got

    def _getter(self, chunk_hash: str,
                ) -> Callable[[str], Coroutine[Any, Any, bytes | bytearray]]:
        async def get(node: str) -> bytes | bytearray:
            async with self._turns[node]:
                return await self.store(node).get(chunk_hash)
        return get

    def _start(self, running: dict[asyncio.Task[T], tuple[str, float]], node: str,
               call: Callable[[str], Coroutine[Any, Any, T]]) -> str:
        running[asyncio.create_task(call(node))] = (node, time.monotonic())
        return node

    def _latency(self, node: str, kind: str) -> LatencyWindow:
        return self._latencies.setdefault((node, kind), LatencyWindow())

    def read_hedge(self, node: str) -> float:
        """Seconds a read from ``node`` may take before the next holder is asked too: its
        recent p95, within [``hedge_min``, ``hedge_max``]."""
        s = self.settings
        return hedge_delay(self._latency(node, "get"), s.hedge_min, s.hedge_max,
                           unknown=min(s.hedge_max, 0.25))

    def write_hedge(self, node: str) -> float:
        """Seconds a write to ``node`` may take before one more target is tried in parallel:
        three times its recent p95 (fsync times vary more than reads), within
        [0.25 s, ``write_hedge_max``]."""
        s = self.settings
        return hedge_delay(self._latency(node, "put"), max(0.25, s.hedge_min),
                           s.write_hedge_max, scale=3)

    async def _read_failed(self, chunk_hash: str, node: str, exc: StoreError) -> None:
        reason = copy_fault(exc)
        if reason is None:
            log.warning("read of %s from %s failed: %s", chunk_hash[:12], node, exc.message)
            self.note_failure(node)
            return
        log.warning("replica of %s on %s is %s", chunk_hash[:12], node, reason)
        await asyncio.to_thread(self._mark_bad, chunk_hash, node, reason)

    def _mark_bad(self, chunk_hash: str, node: str, reason: str) -> None:
        with self.db.write() as conn:
            replica_repo.mark_bad(conn, chunk_hash, node, reason, self.clock(), priority=10)

    async def write(self, chunk_hash: str, data: bytes, *, have: Collection[str] = (),
                    replace: Collection[str] = (), targets: Sequence[str] | None = None,
                    copies: int | None = None) -> list[str]:
        """Put verified bytes on nodes until ``copies`` (default R) hold them; returns the
        holders (``have``, which already hold a good copy, first).

        ``targets`` (default: every writable node in rendezvous order) are written in
        parallel, as many as are missing; a node that fails or is full gives its place to the
        next, and so does one that has not finished within ``write_hedge`` (it keeps running:
        the first to succeed count).
        A node in ``replace`` holds a known-bad copy, deleted first (a node keeps the file it
        has on PUT). Fewer holders than asked is not an error here: the caller decides.
        """
        wanted = self.settings.replicas if copies is None else copies
        done = list(have)
        candidates = [n for n in (self.targets(chunk_hash) if targets is None else targets)
                      if n not in done]
        running: dict[asyncio.Task[bool], tuple[str, float]] = {}
        hedged: set[str] = set()  # slow writes already covered by one more target

        def put(node: str) -> Coroutine[Any, Any, bool]:
            return self._put(node, chunk_hash, data, node in replace)

        try:
            while len(done) < wanted:
                while len(done) + len(running) - len(hedged) < wanted and candidates:
                    self._start(running, candidates.pop(0), put)
                if not running:
                    break
                now = time.monotonic()
                slow = {n: started + self.write_hedge(n) for n, started in running.values()
                        if n not in hedged}
                wait = max(0.0, min(slow.values()) - now) if candidates and slow else None
                finished, _ = await asyncio.wait(running, timeout=wait,
                                                 return_when=asyncio.FIRST_COMPLETED)
                if not finished:
                    # A hung node: its place goes to the next target now, not at its timeout
                    # (if it still succeeds, its copy is an orphan the sweep removes).
                    hedged.add(min(slow, key=lambda n: slow[n]))
                    continue
                for task in finished:
                    node, started = running.pop(task)
                    hedged.discard(node)
                    if task.result():
                        self._latency(node, "put").add(time.monotonic() - started)
                        done.append(node)
        finally:
            await _cancel(running)
        return done

    async def _put(self, node: str, chunk_hash: str, data: bytes, replace: bool) -> bool:
        store = self.store(node)
        try:
            async with self._turns[node]:
                if replace:
                    await store.delete(chunk_hash)
                await store.put(chunk_hash, data)
        except (StoreError, HashMismatch) as exc:
            self._write_failed(node, chunk_hash[:12], exc)
            return False
        self.note_success(node)
        return True

    def _write_failed(self, node: str, what: str, exc: StoreError | HashMismatch) -> None:
        if isinstance(exc, StoreFull):
            log.warning("node %s is full: no new chunks go there until it has room", node)
            self.full.add(node)
        elif isinstance(exc, DiskFault):
            log.error("node %s has a faulty disk (%s): draining it", node, exc.fault)
            self.faults[node] = exc.fault
        else:
            # The bytes were verified before this call: a node that finds them wrong got
            # them damaged on the way, which is the node's or the network's fault.
            log.warning("write of %s to %s failed: %s", what, node, exc.message)
            self.note_failure(node)

    async def write_many(self, items: Sequence[BatchItem]) -> dict[str, list[str]]:
        """``write`` for many (small, verified) chunks at once: their holders, by hash.

        Each chunk is placed as ``write`` places it (rendezvous order over writable nodes,
        ``have`` kept), but the copies bound for one node travel together in batch writes
        (``BatchChunkStore``, at most ``NODE_BATCH_CHUNKS`` / ``NODE_BATCH_BYTES`` a request),
        which the node makes durable with one flush. A chunk that has fewer than R holders
        after that (its node failed, was full, or found the bytes damaged), or that needs a
        bad copy replaced, or whose node takes no batches, goes through ``write``, which
        tries the next nodes. Fewer holders than R is not an error here: the caller decides.
        """
        wanted = self.settings.replicas
        holders = {item.chunk_hash: list(item.have) for item in items}
        singles: list[BatchItem] = []
        bound: dict[str, list[BatchItem]] = {}
        for item in items:
            picks = [n for n in self.targets(item.chunk_hash)
                     if n not in item.have][:max(0, wanted - len(item.have))]
            if any(n in item.replace or not isinstance(self.store(n), BatchChunkStore)
                   for n in picks):
                singles.append(item)
                continue
            for node in picks:
                bound.setdefault(node, []).append(item)
        sends = [self._put_batch(node, part) for node, group in bound.items()
                 for part in _split_batch(group)]
        for node, done in await asyncio.gather(*sends):
            for chunk_hash in done:
                holders[chunk_hash].append(node)
        alone = {i.chunk_hash for i in singles}
        short = singles + [i for i in items if i.chunk_hash not in alone
                           and len(holders[i.chunk_hash]) < wanted]
        gate = asyncio.Semaphore(BATCH_FALLBACK_WRITES)

        async def one(item: BatchItem) -> None:
            async with gate:
                holders[item.chunk_hash] = await self.write(
                    item.chunk_hash, item.data, have=holders[item.chunk_hash],
                    replace=item.replace)

        await asyncio.gather(*(one(i) for i in short))
        return holders

    async def _put_batch(self, node: str, items: list[BatchItem]) -> tuple[str, list[str]]:
        """One batch write to ``node``: the node and the chunks it now holds."""
        store = self.store(node)
        assert isinstance(store, BatchChunkStore)
        try:
            async with self._turns[node]:
                results = await store.put_many([(i.chunk_hash, i.data) for i in items])
        except (StoreError, HashMismatch) as exc:
            self._write_failed(node, f"a batch of {len(items)} chunks", exc)
            return node, []
        self.note_success(node)
        done = []
        for item, result in zip(items, results, strict=True):
            if isinstance(result, HashMismatch):
                log.warning("write of %s to %s failed: %s", item.chunk_hash[:12], node,
                            result.message)
            else:
                done.append(item.chunk_hash)
        return node, done

    async def delete(self, node: str, chunk_hash: str, before: float | None = None) -> bool:
        """Delete one copy; False (logged) when the node could not. ``before``: the deadline
        of the deletion fence the caller holds (epoch seconds), which the node is told never
        to delete after (``AsyncChunkStore.delete``)."""
        try:
            await self.store(node).delete(chunk_hash, before=before)
        except StoreError as exc:
            log.warning("could not delete %s from %s: %s", chunk_hash[:12], node, exc.message)
            return False
        return True

    # -- health -----------------------------------------------------------------------------
    def note_success(self, name: str) -> None:
        if name in self.health:
            self.health[name].record_success(self.clock())

    def note_failure(self, name: str, reason: str | None = None) -> None:
        if name in self.health:
            self.health[name].record_failure(self.clock(), self.settings.node_down_after)
            log.warning("storage node %s is %s%s", name, self.health[name].state,
                        f": {reason}" if reason else "")

    async def probe_once(self) -> None:
        async def probe(name: str) -> None:
            store = self.store(name)
            try:
                # A bucket's exact stat lists every object: probe it cheaply instead.
                stats = await (store.probe() if isinstance(store, AsyncS3Store)
                               else store.stat())
            except StoreError as exc:
                self.note_failure(name, exc.message)
                return
            self.stats[name] = asdict(stats)
            self._note_identity(name, stats)
            self._disk_report(name, stats)
            self.note_success(name)

        await asyncio.gather(*(probe(n) for n in self.names))
        now = self.clock()
        for h in self.health.values():
            h.tick(now, self.settings.node_down_after)

    def _note_identity(self, name: str, stats: StoreStats) -> None:
        if stats.node_id is None:
            return  # not a node that takes grants (a bucket, an older node)
        if len(self.node_names) > 10_000:  # a node restarting in a loop: keep the current ids
            self.node_names = {i: n for n, i in self.node_ids.items()}
        self.node_ids[name] = stats.node_id
        self.node_names[stats.node_id] = name
        self.public_urls[name] = (stats.public_url or self.urls[name]).rstrip("/")

    def _disk_report(self, name: str, stats: StoreStats) -> None:
        """Take a node's own word on its disk: faulty or not, and room for a chunk or not."""
        if stats.fault and self.faults.get(name) != stats.fault:
            log.error("node %s reports a faulty disk (%s): draining it", name, stats.fault)
        if stats.fault:
            self.faults[name] = stats.fault
        elif self.faults.pop(name, None):
            log.warning("node %s reports its disk healthy again", name)
        if stats.free_bytes < self.settings.max_chunk_bytes:
            self.full.add(name)
        else:
            self.full.discard(name)

    async def probe_forever(self) -> None:
        while True:
            await self.probe_once()
            await asyncio.sleep(self.settings.health_interval)

    def state(self, name: str) -> str:
        return self.health[name].state if name in self.health else DOWN

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()


async def _cancel(running: Mapping[asyncio.Task[Any], object]) -> None:
    """Cancel the requests a hedge made redundant (or the caller abandoned), and wait for them
    so none is left running or with an unretrieved exception."""
    for task in running:
        task.cancel()
    if running:
        await asyncio.gather(*running, return_exceptions=True)
