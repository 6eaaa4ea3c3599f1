"""The orphan sweep: remove chunk copies a node holds that the metadata does not know.

Orphans are copies no replica row names: left on a node that was down while GC or repair
deleted the copy, or written by an upload that never got recorded (the API died, too few nodes
answered, a deletion fence overlapped and the writer went elsewhere). They cost space, never
safety, so the sweep is slow and careful:

1. A throttled pass (``orphan_rate`` names per second) pages through each up node's listing,
   asking only for copies written at least ``orphan_grace`` seconds ago by the node's own
   clock, so uploads in flight (PUT done, record not yet committed) are never candidates.
2. Each page is compared with the replica rows for that node; a copy with a row, ok or bad,
   is repair's business and left alone.
3. Candidates are deleted under the deletion fence, like GC (docs/DESIGN.md, "Write
   ordering"): in one transaction the fence is opened and each candidate checked again for a
   row; only then are the copies deleted, and the fence closed. A writer that PUT the same
   chunk to that node meanwhile (the node keeps the old file and answers 200) finds the epoch
   moved when it records, and writes again; a writer that recorded first shows up in the
   re-check and the copy stays.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from minidropbox.core.health import UP
from minidropbox.core.pacing import Pacer
from minidropbox.metadata import fence
from minidropbox.metadata import replicas as replica_repo
from minidropbox.metadata.db import Database
from minidropbox.service.cluster import StorageCluster
from minidropbox.storage.base import StoreError

log = logging.getLogger("minidropbox.orphans")

PAGE = 1000
FENCE_WAIT = 30.0
SAMPLE = 100  # orphan names a report lists, at most


@dataclass
class OrphanReport:
    dry_run: bool = False
    started_at: float = 0.0
    finished_at: float | None = None
    nodes: list[str] = field(default_factory=list)  # the nodes this pass listed
    skipped: list[str] = field(default_factory=list)  # not up: their turn comes next pass
    listed: int = 0  # copies old enough to be considered
    found: int = 0
    removed: int = 0
    failed: int = 0
    sample: list[str] = field(default_factory=list)  # "node/hash" of some orphans found

    def public(self) -> dict[str, Any]:
        return asdict(self)


class OrphanSweep:
    def __init__(self, db: Database, cluster: StorageCluster, grace: float, interval: float,
                 rate: float, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.cluster = cluster
        self.grace = grace
        self.interval = interval
        self.pacer = Pacer(rate)
        self.clock = clock
        self._lock = asyncio.Lock()  # one pass at a time (the loop and admin requests)
        self.last_report: OrphanReport | None = None

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.sweep()

    async def sweep(self, dry_run: bool = False) -> OrphanReport:
        """One pass over every up node; returns what it found and removed."""
        async with self._lock:
            report = OrphanReport(dry_run=dry_run, started_at=self.clock())
            for node in self.cluster.names:
                if self.cluster.state(node) != UP:
                    report.skipped.append(node)
                    continue
                try:
                    await self._sweep_node(node, report)
                except StoreError as exc:
                    log.warning("orphan sweep of %s stopped: %s", node, exc.message)
                    self.cluster.note_failure(node)
                    report.skipped.append(node)
                    continue
                report.nodes.append(node)
            report.finished_at = self.clock()
            self.last_report = report
            if report.found:
                log.info("orphan sweep: %d orphans found, %d removed, %d failed",
                         report.found, report.removed, report.failed)
            return report

    async def _sweep_node(self, node: str, report: OrphanReport) -> None:
        after: str | None = ""
        while after is not None:
            names, after = await self.cluster.client(node).list_aged(after, PAGE, self.grace)
            await asyncio.sleep(self.pacer.delay(time.monotonic(), max(1, len(names))))
            report.listed += len(names)
            known = await asyncio.to_thread(self._recorded, node, names)
            orphans = [n for n in names if n not in known]
            if not orphans:
                continue
            report.found += len(orphans)
            report.sample += [f"{node}/{h}" for h in orphans[: SAMPLE - len(report.sample)]]
            if not report.dry_run:
                await self._remove(node, orphans, report)

    def _recorded(self, node: str, names: list[str]) -> set[str]:
        with self.db.read() as conn:
            return replica_repo.recorded_on_node(conn, node, names)

    async def _remove(self, node: str, candidates: list[str], report: OrphanReport) -> None:
        hold = self.cluster.settings.node_timeout * 4 + 10
        waited = 0.0
        while True:
            before = time.time() + hold  # no later than the fence's own deadline
            opened, confirmed = await asyncio.to_thread(self._open, node, candidates, hold)
            if opened is not None:
                break
            if waited >= FENCE_WAIT:
                log.warning("orphan sweep: the deletion fence stayed closed; %d copies on %s "
                            "wait for the next pass", len(candidates), node)
                report.failed += len(candidates)
                return
            await asyncio.sleep(0.2)
            waited += 0.2
        deadline = time.monotonic() + hold
        try:
            for chunk_hash in confirmed:
                if time.monotonic() > deadline:
                    report.failed += 1  # writers stop waiting for us past the deadline
                    continue
                if await self.cluster.delete(node, chunk_hash, before):
                    report.removed += 1
                else:
                    report.failed += 1
        finally:
            await asyncio.to_thread(self._close, opened)

    def _open(self, node: str, candidates: list[str],
              hold: float) -> tuple[int | None, list[str]]:
        """Open the fence and re-check the candidates in the same transaction."""
        with self.db.write() as conn:
            opened = fence.open_fence(conn, self.clock(), hold)
            if opened is None:
                return None, []
            known = replica_repo.recorded_on_node(conn, node, candidates)
        return opened, [h for h in candidates if h not in known]

    def _close(self, opened: int) -> None:
        with self.db.write() as conn:
            fence.close_fence(conn, opened)
