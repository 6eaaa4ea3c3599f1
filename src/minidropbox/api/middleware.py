"""Pure-ASGI middleware: request ids, security headers, and body-size caps.

Pure ASGI (not ``BaseHTTPMiddleware``) so streamed uploads and downloads pass through without
being buffered.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from minidropbox import logs

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
]
# JSON routes that share a prefix with the raw-byte routes: they get the JSON cap.
JSON_UNDER_STREAMING = ("/api/v1/chunks/missing",)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for key, value in SECURITY_HEADERS:  # a route's own CSP (/docs) is kept
                    if key not in present:
                        headers.append((key, value))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        token = logs.request_id.set(request_id)
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            logs.request_id.reset(token)


class BodyLimit:
    """Refuse bodies over a limit with 413, by Content-Length or while streaming.

    Routes that take raw bytes (chunk and file uploads) declare their own, larger limits and
    are listed in ``streaming_paths``; everything else is JSON and capped at ``max_bytes``.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, streaming_prefixes: tuple[str, ...],
                 chunk_limit: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.streaming_prefixes = streaming_prefixes
        self.chunk_limit = chunk_limit

    def _limit_for(self, scope: Scope) -> int | None:
        path: str = scope["path"]
        if path == "/api/v1/files/content" or (path.startswith("/s/")
                                               and scope["method"] == "POST"):
            return None  # whole files (and file drops) stream to a spool; quota decides
        if path == "/dav" or path.startswith("/dav/"):
            return None  # WebDAV caps its own XML bodies; PUTs are files (quota decides)
        if path.startswith(self.streaming_prefixes) and path not in JSON_UNDER_STREAMING:
            return self.chunk_limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope)
        if limit is None:
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await send_json_error(send, 400, "invalid_input",
                                          "Invalid Content-Length header.")
                    return
                if declared > limit:
                    await send_json_error(send, 413, "too_large",
                                  f"The request body is larger than {limit} bytes.")
                    return
        received = 0
        tracked = TrackedSend(send)

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited_receive, tracked)
        except _TooLarge:
            if not tracked.started:
                await send_json_error(send, 413, "too_large",
                              f"The request body is larger than {limit} bytes.")


class AllowedMethods:
    """``OPTIONS`` answers 204, and every 405 carries an ``Allow`` header, listing the methods
    of *every* API route whose path matches (paths of mounted apps, such as WebDAV, pass
    through untouched).

    Starlette answers a method mismatch from the first route whose path matches, so
    ``OPTIONS /chunks/batch`` named the methods of ``/chunks/{hash}`` and ``/files/content``
    only those of its GET route.
    """

    def __init__(self, app: ASGIApp, methods_for: Callable[[str], frozenset[str]]) -> None:
        self.app = app
        self.methods_for = methods_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            methods = self.methods_for(scope["path"])
            if methods:
                await send({"type": "http.response.start", "status": 204,
                            "headers": [(b"allow", _allow(methods))]})
                await send({"type": "http.response.body", "body": b""})
                return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                methods = self.methods_for(scope["path"])
                if methods:  # a mounted app (WebDAV) names its own
                    headers = [(k, v) for k, v in message.get("headers", [])
                               if k.lower() != b"allow"]
                    headers.append((b"allow", _allow(methods)))
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_allow)


def _allow(methods: frozenset[str]) -> bytes:
    return ", ".join(sorted(methods)).encode()


class TrackedSend:
    """``send`` that remembers whether the response has begun: once it has, an error can no
    longer be answered with a status of its own."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


class _TooLarge(HTTPException):
    # An HTTPException, so FastAPI's body parsing re-raises it rather than answering 400.
    def __init__(self) -> None:
        super().__init__(413, "The request body is too large.")


async def send_json_error(send: Send, status: int, code: str, message: str,
                          close: bool = False) -> None:
    """Answer with the JSON error body straight from ASGI middleware (no app involved)."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers: list[Any] = [(b"content-type", b"application/json"),
                          (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
