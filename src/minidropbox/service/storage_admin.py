"""The storage cluster's operator side: node views, status, drain, rebalance, repair, GC.

``StorageAdmin.build`` wires the background loops (repair, node status, quarantine and audit,
garbage collection) that keep the replicas healthy; the admin API calls the rest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from minidropbox.core.errors import NotFound
from minidropbox.metadata import nodes as node_repo
from minidropbox.metadata import replicas as replica_repo
from minidropbox.metadata.db import Database
from minidropbox.service.audit import NodeAudit
from minidropbox.service.cluster import StorageCluster
from minidropbox.service.gc import GarbageCollector, GcReport
from minidropbox.service.orphans import OrphanReport, OrphanSweep
from minidropbox.service.processes import supervised
from minidropbox.service.repair import RepairReport, RepairService
from minidropbox.settings import Settings

log = logging.getLogger("minidropbox.admin")

BackgroundJob = Callable[[], Awaitable[None]]


@dataclass
class StorageAdmin:
    settings: Settings
    db: Database
    cluster: StorageCluster
    repair: RepairService
    audit: NodeAudit
    gc: GarbageCollector
    orphans: OrphanSweep
    _rebalance: asyncio.Task[RepairReport] | None = None

    @classmethod
    def build(cls, settings: Settings, db: Database, cluster: StorageCluster) -> StorageAdmin:
        return cls(settings, db, cluster,
                   RepairService(db, cluster, settings.replicas, settings.repair_rate,
                                 settings.repair_interval),
                   NodeAudit(db, cluster, settings.audit_rate, settings.repair_interval),
                   GarbageCollector(db, cluster, settings.gc_grace_seconds,
                                    settings.gc_interval),
                   OrphanSweep(db, cluster, settings.orphan_grace, settings.orphan_interval,
                               settings.orphan_rate))

    def jobs(self) -> list[tuple[str, BackgroundJob]]:
        jobs: list[tuple[str, BackgroundJob]] = [
            ("node-status", self.audit.status_forever),
            ("replica-audit", self.audit.audit_forever),
            ("repair", self.repair.run_forever)]
        if self.settings.gc_interval > 0:
            jobs.append(("gc", self.gc.run_forever))
        if self.settings.orphan_interval > 0:
            jobs.append(("orphan-sweep", self.orphans.run_forever))
        return jobs

    # -- views ------------------------------------------------------------------------------
    def node_views(self) -> list[dict[str, Any]]:
        """Every known node: live state from this process, the rest from the DB."""
        with self.db.read() as conn:
            rows = node_repo.listing(conn)
            per_node = replica_repo.counts_by_node(conn)
        processes = {p["name"]: p for p in supervised(self.settings.supervisor_state)}
        views = []
        for row in rows:
            name = row["name"]
            configured = name in self.cluster.health
            stats = self.cluster.stats.get(name, {})
            held = per_node.get(row["id"], {})
            views.append({
                "name": name, "url": row["url"], "configured": configured,
                "state": self.cluster.state(name) if configured else row["state"],
                "draining": bool(row["draining"]), "last_seen": row["last_seen"],
                "used_bytes": stats.get("used_bytes", row["used_bytes"]),
                "free_bytes": stats.get("free_bytes", row["free_bytes"]),
                "chunk_count": stats.get("chunk_count", row["chunk_count"]),
                "replicas": held.get("ok", 0), "bad_replicas": held.get("bad", 0),
                "disk": self.cluster.faults.get(name) or (
                    "full" if name in self.cluster.full else "ok"),
                "restarts": processes[name]["restarts"] if name in processes else None})
        return views

    def status(self) -> dict[str, Any]:
        states = {n: self.cluster.state(n) for n in self.cluster.names}
        with self.db.read() as conn:
            counts = replica_repo.health_counts(conn, states, set(self.cluster.draining),
                                                self.settings.replicas)
        return {**counts, "replicas_wanted": self.settings.replicas,
                "nodes_up": sum(1 for s in states.values() if s == "up"),
                "nodes": len(states), "draining": sorted(self.cluster.draining),
                "last_repair": {k: v for k, v in asdict(self.repair.last_report).items()
                                if k not in ("drops", "unreadable", "unreadable_sample")},
                "rebalancing": self._rebalance is not None and not self._rebalance.done(),
                "processes": supervised(self.settings.supervisor_state),
                "last_orphan_sweep": (self.orphans.last_report.public()
                                      if self.orphans.last_report else None)}

    # -- actions ----------------------------------------------------------------------------
    def drain(self, name: str, cancel: bool = False) -> dict[str, Any]:
        """Mark a node as leaving: repair copies everything it holds elsewhere, then drops it."""
        if name not in self.cluster.health:
            raise NotFound(f"There is no configured storage node named {name}.")
        with self.db.write() as conn:
            node_repo.set_draining(conn, name, not cancel)
        self.cluster.set_drain_flag(name, not cancel)
        if not cancel:
            log.info("draining storage node %s", name)
        return next(v for v in self.node_views() if v["name"] == name)

    def rebalance(self) -> dict[str, Any]:
        """Start one throttled pass that moves copies onto their rendezvous placement."""
        if self._rebalance is None or self._rebalance.done():
            self._rebalance = asyncio.create_task(self.repair.run_once(rebalance=True),
                                                  name="rebalance")
        return {"started": True}

    async def repair_now(self) -> RepairReport:
        await self.audit.poll_quarantine()
        return await self.repair.run_once()

    async def collect_garbage(self, dry_run: bool) -> GcReport:
        return await self.gc.collect(dry_run=dry_run)

    async def sweep_orphans(self, dry_run: bool) -> OrphanReport:
        return await self.orphans.sweep(dry_run=dry_run)
