"""Prometheus metrics shared by the API and the storage nodes.

Every app builds its own ``CollectorRegistry`` (nothing is registered at import time), so
several apps in one process, as in tests, never clash over metric names. Requests are
counted by *route template* (``/chunks/{name}``), never by raw path: a raw path would put
user file names into the metrics and grow a new time series per file.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from minidropbox.storage.base import StoreStats

CONTENT_TYPE = CONTENT_TYPE_LATEST
UNMATCHED = "<unmatched>"  # refused before routing (body limits), or no such route
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class HttpMetrics:
    """Requests, latency and body bytes of one HTTP app, by method and route template."""

    def __init__(self, registry: CollectorRegistry, prefix: str) -> None:
        self.requests = Counter(f"{prefix}_http_requests", "HTTP requests answered.",
                                ["method", "route", "status"], registry=registry)
        self.latency = Histogram(f"{prefix}_http_request_duration_seconds",
                                 "Time from request to the end of the response body.",
                                 ["method", "route"], buckets=LATENCY_BUCKETS,
                                 registry=registry)
        self.bytes_in = Counter(f"{prefix}_http_received_bytes", "Request body bytes read.",
                                ["route"], registry=registry)
        self.bytes_out = Counter(f"{prefix}_http_sent_bytes", "Response body bytes sent.",
                                 ["route"], registry=registry)


def route_template(scope: Scope) -> str:
    """The path pattern the router matched (Starlette stores the route in the scope)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class MetricsMiddleware:
    """Pure ASGI, so streamed bodies are counted as they pass, never buffered.

    Routing happens further in, on the same scope dict, so the route template is read once
    the response has started (or the app has returned).
    """

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering
        received = sent = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            elif message["type"] == "http.response.zerocopysend":  # a file, sent by sendfile
                sent += int(message["count"])
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            route, method = route_template(scope), scope["method"]
            m = self.metrics
            m.requests.labels(method, route, str(status)).inc()
            m.latency.labels(method, route).observe(time.perf_counter() - start)
            if received:
                m.bytes_in.labels(route).inc(received)
            if sent:
                m.bytes_out.labels(route).inc(sent)


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text format (``CONTENT_TYPE``)."""
    return generate_latest(registry)


class NodeMetrics:
    """A storage node's metrics: its requests, chunk traffic and disk (read when scraped)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http = HttpMetrics(self.registry, "minidropbox_node")
        self.chunk_writes = Counter("minidropbox_node_chunk_writes",
                                    "Chunk PUTs stored: result is created or present.",
                                    ["result"], registry=self.registry)
        self.chunk_reads = Counter("minidropbox_node_chunk_reads",
                                   "Chunk GETs answered with bytes.", registry=self.registry)
        self.chunk_deletes = Counter("minidropbox_node_chunk_deletes", "Chunk DELETEs.",
                                     registry=self.registry)

    def watch_store(self, stat: Callable[[], StoreStats]) -> None:
        """Disk gauges, read from the store when scraped (its counters are in memory)."""
        def reader(field: str) -> Callable[[], float]:
            return lambda: float(getattr(stat(), field))

        for field, doc in (("used_bytes", "Bytes of chunks this node holds."),
                           ("free_bytes", "Free bytes on the node's disk."),
                           ("chunk_count", "Chunks this node holds.")):
            gauge = Gauge(f"minidropbox_node_{field}", doc, registry=self.registry)
            gauge.set_function(reader(field))
