"""The node HTTP client against a scripted asyncio server: reuse, stale connections, framing,
and answers no node should give."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from minidropbox.storage.base import StoreUnavailable
from minidropbox.storage.node_client import AsyncNodeClient
from minidropbox.storage.node_http import NodePool, NodeProtocolError, NodeTransportError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


async def serve(handler: Handler) -> tuple[asyncio.Server, str, list[int]]:
    """A server answering each connection with ``handler(reader, writer, connection_no)``."""
    connections: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections))
        try:
            await handler(reader, writer, connections[-1])
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


def test_keep_alive_reuses_one_connection_and_sends_the_body() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while not reader.at_eof():
            try:
                head, body = await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            assert b"Authorization: Bearer s" in head and b"Host: 127.0.0.1:" in head
            writer.write(answer(body, "201 Created"))

    async def scenario() -> None:
        server, url, connections = await serve(echo)
        pool = NodePool(url)
        for size in (0, 10, 3 << 20):
            body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
            response = await pool.request("PUT", "/chunks/a", {"Authorization": "Bearer s"},
                                          body)
            assert (response.status_code, response.content) == (201, body)
        assert len(connections) == 1
        await pool.aclose()
        server.close()

    asyncio.run(scenario())


def test_an_idle_connection_the_node_closed_is_replaced() -> None:
    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(answer(b"{}"))
        await writer.drain()  # then close: as a node does when its keep-alive expires

    async def scenario() -> None:
        server, url, connections = await serve(once)
        pool = NodePool(url)
        for _ in range(3):
            assert (await pool.request("GET", "/healthz", {})).json() == {}
        assert len(connections) == 3
        await pool.aclose()
        server.close()

    asyncio.run(scenario())


def test_chunked_answers_and_half_read_bodies() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      _: int) -> None:
        while True:
            try:
                head, _ = await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            if head.startswith(b"GET /chunked"):
                writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                             b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n")
            else:
                writer.write(answer(b"z" * 100_000))

    async def scenario() -> None:
        server, url, connections = await serve(handler)
        pool = NodePool(url)
        assert (await pool.request("GET", "/chunked", {})).content == b"abcde"
        async with pool.open("GET", "/big", {}) as (response, chunks):
            assert response.headers["content-length"] == "100000"
            async for _ in chunks(10):
                break  # left early: the connection must not be reused
        assert (await pool.request("GET", "/chunked", {})).content == b"abcde"
        assert len(connections) == 2
        await pool.aclose()
        server.close()

    asyncio.run(scenario())


def test_a_node_that_hangs_up_mid_answer_is_a_transport_error() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        await writer.drain()

    async def scenario() -> None:
        server, url, _ = await serve(cut)
        pool = NodePool(url)
        with pytest.raises(NodeProtocolError):
            await pool.request("GET", "/chunks/a", {})
        server.close()
        await server.wait_closed()
        with pytest.raises(NodeTransportError):
            await pool.request("GET", "/chunks/a", {})

    asyncio.run(scenario())


@pytest.mark.parametrize("body", [b"not json", b'{"chunks": 7}', b'{"status": "ok"}', b"[]"])
def test_an_answer_the_protocol_does_not_allow_is_the_node_s_fault(body: bytes) -> None:
    """Every fault of a node is a ``StoreError``, so the cluster falls over instead of
    answering 500: a success whose body cannot be read is ``StoreUnavailable``."""
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while not reader.at_eof():
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(answer(body))

    async def scenario() -> None:
        server, url, _ = await serve(garbage)
        async with AsyncNodeClient(url, "s", timeout=5) as client:
            calls = (client.stat, client.list, client.quarantined,
                     lambda: client.list_aged("", 10, 0))
            for call in calls:
                with pytest.raises(StoreUnavailable, match="malformed"):
                    await call()
        server.close()
        await server.wait_closed()

    asyncio.run(scenario())
