"""The ASGI side of ``/dav/``: authentication and the checks made before the protocol runs.

In order: HTTP Basic with an app password (401 with a challenge, 429 once throttled), the
per-user request rate, paths and ``Destination`` headers that could leave the caller's tree
or this server (400/403), PROPFIND depth (``infinity`` refused: 403 with
``propfind-finite-depth``), and XML bodies: at most ``dav_max_xml_bytes``, and never with a
document type declaration, so entity expansion ("billion laughs") is refused before any
parser sees it. Error answers carry the product's JSON error body.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from wsgidav.lock_man.lock_manager import LockManager

from minidropbox.api.context import AppContext
from minidropbox.api.middleware import send_json_error
from minidropbox.core.errors import MiniDropboxError, TooManyRequests
from minidropbox.dav.bridge import LoopBridge
from minidropbox.dav.checksums import Checksums
from minidropbox.dav.error_pages import allowed_methods
from minidropbox.dav.plain_get import plain_path, send_file
from minidropbox.dav.plain_mkcol import EXISTS, kind_in, plain_mkcol_path
from minidropbox.dav.plain_propfind import (
    multistatus,
    plain_propfind_path,
    requested,
    send_multistatus,
)
from minidropbox.dav.plain_put import PutTarget, plain_put_path, plain_target, receive_file
from minidropbox.dav.session import DavSession
from minidropbox.dav.small_puts import SmallStores

PREFIX = "/dav"
REALM = 'Basic realm="Mini-Dropbox WebDAV", charset="UTF-8"'
# Methods whose body is file content; every other method's body is XML (or empty).
CONTENT_METHODS = {"PUT"}
FINITE_DEPTH = (b'<?xml version="1.0" encoding="utf-8"?>\n<D:error xmlns:D="DAV:">'
                b"<D:propfind-finite-depth/></D:error>")


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _path_ok(path: str) -> bool:
    return not (any(seg in (".", "..") for seg in path.split("/")) or "\\" in path
                or "\x00" in path)


def _check_path(path: str, what: str) -> None:
    if not _path_ok(path):
        raise _Refused(400, "invalid_path", f"{what} must not contain '.', '..' or '\\'.")


def check_destination(value: str, host: str | None) -> None:
    """A ``Destination`` must name this server and a path under ``/dav/``."""
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise _Refused(400, "invalid_input", "Destination is not a URL.") from exc
    if parts.netloc and (host is None or parts.netloc.lower() != host.lower()):
        raise _Refused(403, "forbidden", "Destination must be on this server.")
    path = unquote(parts.path)
    if not (path == PREFIX or path.startswith(PREFIX + "/")):
        raise _Refused(403, "forbidden", f"Destination must be under {PREFIX}/.")
    _check_path(path, "Destination")


class DavGate:
    def __init__(self, app: ASGIApp, ctx: AppContext, locks: LockManager,
                 checksums: Checksums) -> None:
        self.app = app
        self.ctx = ctx
        self.locks = locks  # wsgidav's, so that a PUT taken here sees the same locks
        self.checksums = checksums
        self.small = SmallStores(ctx.chunks)  # small PUT bodies of one account stored together

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            await self._serve(scope, receive, send)
        except _Refused as refused:
            extra = [(b"www-authenticate", REALM.encode())] if refused.status == 401 else []
            await _send_error(send, refused.status, refused.code, refused.message, extra)
        except MiniDropboxError as exc:
            extra = []
            if exc.status == 401:
                extra.append((b"www-authenticate", REALM.encode()))
            if isinstance(exc, TooManyRequests):
                extra.append((b"retry-after", str(exc.details.get("retry_after", 1)).encode()))
            await _send_error(send, exc.status, exc.code, exc.message, extra)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        bridge = LoopBridge(asyncio.get_running_loop())
        put = plain_put_path(scope, headers, PREFIX)
        if put is not None and "destination" not in headers and _path_ok(scope["path"]):
            # A plain PUT: its caller, mount points, target and locks read in one thread hop
            # and one read transaction (the checks' order is unchanged: 401 first).
            session, target = await run_in_threadpool(self._put_target, scope, headers,
                                                      bridge, put)
            try:
                self.ctx.check_rate(session.principal.user_id)
            except TooManyRequests:
                if target is not None:
                    await run_in_threadpool(target.writing.__exit__, None, None, None)
                raise
            if target is not None:
                await receive_file(session, self.locks, self.checksums, put, headers,
                                   receive, send, self.small, target)
                return
            await self._protocol(scope, receive, send, headers, session)
            return
        mkcol = plain_mkcol_path(scope, headers, PREFIX)
        if mkcol is not None and "destination" not in headers and _path_ok(scope["path"]):
            # An MKCOL of what may exist (rclone's before every file): its caller and the
            # entry read in one thread hop and one read transaction, 401 first as ever.
            session, kind = await run_in_threadpool(self._mkcol_target, scope, headers,
                                                    bridge, mkcol)
            self.ctx.check_rate(session.principal.user_id)
            if kind is not None:
                await _send_error(send, 405, "method_not_allowed",
                                  f"Method Not Allowed: {EXISTS}",
                                  [(b"allow", allowed_methods(kind).encode())])
                return
            await self._protocol(scope, receive, send, headers, session)
            return
        limit = self.ctx.settings.dav_max_xml_bytes
        propfind = plain_propfind_path(scope, headers, PREFIX, limit)
        if propfind is not None and _path_ok(scope["path"]):
            # A PROPFIND of row properties (one resource or a listing): its caller and all it
            # answers read in one thread hop and one read transaction, once the (small,
            # declared) body is in.
            body = await _read_body(receive, limit)
            names = None if _declares_dtd(body) else requested(body)
            session, answer = await run_in_threadpool(self._propfind, scope, headers, bridge,
                                                      propfind, names)
            self.ctx.check_rate(session.principal.user_id)
            if answer is not None:
                await send_multistatus(send, answer)
                return
            await self._protocol(scope, _replay(body, receive), send, headers, session)
            return
        principal = await run_in_threadpool(self._authenticate, scope, headers)
        self.ctx.check_rate(principal.user_id)
        await self._protocol(scope, receive, send, headers,
                             DavSession(self.ctx, principal, bridge), put)

    def _put_target(self, scope: Scope, headers: dict[str, str], bridge: LoopBridge,
                    path: str) -> tuple[DavSession, PutTarget | None]:
        with self.ctx.db.read() as conn:
            principal = self._authenticate(scope, headers, conn)
            session = DavSession(self.ctx, principal, bridge)
            return session, plain_target(session, self.locks, path, conn)

    def _mkcol_target(self, scope: Scope, headers: dict[str, str], bridge: LoopBridge,
                      path: str) -> tuple[DavSession, str | None]:
        with self.ctx.db.read() as conn:
            principal = self._authenticate(scope, headers, conn)
            session = DavSession(self.ctx, principal, bridge)
            return session, kind_in(session, path, conn)

    def _propfind(self, scope: Scope, headers: dict[str, str], bridge: LoopBridge, path: str,
                  names: list[str] | None) -> tuple[DavSession, bytes | None]:
        with self.ctx.db.read() as conn:
            principal = self._authenticate(scope, headers, conn)
            session = DavSession(self.ctx, principal, bridge)
            if names is None:
                return session, None
            return session, multistatus(session, self.checksums, conn, PREFIX, path,
                                        headers["depth"], names)

    async def _protocol(self, scope: Scope, receive: Receive, send: Send,
                        headers: dict[str, str], session: DavSession,
                        put: str | None = None) -> None:
        """Everything after authentication: the request's own checks, the fast paths, then
        wsgidav."""
        method = scope["method"].upper()
        _check_path(scope["path"], "The path")
        if "destination" in headers:
            check_destination(headers["destination"], headers.get("host"))
        if method == "PROPFIND" and headers.get("depth", "infinity").lower() not in ("0", "1"):
            await send({"type": "http.response.start", "status": 403, "headers": [
                (b"content-type", b"application/xml; charset=utf-8"),
                (b"content-length", str(len(FINITE_DEPTH)).encode())]})
            await send({"type": "http.response.body", "body": FINITE_DEPTH})
            return
        plain = plain_path(scope, headers, PREFIX)
        if plain is not None and await send_file(session, plain, send):
            return
        if put is not None and await receive_file(session, self.locks, self.checksums, put,
                                                  headers, receive, send, self.small):
            return
        if method not in CONTENT_METHODS:
            receive = await self._checked_xml(headers, receive)
        inner = dict(scope)
        inner["minidropbox.dav"] = session
        # A body that arrives too slowly (BodyPace) fails inside the protocol's worker thread,
        # which would answer 500: its answer is dropped and the error raised on, so the
        # middleware that raised it answers (408).
        failed: list[Exception] = []

        async def watched_receive() -> Message:
            try:
                return await receive()
            except Exception as exc:
                failed.append(exc)
                raise

        marked = _mark_mtime(send, method, headers)

        async def unless_failed(message: Message) -> None:
            if not failed:
                await marked(message)
        await self.app(inner, watched_receive, unless_failed)
        if failed:
            raise failed[0]

    def _authenticate(self, scope: Scope, headers: dict[str, str],
                      conn: Connection | None = None) -> Any:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic" or not token:
            raise _Refused(401, "unauthorized",
                           "WebDAV needs HTTP Basic with your username and an app password.")
        try:
            username, sep, secret = base64.b64decode(token.strip(), validate=True) \
                .decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise _Refused(401, "unauthorized", "Malformed Basic credentials.") from exc
        if not sep:
            raise _Refused(401, "unauthorized", "Malformed Basic credentials.")
        client = scope.get("client")
        address = client[0] if client else "unknown"
        return self.ctx.app_passwords.authenticate(username, secret, address, conn)

    async def _checked_xml(self, headers: dict[str, str], receive: Receive) -> Receive:
        """Read a (small) XML body whole, refuse it if too large or if it declares a DTD, and
        hand the same bytes on."""
        limit = self.ctx.settings.dav_max_xml_bytes
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise _Refused(413, "too_large", f"XML bodies are at most {limit} bytes.")
        body = await _read_body(receive, limit)
        if _declares_dtd(body):
            raise _Refused(400, "invalid_input",
                           "XML with a document type declaration or entities is refused.")
        return _replay(body, receive)


async def _read_body(receive: Receive, limit: int) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _Refused(400, "invalid_input", "The request body broke off.")
        body += message.get("body", b"")
        if len(body) > limit:
            raise _Refused(413, "too_large", f"XML bodies are at most {limit} bytes.")
        if not message.get("more_body", False):
            return bytes(body)


def _declares_dtd(body: bytes) -> bool:
    return b"<!doctype" in body[:4096].lower() or b"<!entity" in body.lower()


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` with ``body``, already read, handed on first."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # only a disconnect can follow
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}
    return replay


def _mark_mtime(send: Send, method: str, headers: dict[str, str]) -> Send:
    """Tell ownCloud-style clients that the ``X-OC-Mtime`` they sent was kept."""
    if method != "PUT" or "x-oc-mtime" not in headers:
        return send

    async def marked(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] in (200, 201, 204):
            message = dict(message)
            message["headers"] = [*message.get("headers", []), (b"x-oc-mtime", b"accepted")]
        await send(message)
    return marked


async def _send_error(send: Send, status: int, code: str, message: str,
                      extra: list[tuple[bytes, bytes]]) -> None:
    if not extra:
        await send_json_error(send, status, code, message)
        return

    async def with_extra(msg: Message) -> None:
        if msg["type"] == "http.response.start":
            msg = dict(msg)
            msg["headers"] = [*msg.get("headers", []), *extra]
        await send(msg)
    await send_json_error(with_extra, status, code, message)
