"""The API's metrics and its ``GET /metrics`` route.

Requests and bytes are counted as they pass (``minidropbox.metrics.MetricsMiddleware``); the
cluster's state (storage node states, under-replicated chunks, which replica leads the
cluster-wide jobs) is read when Prometheus scrapes, from this process's view.

``/metrics`` carries aggregate numbers only (route templates, never paths or user names), so
it is open by default like the probes; set ``MINIDROPBOX_METRICS_TOKEN`` to make scrapers
send ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from minidropbox.core.errors import Unauthorized
from minidropbox.core.health import DOWN, SUSPECT, UP
from minidropbox.metadata import gauges
from minidropbox.metadata import replicas as replica_repo
from minidropbox.metrics import CONTENT_TYPE, HttpMetrics, render
from minidropbox.service.processes import supervised

if TYPE_CHECKING:
    from minidropbox.api.context import AppContext

router = APIRouter()
NODE_STATES = (UP, SUSPECT, DOWN)


class ApiMetrics:
    """The API process's registry and the instruments other modules update."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http = HttpMetrics(self.registry, "minidropbox")
        self.websocket_clients = Gauge("minidropbox_websocket_clients",
                                       "Open notification WebSockets.",
                                       registry=self.registry)
        self.job_running = Gauge("minidropbox_background_job_running",
                                 "1 while a background job runs in this process.", ["job"],
                                 registry=self.registry)
        self.job_starts = Counter("minidropbox_background_job_starts",
                                  "Times a background job was started in this process.",
                                  ["job"], registry=self.registry)

    @contextlib.contextmanager
    def websocket_client(self) -> Iterator[None]:
        """Count an open WebSocket for as long as the block runs."""
        self.websocket_clients.inc()
        try:
            yield
        finally:
            self.websocket_clients.dec()

    def job_started(self, name: str) -> None:
        self.job_starts.labels(name).inc()
        self.job_running.labels(name).set(1)

    def job_stopped(self, name: str) -> None:
        self.job_running.labels(name).set(0)

    def watch(self, ctx: AppContext) -> None:
        """Add the gauges read from ``ctx`` at scrape time."""
        self.registry.register(ClusterCollector(ctx))


class ClusterCollector(Collector):
    """Node states, replication health and leadership, as this replica sees them."""

    def __init__(self, ctx: AppContext, clock: Callable[[], float] = time.monotonic) -> None:
        self.ctx = ctx
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, int, int] | None = None  # (taken at, under, queued)

    def describe(self) -> Iterable[Metric]:
        return []  # collected lazily: describing must not query the database

    def collect(self) -> Iterable[Metric]:
        ctx = self.ctx
        states = GaugeMetricFamily("minidropbox_storage_node_state",
                                   "1 for the state each storage node is in (this replica's "
                                   "view).", labels=["node", "state"])
        for name in ctx.cluster.names:
            current = ctx.cluster.state(name)
            for state in NODE_STATES:
                states.add_metric([name, state], 1.0 if current == state else 0.0)
        yield states
        yield GaugeMetricFamily("minidropbox_storage_nodes_writable",
                                "Storage nodes that take new replicas.",
                                value=len(ctx.cluster.writable_nodes()))
        yield GaugeMetricFamily("minidropbox_cluster_leader",
                                "1 on the API replica that runs the cluster-wide jobs.",
                                value=1.0 if ctx.leader.is_leader else 0.0)
        processes = supervised(ctx.settings.supervisor_state)
        if processes:
            restarts = CounterMetricFamily(
                "minidropbox_process_restarts", "Restarts of each process by the "
                "`server cluster` supervisor.", labels=["process"])
            running = GaugeMetricFamily(
                "minidropbox_process_running", "1 while the supervisor sees the process "
                "running.", labels=["process"])
            for p in processes:
                restarts.add_metric([p["name"]], float(p["restarts"]))
                running.add_metric([p["name"]], 1.0 if p["state"] == "running" else 0.0)
            yield restarts
            yield running
        if ctx.cluster.names:
            under, queued = self._replication()
            yield GaugeMetricFamily("minidropbox_chunks_under_replicated",
                                    "Chunks with fewer intact copies on reachable nodes than "
                                    "wanted.", value=under)
            yield GaugeMetricFamily("minidropbox_repair_queue_length",
                                    "Chunks queued for repair.", value=queued)

    def _replication(self) -> tuple[int, int]:
        with self._lock:
            now = self.clock()
            # Counting under-replicated chunks reads every chunk's replica rows: at most
            # once per metrics_refresh seconds, however often Prometheus scrapes.
            if self._cached is None or now - self._cached[0] >= self.ctx.settings.metrics_refresh:
                cluster = self.ctx.cluster
                counted = [n for n in cluster.names
                           if cluster.state(n) != DOWN and n not in cluster.draining]
                with self.ctx.db.read() as conn:
                    under = gauges.under_replicated(conn, counted, self.ctx.settings.replicas)
                    queued = replica_repo.queue_length(conn)
                self._cached = (now, under, queued)
            return self._cached[1], self._cached[2]


def _authorized(request: Request, token: str | None) -> bool:
    if not token:
        return True
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # Hash both sides so neither the token's bytes nor its length leak through timing.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        hashlib.sha256(given.strip().encode()).digest(), hashlib.sha256(token.encode()).digest())


@router.get("/metrics", include_in_schema=False)
async def prometheus(request: Request) -> Response:
    """Prometheus text format."""
    ctx: AppContext = request.app.state.ctx
    if not _authorized(request, ctx.settings.metrics_token):
        raise Unauthorized("This needs the metrics token.")
    body = await run_in_threadpool(render, ctx.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE)
