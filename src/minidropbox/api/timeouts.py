"""Slow and oversized clients: a deadline and a size cap for the request head, and a
minimum pace for the request body.

uvicorn waits forever for a request head that arrives one byte at a time, accepts heads of
any size, and lets the app wait forever for a body that trickles in. Each of those lets a
handful of cheap connections hold server memory and sockets (slowloris). ``guarded_protocol``
closes a connection whose head is not complete within ``head_timeout`` seconds or grows past
``MAX_HEAD_BYTES``, and caps how many connections may be waiting for their head at once, per
client address and overall (api/pending_heads.py); ``BodyPace`` answers 408 (and closes)
when a body brings less than ``MIN_BODY_BYTES`` in a window of ``window`` seconds. Fast
clients never notice any of it. Requests uvicorn cannot parse get the API's JSON error body,
not uvicorn's plain text.
"""

from __future__ import annotations

import asyncio
import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from minidropbox.api.middleware import TrackedSend, send_json_error
from minidropbox.api.pending_heads import PendingHeads

# Room for the longest request the schema allows (an 8192-character path, percent-encoded
# at up to 12 bytes per character, plus headers), and not much more.
MAX_HEAD_BYTES = 128 * 1024
MIN_BODY_BYTES = 1024
_HEAD_TOO_LARGE = json.dumps({"error": {"code": "too_large", "message":
                                        "The request line and headers are too large."}}).encode()


class _GuardedHttpTools(HttpToolsProtocol):
    head_timeout: float = 10.0
    pending: PendingHeads[_GuardedHttpTools]  # one per server process (guarded_protocol)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_bytes = 0
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_too_slow)
            for oldest in self.pending.admit(self, self.client[0] if self.client else ""):
                oldest._head_too_slow()

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
            self.pending.remove(self)

    def _head_too_slow(self) -> None:
        self._disarm_head_timer()
        if not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._head_timer is not None:
            self._head_bytes += len(data)
        # Parse first: one read often carries the head and the start of a large body, and
        # only bytes read while the head is still incomplete count against the cap.
        super().data_received(data)
        if self._head_timer is not None and self._head_bytes > MAX_HEAD_BYTES:
            self._disarm_head_timer()
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                b"content-type: application/json\r\n"
                b"content-length: " + str(len(_HEAD_TOO_LARGE)).encode() + b"\r\n"
                b"connection: close\r\n\r\n" + _HEAD_TOO_LARGE)
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers requests it cannot parse (a request line over llhttp's limits,
        # bytes that are not HTTP) in plain text; every error of this API is JSON.
        body = json.dumps({"error": {"code": "invalid_input", "message": msg}}).encode()
        self.transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                             b"content-length: " + str(len(body)).encode() + b"\r\n"
                             b"connection: close\r\n\r\n" + body)
        self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_head_timer()  # the next request on a kept-alive connection gets its own

    def on_headers_complete(self) -> None:
        self._disarm_head_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)


def guarded_protocol(head_timeout: float, pending_heads: int = 512,
                     pending_heads_per_client: int = 64) -> type[asyncio.Protocol]:
    """uvicorn's ``http=`` protocol class with a ``head_timeout``-second deadline per head, and
    at most ``pending_heads`` connections waiting for theirs (``pending_heads_per_client`` from
    one address)."""
    return type("GuardedHttpTools", (_GuardedHttpTools,), {
        "head_timeout": head_timeout,
        "pending": PendingHeads(pending_heads, pending_heads_per_client)})


class _SlowBody(HTTPException):
    # An HTTPException, so FastAPI's body parsing re-raises it and the error handlers answer.
    def __init__(self) -> None:
        super().__init__(408, "The request body arrived too slowly.",
                         headers={"Connection": "close"})


class BodyPace:
    """Refuse (408, connection closed) a body that brings under ``MIN_BODY_BYTES`` per
    ``window`` seconds before it ends. Only the body is timed: once it is complete, the app's
    further ``receive()`` calls (waiting for a disconnect during a long download) pass through.
    Only time spent waiting for the client counts: a busy server that is slow to ask for the
    body (a starved event loop, a handler doing work between reads) never blames the client.
    """

    def __init__(self, app: ASGIApp, window: float) -> None:
        self.app = app
        self.window = window

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        waited, window_bytes, body_done = 0.0, 0, False
        tracked = TrackedSend(send)

        async def paced_receive() -> Message:
            nonlocal waited, window_bytes, body_done
            if body_done:
                return await receive()
            while True:
                if waited >= self.window:
                    if window_bytes < MIN_BODY_BYTES:
                        raise _SlowBody()
                    waited, window_bytes = 0.0, 0
                started = loop.time()
                try:
                    message = await asyncio.wait_for(receive(), self.window - waited)
                except TimeoutError:
                    waited = self.window  # the window is over: judged at the top of the loop
                    continue
                waited += loop.time() - started
                if message["type"] == "http.request":
                    window_bytes += len(message.get("body", b""))
                    body_done = not message.get("more_body", False)
                else:
                    body_done = True
                return message

        try:
            await self.app(scope, paced_receive, tracked)
        except _SlowBody:
            if not tracked.started:
                await send_json_error(send, 408, "timeout",
                                      "The request body arrived too slowly.", close=True)
