"""What the API learns about the nodes besides health probes: status, quarantine, audit.

- **Status**: every probe interval, each node's state, last success, space and chunk count go
  into the ``nodes`` table (admin views, other API replicas), and the ``draining`` flags come
  back from it.
- **Quarantine**: each node's scrub sets corrupt chunks aside and lists them; the API marks
  those replicas bad (queued for repair at priority 10), then acknowledges each file.
- **Audit**: a slow walk over the replicas table asking each node ``HEAD /chunks/{h}``: a copy
  that is gone (deleted by hand, lost with a disk) or shorter or longer than the chunk
  (truncated) is marked bad and queued. Paced at ``audit_rate`` requests per second; a full
  round over a node's replicas may take many passes, which is the point. While the API process
  is busy (``ProcessLoad``: more than ``BUSY_CPU`` of a core over the last fraction of a
  second) the audit yields, running at ``BUSY_SHARE`` of its rate: at 100 HEADs a second it
  took a fifth of the API's GIL during a big PUT and a tenth during small-file uploads, work
  that can wait for a quiet moment. It never stops altogether, so a server that is always
  busy still audits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from minidropbox.core.health import UP
from minidropbox.core.pacing import Pacer
from minidropbox.metadata import nodes as node_repo
from minidropbox.metadata import replicas as replica_repo
from minidropbox.metadata.db import Database
from minidropbox.service.cluster import StorageCluster
from minidropbox.storage.base import StoreError

log = logging.getLogger("minidropbox.audit")

AUDIT_PAGE = 200
# The API process counts as busy above this share of one core (all its threads), measured
# over windows of at least BUSY_WINDOW seconds; the audit's own HEADs cost about 0.3-0.5 ms of
# CPU each, 3-5% of a core at the default 100 a second, well below it.
BUSY_CPU = 0.3
BUSY_WINDOW = 0.25
BUSY_SHARE = 0.05  # of ``audit_rate`` kept while busy (5 HEADs a second at the default)


class ProcessLoad:
    """Whether this process has been busy lately: the CPU time of all its threads over the
    last window of wall time."""

    def __init__(self, threshold: float = BUSY_CPU, window: float = BUSY_WINDOW,
                 wall: Callable[[], float] = time.monotonic,
                 cpu: Callable[[], float] = time.process_time) -> None:
        self.threshold = threshold
        self.window = window
        self.wall, self.cpu = wall, cpu
        self._since = (wall(), cpu())
        self._busy = False

    def busy(self) -> bool:
        now, used = self.wall(), self.cpu()
        start, start_used = self._since
        if now - start >= self.window:
            self._busy = (used - start_used) / (now - start) > self.threshold
            self._since = (now, used)
        return self._busy


class NodeAudit:
    def __init__(self, db: Database, cluster: StorageCluster, audit_rate: float,
                 interval: float, clock: Callable[[], float] = time.time,
                 busy: Callable[[], bool] | None = None) -> None:
        self.db = db
        self.cluster = cluster
        self.interval = interval
        self.clock = clock
        self.rate = audit_rate
        self.pacer = Pacer(audit_rate)
        self.busy = busy or ProcessLoad().busy
        self._cursors: dict[str, str] = {}

    # -- status -----------------------------------------------------------------------------
    async def status_forever(self) -> None:
        while True:
            await asyncio.to_thread(self.save_status)
            await asyncio.sleep(self.cluster.settings.health_interval)

    def save_status(self) -> None:
        """This process's view of each node into the DB; the DB's drain flags into ours."""
        with self.db.write() as conn:
            for name in self.cluster.names:
                health = self.cluster.health[name]
                node_repo.save_status(conn, name, health.state, health.last_ok or None,
                                      self.cluster.stats.get(name))
            self.cluster.draining = node_repo.draining(conn) & set(self.cluster.names)

    # -- quarantine and audit ---------------------------------------------------------------
    async def audit_forever(self) -> None:
        while True:
            await self.poll_quarantine()
            await self.audit_step()
            await asyncio.sleep(self.interval)

    def _up(self) -> list[str]:
        return [n for n in self.cluster.names if self.cluster.state(n) == UP]

    async def poll_quarantine(self) -> int:
        """Mark every replica a node's scrub quarantined as bad; returns how many."""
        found = 0
        for node in self._up():
            client = self.cluster.client(node)
            try:
                entries = await client.quarantined()
            except StoreError as exc:
                log.warning("could not read the quarantine of %s: %s", node, exc.message)
                continue
            for entry in entries:
                await asyncio.to_thread(self._mark_bad, entry["chunk"], node, "corrupt")
                log.warning("node %s quarantined chunk %s; repair queued", node,
                            entry["chunk"][:12])
                try:
                    await client.release_quarantined(entry["file"])
                except StoreError:
                    continue  # reported again next time; marking bad twice is harmless
                found += 1
        return found

    async def audit_step(self) -> int:
        """HEAD the next page of each up node's replicas; returns how many were bad."""
        bad = 0
        for node in self._up():
            after = self._cursors.get(node, "")
            rows = await asyncio.to_thread(self._replicas_on, node, after)
            self._cursors[node] = rows[-1][0] if len(rows) == AUDIT_PAGE else ""
            client = self.cluster.client(node)
            for chunk_hash, size, state in rows:
                if state != "ok":
                    continue
                await asyncio.sleep(self._pace())
                try:
                    found = await client.head(chunk_hash)
                except StoreError:
                    self.cluster.note_failure(node)
                    break  # the node is in trouble; health handles it, audit moves on
                if found is None or found != size:
                    reason = "missing" if found is None else "truncated"
                    log.warning("audit: copy of %s on %s is %s", chunk_hash[:12], node, reason)
                    await asyncio.to_thread(self._mark_bad, chunk_hash, node, reason)
                    bad += 1
        return bad

    def _pace(self) -> float:
        """How long to wait before the next HEAD: at ``audit_rate``, or at ``BUSY_SHARE``
        of it while the process is busy."""
        self.pacer.rate = self.rate * BUSY_SHARE if self.busy() else self.rate
        return self.pacer.delay(time.monotonic())

    def _replicas_on(self, node: str, after: str) -> list[tuple[str, int, str]]:
        with self.db.read() as conn:
            return replica_repo.replicas_on_node(conn, node, after, AUDIT_PAGE)

    def _mark_bad(self, chunk_hash: str, node: str, reason: str) -> None:
        with self.db.write() as conn:
            replica_repo.mark_bad(conn, chunk_hash, node, reason, self.clock(), priority=10)
