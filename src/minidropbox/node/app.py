"""The storage node's HTTP API (docs/PROTOCOL.md, "Storage node") over a ``DiskChunkStore``.

Plain Starlette rather than FastAPI: the node has a handful of routes, no user-facing schema,
and sits on the hot path of every upload and download, so it skips validation layers it has no
use for.
Bodies stream through in 1 MiB blocks both ways; memory stays flat whatever the chunk size.
Blocking file I/O runs in worker threads so one slow disk operation never stalls the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import math
import re
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from minidropbox import metrics
from minidropbox.core import chunk_batch
from minidropbox.core.errors import (
    HashMismatch,
    InvalidGrant,
    InvalidInput,
    MiniDropboxError,
    PayloadTooLarge,
    RangeNotSatisfiable,
)
from minidropbox.core.grants import (
    COPIES_HEADER,
    GET,
    PUT,
    Grant,
    KeyRing,
    Receipt,
    open_grant,
)
from minidropbox.node import scrub
from minidropbox.node.chain import Forwarder, copies_asked
from minidropbox.node.chunk_reads import ChunkReads, ChunkResponse, open_sized
from minidropbox.node.disk_faults import DiskCondition
from minidropbox.node.settings import NodeSettings
from minidropbox.settings import grant_key_materials
from minidropbox.storage.base import DELETE_BEFORE_HEADER, DeleteTooLate, StoreFull
from minidropbox.storage.disk import DiskChunkStore, check_name

log = logging.getLogger("minidropbox.node")

MAX_LIST = 10_000
# ASCII digits, at most 18 of them (a chunk is never near 10**18 bytes): a longer number is
# not a range we serve, and parsing thousands of digits would only raise.
_RANGE_RE = re.compile(r"bytes=([0-9]{0,18})-([0-9]{0,18})")
_STATUS_CODES = {404: "not_found", 405: "method_not_allowed", 400: "invalid_input"}
# What a grant may be used for (core/grants.py): one chunk, read or written.
GRANT_PATH = re.compile(r"/chunks/[0-9a-f]{64}")
GRANT_METHODS = {"GET", "HEAD", "PUT"}
GRANT_STATE = "grant"  # request.state key of a grant the request carries


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers=headers)


class ClusterAuth:
    """Refuse every request that carries neither ``Authorization: Bearer <cluster secret>``
    nor, for reading or writing one chunk, ``Authorization: Grant <token>``.

    Pure ASGI so it runs before routing: an unknown path gets 401, not a 404 that would tell a
    prober which routes exist. Both sides are hashed before ``compare_digest`` so neither the
    bytes nor the length of the secret leak through timing. A grant is only let through to
    ``GET``/``HEAD``/``PUT /chunks/{name}``, where the route checks it (``_check_grant``):
    signature, chunk, method, this node, size, expiry.
    """

    def __init__(self, app: ASGIApp, secret: str) -> None:
        self.app = app
        self._digest = hashlib.sha256(secret.encode()).digest()

    def _allowed(self, scope: Scope) -> bool | str:
        """True for the cluster secret, the token for a grant where one may be used."""
        for key, value in scope["headers"]:
            if key == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() == b"grant":
                    if (scope["method"] in GRANT_METHODS
                            and GRANT_PATH.fullmatch(scope["path"]) is not None):
                        return str(token.strip().decode("latin-1"))
                    return False
                if scheme.lower() != b"bearer":
                    return False
                return bool(hmac.compare_digest(hashlib.sha256(token.strip()).digest(),
                                                self._digest))
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        allowed = self._allowed(scope)
        if allowed is True:
            await self.app(scope, receive, send)
            return
        if isinstance(allowed, str):
            scope.setdefault("state", {})[GRANT_STATE] = allowed
            await self.app(scope, receive, send)
            return
        response = error_response(401, "unauthorized",
                                  "This storage node needs the cluster secret or a grant.",
                                  {"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, stop)`` for one ``Range: bytes=…`` header, or None to send the whole chunk.

    As RFC 9110 allows, a header we do not support (several ranges, other units, bad syntax) is
    ignored rather than refused; a well-formed range that misses the chunk is a 416.
    """
    match = _RANGE_RE.fullmatch(header.strip()) if header else None
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        count = int(last)
        if count == 0 or size == 0:
            raise RangeNotSatisfiable()
        return max(0, size - count), size
    start = int(first)
    if last and int(last) < start:
        return None  # "bytes=9-3" is malformed, not unsatisfiable
    if start >= size:
        raise RangeNotSatisfiable()
    return start, min(int(last) + 1 if last else size, size)


