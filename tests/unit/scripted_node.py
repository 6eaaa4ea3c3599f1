"""A scripted stand-in for a storage node on a loopback port, for the node HTTP clients'
tests (``storage/node_http.py``, ``storage/node_fetch.py``): each request's head and body go
to a function that writes whatever answer the test needs, well-formed or not."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

# ``respond(head, body, writer)`` writes the answer; returning ``HANG_UP`` closes the
# connection once it is written.
Respond = Callable[[bytes, bytes, asyncio.StreamWriter], Awaitable[object]]
HANG_UP = "hang up"


async def serve(respond: Respond, keep_alive: bool = True,
                ) -> tuple[asyncio.Server, str, list[int]]:
    """A server that answers every request with ``respond`` until the client closes the
    connection (after one answer each unless ``keep_alive``, as a node whose keep-alive
    expired); the server, its URL and the list of connections it accepted."""
    connections: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections))
        try:
            while True:
                try:
                    head, body = await read_request(reader)
                except asyncio.IncompleteReadError:
                    return
                hang_up = await respond(head, body, writer) == HANG_UP
                await writer.drain()
                if hang_up or not keep_alive:
                    return
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}", connections


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head, await reader.readexactly(length)


def answer(body: bytes, status: str = "200 OK") -> bytes:
    return f"HTTP/1.1 {status}\r\ncontent-length: {len(body)}\r\n\r\n".encode() + body


CHUNKED_ABCDE = (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                 b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n")  # "abcde", with a chunk extension
CUT_ANSWER = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"  # 3 of 10 bytes, then closed
