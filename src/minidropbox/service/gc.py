"""Garbage collection: mark-and-sweep of chunks that no version references.

Versions in the trash and retained history reference their chunks like current ones do, so
only chunks of purged (or pruned) versions, and uploads that were never committed, qualify.

- **Mark** (read): chunks created more than ``gc_grace_seconds`` ago that no ``version_chunks``
  row references and that no user proved to have within the grace period. The grace protects
  chunks uploaded for a commit that has not happened yet.
- **Sweep** (one write transaction per batch): open the deletion fence, check every candidate
  again *inside* the transaction and delete its rows (the chunk; replicas, owners and queue
  entries with it). A commit that referenced the chunk meanwhile either committed first (the
  re-check sees it and keeps the chunk) or comes after (it finds no chunk and answers
  ``missing_chunk``); on PostgreSQL the ``version_chunks`` foreign key makes the two collide
  instead of both succeeding.
- **Delete copies**: only after the rows are gone, from every node that answers (not just the
  recorded holders: a repair racing the sweep may have left a copy no row names), then close
  the fence. See docs/DESIGN.md, "Write ordering".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from minidropbox.core.errors import StorageUnavailable
from minidropbox.core.health import UP
from minidropbox.metadata import chunks as chunk_repo
from minidropbox.metadata import fence
from minidropbox.metadata.db import Database
from minidropbox.service.cluster import StorageCluster

log = logging.getLogger("minidropbox.gc")

BATCH = 200
FENCE_WAIT = 30.0
SAMPLE = 1000  # hashes a report names, at most


@dataclass
class GcReport:
    dry_run: bool
    candidates: int = 0
    collected: int = 0
    freed_bytes: int = 0
    node_deletes: int = 0
    node_delete_failures: int = 0
    hashes: list[str] = field(default_factory=list)  # a sample, for operators and tests

    def public(self) -> dict[str, Any]:
        return asdict(self)



class GarbageCollector:
    def __init__(self, db: Database, cluster: StorageCluster, grace: float, interval: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.cluster = cluster
        self.grace = grace
        self.interval = interval
        self.clock = clock
        self._lock = asyncio.Lock()

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.collect()

    async def collect(self, dry_run: bool = False) -> GcReport:
        """One mark-and-sweep over every chunk; with ``dry_run`` only the mark."""
        async with self._lock:
            report = GcReport(dry_run=dry_run)
            after = ""
            while True:
                cutoff = self.clock() - self.grace
                batch = await asyncio.to_thread(self._mark, cutoff, after)
                if not batch:
                    break
                after = batch[-1][0]
                report.candidates += len(batch)
                if dry_run:
                    report.freed_bytes += sum(size for _, size in batch)
                    report.hashes += [h for h, _ in batch][: SAMPLE - len(report.hashes)]
                else:
                    await self._sweep([h for h, _ in batch], report)
            if report.collected:
                log.info("gc: collected %d chunks (%d bytes)", report.collected,
                         report.freed_bytes)
            return report

    def _mark(self, cutoff: float, after: str) -> list[tuple[str, int]]:
        with self.db.read() as conn:
            return chunk_repo.garbage(conn, cutoff, after, BATCH)

    async def _sweep(self, hashes: list[str], report: GcReport) -> None:
        hold = self.cluster.settings.node_timeout * 4 + 10
        waited = 0.0
        while True:
            before = time.time() + hold  # no later than the fence's own deadline
            opened, gone = await asyncio.to_thread(self._delete_rows, hashes, hold)
            if opened is not None:
                break
            if waited >= FENCE_WAIT:
                raise StorageUnavailable("Garbage collection could not start: another "
                                         "deletion kept the fence closed; try again.")
            await asyncio.sleep(0.2)
            waited += 0.2
        report.collected += len(gone)
        report.freed_bytes += sum(size for _, size in gone)
        report.hashes += [h for h, _ in gone][: SAMPLE - len(report.hashes)]
        deadline = time.monotonic() + hold
        nodes = [n for n in self.cluster.names if self.cluster.state(n) == UP]
        try:
            for chunk_hash, _ in gone:
                if time.monotonic() > deadline:
                    break  # writers stop waiting for us past the deadline: stop deleting
                results = await asyncio.gather(
                    *(self.cluster.delete(n, chunk_hash, before) for n in nodes))
                report.node_deletes += sum(results)
                report.node_delete_failures += len(results) - sum(results)
        finally:
            await asyncio.to_thread(self._close, opened)

    def _delete_rows(self, hashes: list[str],
                     hold: float) -> tuple[int | None, list[tuple[str, int]]]:
        with self.db.write() as conn:
            opened = fence.open_fence(conn, self.clock(), hold)
            if opened is None:
                return None, []
            # Re-checked inside the transaction that deletes: see the module docstring.
            still = chunk_repo.garbage(conn, self.clock() - self.grace, "", len(hashes),
                                       only=hashes)
            gone = [(h, size) for h, size in still if chunk_repo.delete_unreferenced(conn, h)]
        return opened, gone

    def _close(self, opened: int) -> None:
        with self.db.write() as conn:
            fence.close_fence(conn, opened)