class NodeRoutes:
    """The handlers, bound to one store."""

    def __init__(self, store: DiskChunkStore, max_chunk_bytes: int,
                 node_metrics: metrics.NodeMetrics | None = None,
                 keys: tuple[KeyRing, KeyRing] | None = None,
                 public_url: str | None = None, forwarder: Forwarder | None = None) -> None:
        self.store = store
        self.forwarder = forwarder or Forwarder()
        self.max_chunk_bytes = max_chunk_bytes
        self.metrics = node_metrics or metrics.NodeMetrics()
        self.disk = DiskCondition(store.root)
        # Grants and receipts (core/grants.py). The id is new at every start: the API learns
        # it from /healthz, and a grant made for an earlier run of this node is refused.
        self.grant_keys: KeyRing | None = keys[0] if keys else None
        self.receipt_keys: KeyRing | None = keys[1] if keys else None
        self.node_id = secrets.token_hex(8)
        self.public_url = public_url

    @contextlib.contextmanager
    def _disk_errors(self) -> Iterator[None]:
        """An ``EROFS``/``EIO`` from the disk marks it faulty and answers 503 (disk_faults)."""
        try:
            yield
        except OSError as exc:
            fault = self.disk.note(exc)
            if fault is None:
                raise
            raise fault from None

    async def prometheus(self, request: Request) -> Response:
        body = await anyio.to_thread.run_sync(metrics.render, self.metrics.registry)
        return Response(body, media_type=metrics.CONTENT_TYPE)

    async def health(self, request: Request) -> Response:
        await anyio.to_thread.run_sync(self.disk.recheck)
        stats = await anyio.to_thread.run_sync(self.store.stat)
        return JSONResponse({"status": "ok", "used_bytes": stats.used_bytes,
                             "free_bytes": stats.free_bytes, "chunk_count": stats.chunk_count,
                             "fault": self.disk.name, "node_id": self.node_id,
                             "public_url": self.public_url})

    async def list_chunks(self, request: Request) -> Response:
        after = request.query_params.get("after", "")
        try:
            limit = int(request.query_params.get("limit", "1000"))
        except ValueError:
            raise InvalidInput("limit must be an integer.") from None
        if not 1 <= limit <= MAX_LIST:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIST}.")
        if "min_age" in request.query_params:
            # Only chunks written at least min_age seconds ago (by this node's clock, so the
            # API's clock does not matter): what the orphan sweep may consider.
            try:
                min_age = float(request.query_params["min_age"])
            except ValueError:
                raise InvalidInput("min_age must be a number of seconds.") from None
            if not 0 <= min_age < 1e9:
                raise InvalidInput("min_age must be between 0 and 1e9 seconds.")
            names, following = await anyio.to_thread.run_sync(
                self.store.list_aged, after, limit, min_age, time.time())
            return JSONResponse({"chunks": names, "next": following})
        names = await anyio.to_thread.run_sync(self.store.list, after, limit)
        return JSONResponse({"chunks": names, "next": names[-1] if len(names) == limit else None})

    async def quarantine(self, request: Request) -> Response:
        if request.method == "DELETE":
            await anyio.to_thread.run_sync(scrub.release, self.store.root,
                                           request.path_params["file"])
            return Response(status_code=204)
        found = await anyio.to_thread.run_sync(scrub.quarantined, self.store.root)
        return JSONResponse({"chunks": found})

    def _check_grant(self, request: Request, name: str, method: str) -> Grant | None:
        """The grant this request carries, checked for this chunk, method and node (None:
        the request carries the cluster secret); ``InvalidGrant`` (403) otherwise."""
        token = getattr(request.state, GRANT_STATE, None)
        if token is None:
            return None
        if self.grant_keys is None:
            raise InvalidGrant("This storage node takes no grants.")
        declared = request.headers.get("content-length", "")
        return open_grant(self.grant_keys, token, chunk=name, method=method, node_id=self.node_id,
                          now=time.time(),
                          size=int(declared) if method == PUT and declared.isdigit() else None)

    async def chunk(self, request: Request) -> Response:
        name = check_name(request.path_params["name"])
        if request.method == "PUT":
            return await self._put(request, name, self._check_grant(request, name, PUT))
        self._check_grant(request, name, GET)
        if request.method == "DELETE":
            before = _delete_before(request)
            with self._disk_errors():
                await anyio.to_thread.run_sync(self._delete, name, before)
            self.metrics.chunk_deletes.inc()
            return Response(status_code=204)
        with self._disk_errors():
            return await self._get(request, name)

    def _delete(self, name: str, before: float | None) -> None:
        """Delete a copy unless its sender's deadline has passed: the sender has given up by
        then and closed its deletion fence, and a writer may have recorded this copy since."""
        late = time.time() - before if before is not None else 0.0
        if late > 0:
            log.warning("refused a delete of %s that arrived %.1f s after its deadline",
                        name[:12], late)
            raise DeleteTooLate(f"The delete of chunk {name[:12]} arrived {late:.1f} s after "
                                "its deadline; the copy was kept.")
        self.store.delete(name)

    async def _put(self, request: Request, name: str, grant: Grant | None) -> Response:
        limit = self.max_chunk_bytes if grant is None else min(self.max_chunk_bytes,
                                                                grant.max_size)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"A chunk is at most {limit} bytes here.")
        self.disk.refuse_writes()
        if declared.isdigit() and int(declared) > (
                await anyio.to_thread.run_sync(self.store.stat)).free_bytes:
            raise StoreFull("The storage node's disk is full.")  # before taking the body
        received = [0]
        copies = copies_asked(request.headers.get(COPIES_HEADER), grant)
        kept: list[bytes] = []
        forwarding: list[asyncio.Task[list[tuple[int, str]]]] = []

        async def body() -> AsyncIterator[bytes]:
            async for piece in self._body(request, limit, received):
                if copies > 1:
                    kept.append(piece)
                yield piece
            if copies > 1 and grant is not None:
                # Forwarded as soon as the body is in, while this node fsyncs its copy.
                forwarding.append(asyncio.create_task(self.forwarder.forward(
                    grant, getattr(request.state, GRANT_STATE), self.node_id, name,
                    b"".join(kept), copies - 1)))

        try:
            with self._disk_errors():
                created = await self.store.put_stream_async(name, body())
        except BaseException as exc:
            for task in forwarding:
                task.cancel()  # this copy failed (a wrong hash, the disk): the chain stops
            if isinstance(exc, ClientDisconnect):
                # The client went away mid-body: the store dropped the temp file; nobody to
                # answer.
                return Response(status_code=400)
            raise
        self.metrics.chunk_writes.labels("created" if created else "present").inc()
        answer: dict[str, object] = {"created": created}
        if grant is not None and self.receipt_keys is not None:
            # Signed only now: the bytes hashed to the name and are durable (fsync, rename,
            # fsync dir), whether this PUT wrote them or found them already here.
            receipt = Receipt(grant.account, name, received[0], self.node_id,
                              int(time.time()), grant.fence).sign(self.receipt_keys)
            answer["receipt"] = receipt
            if copies > 1:
                chain = [(grant.nodes.index(self.node_id), receipt)]
                chain += await forwarding[0] if forwarding else []
                answer["chain"] = [{"node": p, "receipt": r} for p, r in chain]
        return JSONResponse(answer, status_code=201 if created else 200)

    async def put_batch(self, request: Request) -> Response:
        """``POST /chunks/batch``: many small chunks in one body (``core/chunk_batch.py``),
        made durable together (``DiskChunkStore.put_many``: one flush per step for all).
        Cluster secret only: a grant names one chunk and never reaches this route. Per
        chunk, in order, ``{"created": bool}`` or ``{"error": {code, message}}`` for one whose
        bytes do not hash to its name; the others are stored all the same."""
        declared = request.headers.get("content-length", "")
        if not declared.isdigit():
            raise InvalidInput("A batch write needs a Content-Length.")
        chunk_batch.check_length(int(declared))  # 413 before a byte is read
        self.disk.refuse_writes()
        if int(declared) > (await anyio.to_thread.run_sync(self.store.stat)).free_bytes:
            raise StoreFull("The storage node's disk is full.")
        try:
            body = await _whole_body(request, int(declared))
        except ClientDisconnect:
            return Response(status_code=400)
        items = chunk_batch.split(body, self.max_chunk_bytes)
        with self._disk_errors():
            results = await anyio.to_thread.run_sync(self.store.put_many, items)
        answer: list[dict[str, object]] = []
        for result in results:
            if isinstance(result, HashMismatch):
                answer.append({"error": {"code": result.code, "message": result.message}})
                continue
            self.metrics.chunk_writes.labels("created" if result else "present").inc()
            answer.append({"created": result})
        return JSONResponse({"chunks": answer})

    async def read_batch(self, request: Request) -> Response:
        """``POST /chunks/read``: the chunks named (``core/chunk_batch.py``) that this node
        has, whole and unverified like a GET, in one answer: the many-small-files download
        reads a few of these instead of a GET per file. Cluster secret only."""
        declared = request.headers.get("content-length", "")
        if not declared.isdigit():
            raise InvalidInput("A batch read needs a Content-Length.")
        if int(declared) > chunk_batch.MAX_MANIFEST_BYTES:
            raise PayloadTooLarge(f"A batch read names at most {chunk_batch.MAX_BATCH_CHUNKS} "
                                  "chunks.")
        try:
            body = await _whole_body(request, int(declared))
        except ClientDisconnect:
            return Response(status_code=400)
        names = chunk_batch.parse_names(body)
        with self._disk_errors():
            found = await anyio.to_thread.run_sync(self.store.read_many, names,
                                                   chunk_batch.MAX_BATCH_BYTES)
        self.metrics.chunk_reads.inc(len(found))
        return Response(chunk_batch.encode(found), media_type="application/octet-stream")

    async def _body(self, request: Request, limit: int,
                    received: list[int]) -> AsyncIterator[bytes]:
        async for piece in request.stream():
            received[0] += len(piece)
            if received[0] > limit:
                raise PayloadTooLarge(f"A chunk is at most {limit} bytes here.")
            yield piece

    async def _get(self, request: Request, name: str) -> Response:
        fh, size = await anyio.to_thread.run_sync(open_sized, self.store, name)
        try:
            span = parse_range(request.headers.get("range"), size)
        except RangeNotSatisfiable as exc:
            fh.close()
            return error_response(416, exc.code, exc.message,
                                  {"Content-Range": f"bytes */{size}"})
        except BaseException:
            fh.close()
            raise
        if request.method == "GET":
            self.metrics.chunk_reads.inc()
        if span is None:
            return ChunkResponse(fh, 0, size)
        start, stop = span
        return ChunkResponse(fh, start, stop, status_code=206,
                             headers={"content-range": f"bytes {start}-{stop - 1}/{size}"})


