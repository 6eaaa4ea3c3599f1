"""The storage cluster as the API sees it: node clients, their health, and placement.

Health comes from periodic ``/healthz`` probes and from real requests (a failed request marks
its node suspect at once). Writes go only to ``up`` nodes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from minidropbox.core.health import DOWN, UP, NodeHealth, parse_node_spec
from minidropbox.core.placement import place_replicas, rank_nodes
from minidropbox.metadata import chunks as chunk_repo
from minidropbox.metadata.db import Database
from minidropbox.settings import Settings
from minidropbox.storage.node_client import AsyncNodeClient

log = logging.getLogger("minidropbox.cluster")


class StorageCluster:
    def __init__(self, settings: Settings, db: Database,
                 clock: Callable[[], float] = time.time) -> None:
        assert settings.cluster_secret
        self.settings = settings
        self.clock = clock
        self.specs = [parse_node_spec(s, i) for i, s in enumerate(settings.nodes)]
        self.urls = dict(self.specs)
        self.health = {name: NodeHealth(name, last_ok=clock()) for name, _ in self.specs}
        self.stats: dict[str, dict[str, int]] = {}
        self.draining: set[str] = set()
        self._clients: dict[str, AsyncNodeClient] = {}
        with db.write() as conn:
            chunk_repo.upsert_nodes(conn, self.specs)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.specs]

    def client(self, name: str) -> AsyncNodeClient:
        if name not in self._clients:
            self._clients[name] = AsyncNodeClient(self.urls[name], self.settings.cluster_secret
                                                  or "", self.settings.node_timeout)
        return self._clients[name]

    def up_nodes(self) -> list[str]:
        return [n for n in self.names if self.health[n].state == UP]

    def writable_nodes(self) -> list[str]:
        """Nodes that may take new replicas: up, and not being drained."""
        return [n for n in self.up_nodes() if n not in self.draining]

    def targets(self, chunk_hash: str) -> list[str]:
        """Where a new chunk should go, best first: all writable nodes in rendezvous order."""
        return rank_nodes(chunk_hash, self.writable_nodes())

    def placement(self, chunk_hash: str) -> list[str]:
        return place_replicas(chunk_hash, self.writable_nodes(), self.settings.replicas)

    def read_order(self, chunk_hash: str, holders: list[str]) -> list[str]:
        """Replica holders in the order to read them: up nodes first, then rendezvous order."""
        ranked = rank_nodes(chunk_hash, [h for h in holders if h in self.health])
        return sorted(ranked, key=lambda n: self.health[n].state != UP)

    def note_success(self, name: str) -> None:
        if name in self.health:
            self.health[name].record_success(self.clock())

    def note_failure(self, name: str) -> None:
        if name in self.health:
            self.health[name].record_failure(self.clock(), self.settings.node_down_after)
            log.warning("storage node %s is %s", name, self.health[name].state)

    async def probe_once(self) -> None:
        async def probe(name: str) -> None:
            try:
                stats = await self.client(name).health()
            except Exception:
                self.note_failure(name)
                return
            self.stats[name] = {k: int(v) for k, v in stats.items() if isinstance(v, int)}
            self.note_success(name)

        await asyncio.gather(*(probe(n) for n in self.names))
        now = self.clock()
        for h in self.health.values():
            h.tick(now, self.settings.node_down_after)

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
