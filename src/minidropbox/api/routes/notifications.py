"""WebSocket ``/api/v1/notifications``: push the newest journal cursor whenever it moves.

1. The client authenticates with its access token, never in the URL (URLs end up in logs):
   either subprotocols ``["bearer", TOKEN]`` (accepted as subprotocol ``bearer``), or a first
   message ``{"token": TOKEN}`` within ``ws_auth_timeout`` seconds. The web app's socket
   offers no subprotocol and is authenticated by its session cookie (same origin only).
2. The server sends ``{"cursor": C}`` at once, again whenever the user's journal moves, and
   ``{"cursor": C, "ping": true}`` after ``ws_ping_interval`` seconds without a message.
3. The session is re-checked before every push and every ``ws_session_check`` seconds, so a
   logout or password change closes the socket.

Close codes: 4400 bad request (a query string, a malformed first message), 4401 no valid
token, or the session ended, 4429 rate limited or too many sockets open for the account
(``ws_max_per_user``); 1012 when the server restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from minidropbox.api import browser_session
from minidropbox.api.context import AppContext
from minidropbox.core.errors import MiniDropboxError, TooManyRequests
from minidropbox.service.accounts import ACCESS, BROWSER, Principal

router = APIRouter(tags=["changes"])

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_RATE_LIMITED = 4429
CLOSE_RESTARTING = 1012
SUBPROTOCOL = "bearer"
MAX_TOKEN_MESSAGE = 4096
# Errors that mean the peer is gone (a send or receive on a dead socket).
GONE = (WebSocketDisconnect, RuntimeError, OSError)


@router.websocket("/api/v1/notifications")
async def notifications(websocket: WebSocket) -> None:
    """Authenticate, then push cursors until either side closes."""
    ctx: AppContext = websocket.app.state.ctx
    with contextlib.suppress(*GONE):
        if websocket.url.query:
            await websocket.accept()
            await websocket.close(CLOSE_BAD_REQUEST, "No query parameters: send the token in "
                                  "the subprotocol header or the first message.")
            return
        kind, token = ACCESS, None
        cookie = websocket.cookies.get(browser_session.COOKIE)
        if cookie and not websocket.scope.get("subprotocols"):
            # The web app's socket: its session cookie, only from a page of this origin
            # (a page elsewhere could otherwise open it with the cookie attached).
            await websocket.accept()
            if not browser_session.same_origin(websocket.headers, websocket.url.scheme):
                await websocket.close(CLOSE_UNAUTHORIZED, "Cross-site socket refused.")
                return
            kind, token = BROWSER, cookie
        else:
            token = await _token(websocket, ctx.settings.ws_auth_timeout)
        if token is None:
            return
        try:
            principal = await run_in_threadpool(_authenticate, ctx, token, kind)
        except TooManyRequests as exc:
            await websocket.close(CLOSE_RATE_LIMITED, exc.message[:120])
            return
        except MiniDropboxError as exc:
            await websocket.close(CLOSE_UNAUTHORIZED, exc.message[:120])
            return
        # Each socket holds a file descriptor: one account must not be able to take them all.
        sockets = _open_sockets(websocket)
        if sockets[principal.user_id] >= ctx.settings.ws_max_per_user:
            await websocket.close(CLOSE_RATE_LIMITED, "Too many notification sockets open "
                                  "for this account.")
            return
        sockets[principal.user_id] += 1
        try:
            with ctx.metrics.websocket_client():
                await _push(websocket, ctx, principal)
        finally:
            sockets[principal.user_id] -= 1
            if sockets[principal.user_id] <= 0:
                del sockets[principal.user_id]


def _open_sockets(websocket: WebSocket) -> Counter[int]:
    """Open notification sockets per user, kept on the app (one event loop touches it)."""
    state = websocket.app.state
    if not hasattr(state, "notification_sockets"):
        state.notification_sockets = Counter()
    sockets: Counter[int] = state.notification_sockets
    return sockets


def _authenticate(ctx: AppContext, token: str, kind: str) -> Principal:
    principal = ctx.accounts.authenticate(token, kind)
    ctx.check_rate(principal.user_id)
    return principal


async def _token(websocket: WebSocket, timeout: float) -> str | None:
    """Accept the socket and get the token from the subprotocols or the first message.

    Returns None after closing the socket when there is no usable token.
    """
    offered: list[str] = list(websocket.scope.get("subprotocols") or [])
    if SUBPROTOCOL in offered:
        await websocket.accept(subprotocol=SUBPROTOCOL)
        index = offered.index(SUBPROTOCOL)
        if index + 1 < len(offered):
            return offered[index + 1]
        await websocket.close(CLOSE_UNAUTHORIZED, "Offer the token after 'bearer'.")
        return None
    await websocket.accept()
    try:
        message = await asyncio.wait_for(websocket.receive(), timeout)
    except TimeoutError:
        await websocket.close(CLOSE_UNAUTHORIZED, f"No token within {timeout:g} seconds.")
        return None
    if message["type"] == "websocket.disconnect":
        return None
    token = _parse_token(message.get("text") or message.get("bytes"))
    if token is None:
        await websocket.close(CLOSE_BAD_REQUEST, 'The first message must be {"token": "..."}.')
    return token


def _parse_token(raw: str | bytes | None) -> str | None:
    if raw is None or len(raw) > MAX_TOKEN_MESSAGE:
        return None
    try:
        body: Any = json.loads(raw)
    except ValueError:
        return None
    token = body.get("token") if isinstance(body, dict) else None
    return token if isinstance(token, str) and token else None


async def _until_closed(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends until it disconnects."""
    with contextlib.suppress(*GONE):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return


async def _push(websocket: WebSocket, ctx: AppContext, principal: Principal) -> None:
    service, settings = ctx.changes, ctx.settings
    ns = principal.namespace_id
    ping_every = max(0.05, settings.ws_ping_interval)
    check_every = max(0.05, settings.ws_session_check)
    loop = asyncio.get_running_loop()
    # Listen before reading the head, so a change committed in between is not missed.
    async with service.hub.listen(ns) as listener:
        sent = await run_in_threadpool(service.head, ns)
        listener.advance(sent)
        await websocket.send_json({"cursor": service.cursor_for(ns, sent)})
        receiver = asyncio.create_task(_until_closed(websocket))
        next_ping, next_check = loop.time() + ping_every, loop.time() + check_every
        try:
            while True:
                timeout = max(0.0, min(next_ping, next_check) - loop.time())
                waiter = asyncio.create_task(listener.wait_past(sent, timeout))
                await asyncio.wait({receiver, waiter}, return_when=asyncio.FIRST_COMPLETED)
                if receiver.done():
                    waiter.cancel()
                    return
                latest, now = waiter.result(), loop.time()
                if listener.closed:
                    await websocket.close(CLOSE_RESTARTING, "The server is restarting.")
                    return
                if latest > sent or now >= next_check:
                    if not await run_in_threadpool(service.session_alive, principal):
                        await websocket.close(CLOSE_UNAUTHORIZED,
                                              "The session has ended; log in again.")
                        return
                    next_check = now + check_every
                if latest > sent:
                    sent = latest
                    await websocket.send_json({"cursor": service.cursor_for(ns, sent)})
                    next_ping = now + ping_every
                elif now >= next_ping:
                    await websocket.send_json({"cursor": service.cursor_for(ns, sent),
                                               "ping": True})
                    next_ping = now + ping_every
        finally:
            receiver.cancel()
