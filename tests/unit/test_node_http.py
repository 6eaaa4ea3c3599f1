"""The node HTTP client against a scripted asyncio server: reuse, stale connections, framing,
and answers no node should give. What the in-place GET pool (``node_fetch.FetchPool``) must do
alike is run against both pools here."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from minidropbox.storage.base import StoreUnavailable
from minidropbox.storage.node_client import AsyncNodeClient
from minidropbox.storage.node_fetch import FetchPool
from minidropbox.storage.node_http import (
    NodePool,
    NodeProtocolError,
    NodeTransportError,
    Response,
)
from tests.unit.scripted_node import CHUNKED_ABCDE, CUT_ANSWER, HANG_UP, answer, serve


class _StreamGets:
    """``NodePool`` (answers read through an asyncio stream) behind ``FetchPool``'s ``get``."""

    def __init__(self, url: str) -> None:
        self.pool = NodePool(url)

    async def get(self, target: str, headers: dict[str, str]) -> Response:
        return await self.pool.request("GET", target, headers)

    async def aclose(self) -> None:
        await self.pool.aclose()


# What both pools must do alike: one reads answers through a stream, the other in place.
either_pool = pytest.mark.parametrize("pool_kind", [_StreamGets, FetchPool],
                                      ids=["streams", "in-place"])
PoolKind = Callable[[str], _StreamGets | FetchPool]


def test_keep_alive_reuses_one_connection_and_sends_the_body() -> None:
    async def echo(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
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


@either_pool
def test_an_idle_connection_the_node_closed_is_replaced(pool_kind: PoolKind) -> None:
    async def healthz(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(answer(b"{}"))

    async def scenario() -> None:
        # One answer per connection, then closed: as a node does when its keep-alive expires.
        server, url, connections = await serve(healthz, keep_alive=False)
        pool = pool_kind(url)
        for _ in range(3):
            assert (await pool.get("/healthz", {})).json() == {}
        assert len(connections) == 3
        await pool.aclose()
        server.close()

    asyncio.run(scenario())


def test_chunked_answers_and_half_read_bodies() -> None:
    async def respond(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(CHUNKED_ABCDE if head.startswith(b"GET /chunked")
                     else answer(b"z" * 100_000))

    async def scenario() -> None:
        server, url, connections = await serve(respond)
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


@either_pool
def test_a_node_that_hangs_up_mid_answer_is_a_transport_error(pool_kind: PoolKind) -> None:
    async def cut(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> str:
        writer.write(CUT_ANSWER)
        return HANG_UP

    async def scenario() -> None:
        server, url, _ = await serve(cut)
        pool = pool_kind(url)
        with pytest.raises(NodeProtocolError):
            await pool.get("/chunks/a", {})
        server.close()
        await server.wait_closed()
        with pytest.raises(NodeTransportError):
            await pool.get("/chunks/a", {})
        await pool.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize("body", [b"not json", b'{"chunks": 7}', b'{"status": "ok"}', b"[]"])
def test_an_answer_the_protocol_does_not_allow_is_the_node_s_fault(body: bytes) -> None:
    """Every fault of a node is a ``StoreError``, so the cluster falls over instead of
    answering 500: a success whose body cannot be read is ``StoreUnavailable``."""
    async def garbage(head: bytes, _: bytes, writer: asyncio.StreamWriter) -> None:
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
