"""A stream of "the journal moved" notifications that survives disconnects.

Where the journal is and what changed since a cursor are ``Remote.latest_cursor`` and
``Remote.changes_since``; this module only says *when* to ask.

``notifications`` prefers the WebSocket and falls back to long-polling when WebSockets do not
get through (a proxy that refuses the upgrade, for instance), retrying the WebSocket now and
then. It yields cursors only as hints: a consumer keeps its own cursor and asks
``Remote.changes_since`` from there, so a missed or repeated notification never loses a change.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator

import httpx
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from minidropbox.client.api import ServerUnreachable
from minidropbox.client.remote import Remote
from minidropbox.core import errors
from minidropbox.core.backoff import Backoff

log = logging.getLogger("minidropbox.client.changes")

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_RATE_LIMITED = 4429
LONGPOLL_SPELL = 60.0  # seconds of long-polling before trying the WebSocket again
IDLE_LIMIT = 75.0  # no message (the server pings every 20 s) for this long: reconnect
RECV_SLICE = 0.5  # how often a blocked receive looks at the stop flag
# Failures worth retrying: the server is down, restarting, or busy (5xx answers too).
TRANSIENT: tuple[type[BaseException], ...] = (
    OSError, WebSocketException, ServerUnreachable, errors.TooManyRequests,
    httpx.TransportError)


def is_transient(exc: BaseException) -> bool:
    """Whether retrying later may help: network trouble, a restart, a busy or failing server."""
    if isinstance(exc, TRANSIENT):
        return True
    return isinstance(exc, errors.MiniDropboxError) and exc.status >= 500


class _WebSocketRefused(Exception):
    """The server answered the upgrade with an HTTP error: WebSockets do not get through."""


ConnectionListener = Callable[[bool, str], None]
"""Told ``(False, why)`` when the connection is lost, ``(True, "")`` once it is back."""


def notifications(remote: Remote, *, stop: threading.Event | None = None,
                  websocket: bool = True, poll_timeout: float = 25.0,
                  backoff: Backoff | None = None,
                  on_connection: ConnectionListener | None = None) -> Iterator[str]:
    """Yield the newest cursor at once, then each time the account's journal moves.

    Runs until ``stop`` is set (or the consumer stops iterating). Disconnects are retried
    with backoff; a session that ended raises ``Unauthorized``. With ``websocket=False`` it
    only long-polls. A consumer that cannot keep up sees only the newest of several cursors.
    ``on_connection`` hears once when the connection is lost and once when it is back (not at
    every failed retry in between).
    """
    stop = stop or threading.Event()
    backoff = backoff or Backoff()
    last: str | None = None
    longpoll_until = 0.0 if websocket else float("inf")
    refused_auth = False
    lost = False
    while not stop.is_set():
        try:
            source: Generator[str, None, None]
            if time.monotonic() >= longpoll_until:
                source = _websocket_cursors(remote, stop)
            else:
                source = _longpoll_cursors(remote, stop, last, poll_timeout, longpoll_until)
            with contextlib.closing(source):
                for cursor in source:
                    backoff.reset()
                    refused_auth = False
                    if lost:
                        lost = False
                        if on_connection is not None:
                            on_connection(True, "")
                    if cursor != last:
                        last = cursor
                        yield cursor
        except _WebSocketRefused as exc:
            log.info("WebSocket refused (%s); long-polling for %.0f s", exc, LONGPOLL_SPELL)
            longpoll_until = time.monotonic() + LONGPOLL_SPELL
            continue
        except errors.Unauthorized:
            # The access token may have expired while connected: refresh once, then give up.
            if refused_auth:
                raise
            refused_auth = True
            api = remote.api
            api.refresh(stale=api.credentials.access_token if api.credentials else None)
            continue
        except Exception as exc:
            if not is_transient(exc):
                raise
            delay = backoff.next_delay()
            log.info("notifications interrupted (%s); retrying in %.1f s", exc, delay)
            if not lost:
                lost = True
                if on_connection is not None:
                    on_connection(False, str(exc) or type(exc).__name__)
            stop.wait(delay)


def _websocket_cursors(remote: Remote, stop: threading.Event) -> Generator[str, None, None]:
    """Cursors from one WebSocket connection, until it closes (raised) or ``stop`` is set."""
    protocols = [Subprotocol("bearer"), Subprotocol(remote.api.access_token())]
    with contextlib.ExitStack() as stack:
        try:
            ws = stack.enter_context(connect(remote.notifications_url(), subprotocols=protocols,
                                             open_timeout=10, close_timeout=2, proxy=None))
        except InvalidStatus as exc:
            raise _WebSocketRefused(f"HTTP {exc.response.status_code}") from exc
        idle_since = time.monotonic()
        while not stop.is_set():
            try:
                raw = ws.recv(timeout=RECV_SLICE)
            except TimeoutError:
                if time.monotonic() - idle_since > IDLE_LIMIT:
                    raise TimeoutError("no message from the server; reconnecting") from None
                continue
            except ConnectionClosed as exc:
                _raise_for_close(exc)
                raise
            idle_since = time.monotonic()
            cursor = _cursor_of(raw)
            if cursor is not None:
                yield cursor


def _raise_for_close(exc: ConnectionClosed) -> None:
    code = exc.rcvd.code if exc.rcvd is not None else None
    reason = exc.rcvd.reason if exc.rcvd is not None else ""
    if code == CLOSE_UNAUTHORIZED:
        raise errors.Unauthorized(reason or "The server refused the token.") from exc
    if code == CLOSE_RATE_LIMITED:
        raise errors.TooManyRequests(reason or None) from exc
    if code == CLOSE_BAD_REQUEST:
        raise errors.InvalidInput(reason or "The server refused the notification request.") \
            from exc


def _cursor_of(raw: str | bytes) -> str | None:
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    cursor = message.get("cursor") if isinstance(message, dict) else None
    return cursor if isinstance(cursor, str) else None


def _longpoll_cursors(remote: Remote, stop: threading.Event, last: str | None,
                      timeout: float, until: float) -> Generator[str, None, None]:
    """Cursors from long-polling, until ``until`` (monotonic) passes or ``stop`` is set."""
    cursor = last or remote.latest_cursor()
    yield cursor
    while not stop.is_set() and time.monotonic() < until:
        try:
            changed, newest = remote.wait_for_change(cursor, timeout)
        except errors.CursorReset:
            # Our hint is stale (say the server was restored): hand on the server's newest
            # cursor; the consumer's own cursor gets the 410 and it reconciles.
            changed, newest = True, remote.latest_cursor()
        if changed:
            cursor = newest
            yield cursor
