"""Whole-chunk GETs received in place (storage/node_fetch.py) against a scripted server:
framing, keep-alive, verification, and buffer reuse. Stale and cut connections are tested
for both node pools in test_node_http.py."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from minidropbox.storage.base import ChunkNotFound, CorruptChunk, StoreUnavailable
from minidropbox.storage.node_client import AsyncNodeClient
from minidropbox.storage.node_fetch import FetchPool, ReceiveBuffers
from tests.unit.scripted_node import CHUNKED_ABCDE, HANG_UP, answer, serve

MiB = 1024 * 1024


def test_bodies_of_every_framing_and_one_kept_alive_connection() -> None:
    big = bytes(range(256)) * (3 * MiB // 256) + b"tail"

    async def respond(head: bytes, _: bytes, writer: asyncio.StreamWriter) -> str | None:
        assert b"Authorization: Bearer s" in head and b"Host: 127.0.0.1:" in head
        if head.startswith(b"GET /chunked"):
            writer.write(CHUNKED_ABCDE)
        elif head.startswith(b"GET /eof"):
            writer.write(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")
            return HANG_UP
        elif head.startswith(b"GET /none"):
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        else:
            # The head and the body's start in one write, the rest in pieces.
            data = answer(big)
            writer.write(data[:70_000])
            await writer.drain()
            writer.write(data[70_000:])
        return None

    async def scenario() -> None:
        server, url, connections = await serve(respond)
        pool = FetchPool(url)
        auth = {"Authorization": "Bearer s"}
        for _ in range(3):
            response = await pool.get("/big", auth)
            assert response.status_code == 200 and response.content == big
        assert (await pool.get("/chunked", auth)).content == b"abcde"
        assert (await pool.get("/none", auth)).content == b""
        assert len(connections) == 1
        assert (await pool.get("/eof", auth)).content == b"until the end"
        assert (await pool.get("/big", auth)).content == big  # a new connection after EOF
        assert len(connections) == 2
        await pool.aclose()
        server.close()

    asyncio.run(scenario())


def test_the_client_verifies_what_it_received_in_place() -> None:
    good = b"g" * 300_000
    name = hashlib.sha256(good).hexdigest()
    other = hashlib.sha256(b"other").hexdigest()
    missing = hashlib.sha256(b"missing").hexdigest()

    async def respond(head: bytes, _: bytes, writer: asyncio.StreamWriter) -> None:
        if name.encode() in head or other.encode() in head:
            writer.write(answer(good))  # for ``other``: not the bytes of that name
        else:
            writer.write(answer(b'{"error": {"code": "not_found", "message": "no"}}',
                                "404 Not Found"))

    async def scenario() -> None:
        server, url, _ = await serve(respond)
        async with AsyncNodeClient(url, "s") as client:
            assert await client.get(name) == good
            with pytest.raises(CorruptChunk):
                await client.get(other)
            with pytest.raises(ChunkNotFound):
                await client.get(missing)
        async with AsyncNodeClient(url, "s") as client:
            server.close()
            await server.wait_closed()
            with pytest.raises(StoreUnavailable):
                await client.get(name)

    asyncio.run(scenario())


def test_a_buffer_is_handed_out_again_only_once_nothing_refers_to_it() -> None:
    async def scenario() -> None:
        buffers = ReceiveBuffers(max_bytes=8 * MiB, idle_trim=0.05)
        first = buffers.take(MiB)
        assert buffers.take(MiB) is not first  # still in use
        view = memoryview(first)[10:20]  # a view, as the transport's write queue holds
        address = id(first)
        del first
        again = buffers.take(MiB + 5)
        assert id(again) != address
        del again
        del view
        reused = buffers.take(MiB + 5)  # the same class, another size
        assert id(reused) == address and len(reused) == MiB + 5
        assert len(buffers.take(100)) == 100  # small: never pooled
        del reused
        assert buffers.listed_bytes() > 0
        await asyncio.sleep(0.3)
        assert buffers.listed_bytes() == 0  # idle: let go
        buffers.close()

    asyncio.run(scenario())
