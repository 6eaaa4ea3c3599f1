"""The repair loop: bring every chunk back to R healthy replicas, at a limited rate.

Each pass takes the repair queue first (a read or the audit found a bad or missing copy), then
walks every chunk. For each it asks ``core.repair.plan_chunk`` what is missing, then:

1. reads the chunk from a good replica through the cluster (``StorageCluster.read``: the hash
   is verified, a missing or corrupt copy is marked bad and the next source tried), so
   corruption is never copied;
2. PUTs it to each target (``StorageCluster.write``; the node verifies again) and records the
   new ``ok`` replicas, under the deletion fence like any writer;
3. only when every target holds a copy, drops the copies the plan lets go (bad, on a draining
   node, or surplus when rebalancing): the rows go in a fenced transaction that re-plans from
   fresh state, then the files are deleted from their nodes.

Copies are paced at ``repair_rate`` chunks per second so repair never starves user traffic.

One pass at a time in the whole cluster: the loop runs only on the leader, and every pass
(the loop's, ``admin repair`` or a rebalance on any replica) holds ``REPAIR_LOCK``
(``leader.cluster_exclusive``), so each chunk is repaired by one replica, never copied twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from minidropbox.core.pacing import Pacer
from minidropbox.core.repair import RepairPlan, plan_chunk
from minidropbox.metadata import chunks as chunk_repo
from minidropbox.metadata import fence
from minidropbox.metadata import nodes as node_repo
from minidropbox.metadata import replicas as replica_repo
from minidropbox.metadata.db import Database
from minidropbox.service.cluster import StorageCluster
from minidropbox.service.leader import REPAIR_LOCK, cluster_exclusive
from minidropbox.storage.base import StoreError

log = logging.getLogger("minidropbox.repair")

PAGE = 500
DROP_BATCH = 100
WALK_EVERY = 12  # passes between full walks when nothing seems to change
UNREADABLE_SHOWN = 5  # chunk names in a pass's line about chunks it could not read


@dataclass
class RepairReport:
    checked: int = 0
    copied: int = 0
    dropped: int = 0
    failed: int = 0
    waiting: int = 0  # under-replicated with nowhere to copy to, or no intact source
    drops: list[tuple[str, str]] = field(default_factory=list)
    # Chunks none of whose good copies could be read: their nodes are down (they wait), or
    # every copy is damaged (``admin check`` names the files). One log line per pass, with
    # the count and the first few names.
    unreadable: int = 0
    unreadable_sample: list[str] = field(default_factory=list)

    def note_unreadable(self, chunk_hash: str) -> None:
        self.unreadable += 1
        if len(self.unreadable_sample) < UNREADABLE_SHOWN:
            self.unreadable_sample.append(chunk_hash)


class RepairService:
    def __init__(self, db: Database, cluster: StorageCluster, replicas: int, rate: float,
                 interval: float, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.cluster = cluster
        self.replicas = replicas
        self.interval = interval
        self.clock = clock
        self.pacer = Pacer(rate)
        self._lock = asyncio.Lock()  # one pass at a time (the loop and admin requests)
        self.last_report = RepairReport()
        self._passes = 0
        self._last_view: tuple[tuple[str, str], ...] = ()
        self._dirty = True

    async def run_forever(self) -> None:
        while True:
            await self.run_once()
            await asyncio.sleep(self.interval)

    async def run_once(self, rebalance: bool = False) -> RepairReport:
        """One pass: the queue, then every chunk; returns what it did."""
        async with self._lock, cluster_exclusive(self.db.url, REPAIR_LOCK):
            report = RepairReport()
            await asyncio.to_thread(self._sync_draining)
            queued = await asyncio.to_thread(self._page, None)
            await self._repair_batch(queued, report, rebalance)
            # Dequeued even if their repair failed: the walk below (and every later pass)
            # still finds them; the queue only decides what goes first.
            await asyncio.to_thread(self._write, replica_repo.dequeue, queued)
            if rebalance or self._walk_due():
                after = ""
                while True:
                    page = await asyncio.to_thread(self._page, after)
                    await self._repair_batch(page, report, rebalance)
                    if len(page) < PAGE:
                        break
                    after = page[-1]
                self._walked(report)
            await self._drop(report)
            self.last_report = report
            if report.copied or report.dropped or report.failed:
                log.info("repair pass: %d checked, %d copied, %d dropped, %d failed, "
                         "%d waiting", report.checked, report.copied, report.dropped,
                         report.failed, report.waiting)
            if report.unreadable:
                more = report.unreadable - len(report.unreadable_sample)
                log.error("repair pass: no intact copy of %d chunk(s) could be read (%s%s); "
                          "a chunk whose nodes are down waits for them, `admin check` names "
                          "files with no intact copy left", report.unreadable,
                          ", ".join(h[:12] for h in report.unreadable_sample),
                          f" and {more} more" if more else "")
            return report

    # -- planning ---------------------------------------------------------------------------
    def _view(self) -> tuple[tuple[str, str], ...]:
        return tuple((n, self.cluster.state(n) + ("-" if n in self.cluster.draining else ""))
                     for n in self.cluster.names)

    def _walk_due(self) -> bool:
        """Walk every chunk when node states or drains changed since the last clean walk, when
        that walk left work undone, and at least every ``WALK_EVERY`` passes; otherwise the
        queue alone (fed by reads, the audit and scrub reports) is enough."""
        self._passes += 1
        return (self._passes >= WALK_EVERY or self._view() != self._last_view
                or self._dirty)

    def _walked(self, report: RepairReport) -> None:
        self._passes = 0
        self._last_view = self._view()
        self._dirty = bool(report.failed or report.waiting or report.drops
                           or report.copied or report.dropped)

    def _sync_draining(self) -> None:
        """Drains may have been started through another API replica: take the DB's word."""
        with self.db.read() as conn:
            self.cluster.draining = node_repo.draining(conn) & set(self.cluster.names)

    def _page(self, after: str | None) -> list[str]:
        """The queue (``after`` None) or the next page of every chunk."""
        with self.db.read() as conn:
            if after is None:
                return replica_repo.queued(conn, PAGE)
            return chunk_repo.chunk_page(conn, after, PAGE)

    def _write(self, fn: Callable[..., object], *args: object) -> None:
        with self.db.write() as conn:
            fn(conn, *args)

    def _plans(self, hashes: list[str], rebalance: bool) -> list[RepairPlan]:
        with self.db.read() as conn:
            replica_states = replica_repo.replica_map(conn, hashes)
        states = {n: self.cluster.state(n) for n in self.cluster.names}
        return [plan_chunk(h, replica_states[h], states, set(self.cluster.draining),
                           self.replicas, rebalance) for h in hashes]

    async def _repair_batch(self, hashes: list[str], report: RepairReport,
                            rebalance: bool) -> None:
        if not hashes:
            return
        plans = await asyncio.to_thread(self._plans, hashes, rebalance)
        for plan in plans:
            report.checked += 1
            if plan.shortfall and not plan.targets:
                report.waiting += 1
            if plan.idle:
                continue
            if plan.targets and not await self._copy(plan, report):
                report.failed += 1
                continue
            report.drops += [(plan.chunk_hash, n) for n in plan.drop]
            if len(report.drops) >= DROP_BATCH:
                await self._drop(report)

    # -- copying ----------------------------------------------------------------------------
    async def _copy(self, plan: RepairPlan, report: RepairReport) -> bool:
        """Copy to every target from a verified source; True when all of them hold it."""
        token = await asyncio.to_thread(self._token)
        if token is None:
            return False  # a deletion is under way; next pass
        try:
            data = bytes(await self.cluster.read(plan.chunk_hash, plan.sources))
        except StoreError:
            log.debug("repair: no intact copy of %s is reachable", plan.chunk_hash)
            report.note_unreadable(plan.chunk_hash)
            return False
        await asyncio.sleep(self.pacer.delay(time.monotonic(), len(plan.targets)))
        done = await self.cluster.write(plan.chunk_hash, data, targets=plan.targets,
                                        copies=len(plan.targets))
        if not done or not await asyncio.to_thread(self._record, plan.chunk_hash, done, token):
            return False
        report.copied += len(done)
        return len(done) == len(plan.targets)

    def _token(self) -> int | None:
        with self.db.read() as conn:
            return fence.writer_token(conn)

    def _record(self, chunk_hash: str, nodes: list[str], token: int) -> bool:
        with self.db.write() as conn:
            if not fence.still_valid(conn, token):
                return False  # a deletion overlapped the copy: redo it next pass
            size = chunk_repo.chunk_size(conn, chunk_hash)
            if size is None:
                return False  # collected meanwhile; the copies are orphans GC removes
            ids = node_repo.node_ids(conn)
            for name in nodes:
                replica_repo.set_replica_ok(conn, chunk_hash, ids[name], self.clock())
        return True

    # -- dropping ---------------------------------------------------------------------------
    async def _drop(self, report: RepairReport) -> None:
        """Delete the copies the plans let go, under the deletion fence."""
        if not report.drops:
            return
        wanted, report.drops = report.drops, []
        hold = self.cluster.settings.node_timeout * 4 + 10
        before = time.time() + hold  # no later than the fence's own deadline
        opened, confirmed = await asyncio.to_thread(self._drop_rows, wanted, hold)
        if opened is None:
            return  # another deleter holds the fence; the next pass tries again
        deadline = time.monotonic() + hold
        try:
            for chunk_hash, node in confirmed:
                if time.monotonic() > deadline:
                    break  # past the fence's deadline writers no longer wait for us
                # A copy the node could not delete is an orphan: it costs space, not safety
                # (its row is gone).
                if await self.cluster.delete(node, chunk_hash, before):
                    report.dropped += 1
        finally:
            await asyncio.to_thread(self._write, fence.close_fence, opened)

    def _drop_rows(self, wanted: list[tuple[str, str]],
                   hold: float) -> tuple[int | None, list[tuple[str, str]]]:
        states = {n: self.cluster.state(n) for n in self.cluster.names}
        with self.db.write() as conn:
            opened = fence.open_fence(conn, self.clock(), hold)
            if opened is None:
                return None, []
            hashes = sorted({h for h, _ in wanted})
            current = replica_repo.replica_map(conn, hashes)
            allowed = {(h, n) for h in hashes
                       for n in plan_chunk(h, current[h], states, set(self.cluster.draining),
                                           self.replicas).drop}
            # Surplus drops (rebalance) are re-checked by count: never below R counted copies.
            confirmed = []
            for h, n in wanted:
                if (h, n) in allowed or self._surplus_ok(current[h], n, states):
                    replica_repo.remove_replica(conn, h, n)
                    current[h].pop(n, None)
                    confirmed.append((h, n))
        return opened, confirmed

    def _surplus_ok(self, replicas: dict[str, str], node: str, states: dict[str, str]) -> bool:
        if replicas.get(node) != "ok" or states.get(node) != "up":
            return False
        others = [n for n, s in replicas.items() if n != node and s == "ok"
                  and states.get(n, "down") != "down" and n not in self.cluster.draining]
        return len(others) >= self.replicas
