"""Answering a chunk GET: the file's bytes by ``sendfile`` where the server offers it
(``node/zero_copy.py``), else in 1 MiB blocks; and the commonest GET — a whole chunk, asked
with the cluster secret, what every download sends for each chunk — answered before the router.

With its body sent by ``sendfile``, a chunk GET's cost at the node is the request's handling:
the router and the exception layers, a ``Request``, the route's checks, each wrapping every
message the answer sends. ``ChunkReads`` answers that one kind of request with the same
response and the same metrics, and hands anything else, or anything that goes wrong before
the answer starts (a missing chunk, a disk fault), to the app, which answers it as ever.
"""

from __future__ import annotations

import os
import re
from typing import BinaryIO

import anyio.to_thread
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from minidropbox import metrics
from minidropbox.node.zero_copy import ZERO_COPY
from minidropbox.storage.disk import BLOCK, DiskChunkStore

CHUNK_PATH = re.compile(r"/chunks/([0-9a-f]{64})")


def open_sized(store: DiskChunkStore, name: str) -> tuple[BinaryIO, int]:
    """The chunk's file, opened, and its size: one thread hop for both."""
    fh = store.open(name)
    try:
        return fh, os.fstat(fh.fileno()).st_size
    except BaseException:
        fh.close()
        raise


class ChunkResponse(Response):
    """Send ``[start, stop)`` of an open chunk file, then close it: by ``sendfile`` where the
    server offers it, else in 1 MiB blocks.

    Starlette's ``FileResponse`` reads 64 KiB per thread hop, which caps a download at a
    fraction of what the disk and the network can do.
    """

    def __init__(self, fh: BinaryIO, start: int, stop: int, status_code: int = 200,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status_code, headers={
            **(headers or {}), "content-length": str(stop - start),
            "content-type": "application/octet-stream", "accept-ranges": "bytes"})
        self.fh, self.start, self.stop = fh, start, stop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            if scope["method"] == "HEAD":
                await send({"type": "http.response.body", "body": b""})
                return
            if ZERO_COPY in scope.get("extensions", {}):
                await send({"type": ZERO_COPY, "file": self.fh, "offset": self.start,
                            "count": self.stop - self.start})
                return
            await anyio.to_thread.run_sync(self.fh.seek, self.start)
            left = self.stop - self.start
            while left > 0:
                data = await anyio.to_thread.run_sync(self.fh.read, min(BLOCK, left))
                if not data:
                    break  # cannot happen for a published chunk; never spin if it does
                left -= len(data)
                await send({"type": "http.response.body", "body": data, "more_body": True})
            if left:
                raise OSError("chunk file shorter than its announced length")
            await send({"type": "http.response.body", "body": b""})
        finally:
            self.fh.close()  # read-only: nothing to flush, never waits for the disk


class ChunkReads:
    """``GET /chunks/{name}`` of a whole chunk with the cluster secret, answered here; every
    other request goes to ``app``.

    Placed inside ``ClusterAuth``, which has let the request through and marked one that
    carries a grant (``grant_state`` in the scope's state: those go to the route, which checks
    the grant). The answer is the route's: the same ``ChunkResponse``, the same chunk-read
    count, the route's template in the scope for the request metrics."""

    def __init__(self, app: ASGIApp, store: DiskChunkStore, route: BaseRoute,
                 node_metrics: metrics.NodeMetrics, grant_state: str) -> None:
        self.app = app
        self.store = store
        self.route = route
        self.metrics = node_metrics
        self.grant_state = grant_state

    def _name(self, scope: Scope) -> str | None:
        if scope["type"] != "http" or scope["method"] != "GET":
            return None
        if self.grant_state in scope.get("state", {}):
            return None
        match = CHUNK_PATH.fullmatch(scope["path"])
        if match is None or any(key == b"range" for key, _ in scope["headers"]):
            return None
        return match.group(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = self._name(scope)
        if name is None:
            await self.app(scope, receive, send)
            return
        try:
            fh, size = await anyio.to_thread.run_sync(open_sized, self.store, name)
        except Exception:
            # Not here, or the disk failed: the route answers (404, or 503 with the disk
            # marked faulty), as for any other request.
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        self.metrics.chunk_reads.inc()
        await ChunkResponse(fh, 0, size)(scope, receive, send)
