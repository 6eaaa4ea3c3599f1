"""Chunk bodies sent with ``sendfile(2)``: from the page cache to the socket, never through
Python.

A node answering a chunk GET used to read the file in 1 MiB blocks in a worker thread (a
fresh 1 MiB ``bytes`` each: a copy and page faults) and hand each to uvicorn, which copied it
into the socket: two copies, a mapping and several thread hops per MiB, a third of a node's
CPU in a download. ASGI has an extension for this, ``http.response.zerocopysend``; uvicorn
does not offer it, so ``with_zero_copy`` adds it to uvicorn's ``httptools`` protocol class:
each request's ``send`` takes that message too, and sends the file's bytes with
``os.sendfile`` in one worker thread (a chunk not in the page cache is read from the disk
there, not on the event loop). The head still goes through uvicorn, and so does the empty last body
message, so uvicorn's accounting (Content-Length, keep-alive, the next request) is its own.

It rests on two details of uvicorn's ``httptools`` implementation, checked when the class is
made: ``_start_asgi_task(cycle, app)`` starts every request's app, and the cycle keeps
``transport``, ``expected_content_length`` and ``send``. Without them the extension is not
offered, and the app sends its bodies as before.
"""

from __future__ import annotations

import os
import select
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread

ZERO_COPY = "http.response.zerocopysend"
STALL_SECONDS = 60.0  # a peer that takes no bytes for this long is given up
_CYCLE = ("transport", "expected_content_length", "send", "scope", "response_started",
          "response_complete", "disconnected")


def with_zero_copy(protocol: type[Any]) -> type[Any]:
    """``protocol`` (uvicorn's ``HttpToolsProtocol`` or a subclass) offering the
    ``http.response.zerocopysend`` extension to the app; ``protocol`` itself if this uvicorn
    has not the parts it needs."""
    if not callable(getattr(protocol, "_start_asgi_task", None)):
        return protocol

    def _start_asgi_task(self: Any, cycle: Any, app: Any) -> None:
        if all(hasattr(cycle, a) for a in _CYCLE):
            cycle.scope.setdefault("extensions", {})[ZERO_COPY] = {}
            cycle.send = ZeroCopySend(cycle)
        protocol._start_asgi_task(self, cycle, app)

    return type(f"ZeroCopy{protocol.__name__}", (protocol,),
                {"_start_asgi_task": _start_asgi_task})


class ZeroCopySend:
    """One request's ``send``: ``http.response.zerocopysend`` by ``sendfile``, the rest as
    uvicorn sends it."""

    def __init__(self, cycle: Any) -> None:
        self.cycle = cycle
        self.send: Callable[[dict[str, Any]], Awaitable[None]] = cycle.send

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] != ZERO_COPY:
            await self.send(message)
            return
        cycle = self.cycle
        if cycle.disconnected:
            # The peer went away before the answer could start (a hedged read the API no
            # longer needs): uvicorn drops the head then, and the body goes the same way.
            return
        if not cycle.response_started or cycle.response_complete:
            raise RuntimeError(f"Unexpected ASGI message {ZERO_COPY!r}.")
        fd = message["file"].fileno()
        offset, count = int(message["offset"]), int(message["count"])
        if count > cycle.expected_content_length:
            raise RuntimeError("Response content longer than Content-Length")
        if cycle.scope["method"] != "HEAD" and count:
            transport = cycle.transport
            if transport.get_write_buffer_size():
                # Bytes of the head are still queued in the transport: sending past them
                # would reorder the answer, so this body goes the way they do.
                await self._copied(fd, offset, count)
            else:
                sock = transport.get_extra_info("socket")
                try:
                    if sock is None or transport.is_closing():
                        raise ConnectionResetError
                    # Duplicated here, on the loop, where the transport cannot close its
                    # socket between the check above and this line. The thread writes to
                    # the duplicate, so if the transport closes its own descriptor meanwhile
                    # (the peer went away) and the process reuses that number for another
                    # connection or a chunk being written, not a byte goes there.
                    out = os.dup(sock.fileno())
                    try:
                        # Not abandoned on cancellation: ``out`` is closed only once the
                        # thread is done with it.
                        await anyio.to_thread.run_sync(sendfile, out, fd, offset, count)
                    finally:
                        os.close(out)
                except ConnectionError:
                    # The peer went away (say, a hedged read the API no longer needs): as
                    # when uvicorn's own write finds the connection gone, the rest of the
                    # answer is dropped, and nothing is logged.
                    cycle.disconnected = True
                    transport.close()
                    return
                cycle.expected_content_length -= count
        await self.send({"type": "http.response.body", "body": b"",
                         "more_body": bool(message.get("more_body", False))})

    async def _copied(self, fd: int, offset: int, count: int) -> None:
        block = 1 << 20
        while count:
            data = await anyio.to_thread.run_sync(os.pread, fd, min(block, count), offset)
            if not data:
                raise OSError("file shorter than the count to send")
            await self.send({"type": "http.response.body", "body": data, "more_body": True})
            offset += len(data)
            count -= len(data)


def sendfile(sock_fd: int, fd: int, offset: int, count: int,
             stall: float = STALL_SECONDS) -> None:
    """``count`` bytes of file ``fd`` from ``offset`` to the non-blocking socket ``sock_fd``,
    waiting for room in its buffer as a write does; ``TimeoutError`` when the peer took
    nothing for ``stall`` seconds. Blocking: run in a worker thread (a chunk not in the page
    cache is read from the disk here).

    ``sock_fd`` must stay open and name that socket for the whole call: the caller passes a
    duplicate of the transport's descriptor, made on the event loop (``ZeroCopySend``), never
    the transport's own, which the loop may close and the process reuse while this runs. The
    peer's going away is an ``OSError`` (EPIPE, ECONNRESET) here."""
    room = select.poll()
    room.register(sock_fd, select.POLLOUT)
    while count:
        try:
            sent = os.sendfile(sock_fd, fd, offset, count)
        except BlockingIOError:
            if not room.poll(stall * 1000):
                raise TimeoutError("the peer took no bytes") from None
            continue
        if not sent:
            raise OSError("file shorter than the count to send")
        offset += sent
        count -= sent