def _delete_before(request: Request) -> float | None:
    value = request.headers.get(DELETE_BEFORE_HEADER)
    if value is None:
        return None
    try:
        before = float(value)
    except ValueError:
        before = math.nan
    if not math.isfinite(before):
        raise InvalidInput(f"{DELETE_BEFORE_HEADER} must be a time in epoch seconds.")
    return before


async def _whole_body(request: Request, declared: int) -> bytearray:
    """A body already bounded by its ``Content-Length`` (checked by the caller), in memory."""
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > declared:
            raise InvalidInput("The body is longer than its Content-Length.")
    return body


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MiniDropboxError)
    if exc.status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc.message)
    return error_response(exc.status, exc.code, exc.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _STATUS_CODES.get(exc.status_code, "error")
    return error_response(exc.status_code, code, exc.detail if exc.detail else code,
                          dict(exc.headers or {}))


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Method and path only: headers carry the cluster secret.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal", "Internal server error.")


def create_node_app(settings: NodeSettings) -> Starlette:
    """The node's ASGI app; opening the store removes temp files left by a crash."""
    settings.resolve_secrets()
    assert settings.cluster_secret  # resolve_secrets always sets it
    store = DiskChunkStore(settings.dir)
    node_metrics = metrics.NodeMetrics()
    node_metrics.watch_store(store.stat)
    materials = grant_key_materials(settings.grant_keys, settings.cluster_secret)
    keys = (KeyRing.from_material("grant", materials),
            KeyRing.from_material("receipt", materials))
    routes = NodeRoutes(store, settings.max_chunk_bytes, node_metrics, keys,
                        settings.public_url)
    scrubber = scrub.Scrubber(store, settings.scrub_rate, settings.scrub_interval)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        task = (asyncio.create_task(scrubber.run_forever(), name="scrub")
                if settings.scrub_rate > 0 else None)
        try:
            yield
        finally:
            await routes.forwarder.aclose()
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    handlers: dict[Any, Any] = {MiniDropboxError: _domain_error, HTTPException: _http_error,
                                Exception: _unexpected}
    chunk_route = Route("/chunks/{name}", routes.chunk,
                        methods=["GET", "HEAD", "PUT", "DELETE"])
    app = Starlette(
        routes=[
            Route("/healthz", routes.health, methods=["GET"]),
            Route("/chunks", routes.list_chunks, methods=["GET"]),
            Route("/chunks/batch", routes.put_batch, methods=["POST"]),
            Route("/chunks/read", routes.read_batch, methods=["POST"]),
            chunk_route,
            Route("/quarantine", routes.quarantine, methods=["GET"]),
            Route("/quarantine/{file}", routes.quarantine, methods=["DELETE"]),
            Route("/metrics", routes.prometheus, methods=["GET"]),
        ],
        lifespan=lifespan,
        # Metrics outermost: refused requests (no cluster secret) are counted too. Whole
        # chunk GETs are answered past the secret check, before the router (chunk_reads.py).
        middleware=[Middleware(metrics.MetricsMiddleware, metrics=node_metrics.http),
                    Middleware(ClusterAuth, secret=settings.cluster_secret),
                    Middleware(ChunkReads, store=store, route=chunk_route,
                               node_metrics=node_metrics, grant_state=GRANT_STATE)],
        exception_handlers=handlers,
    )
    app.state.store = store
    app.state.scrubber = scrubber
    app.state.disk = routes.disk
    return app
