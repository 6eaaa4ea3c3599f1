"""JSON logs: one object per line, and every line logged while serving a request carries that
request's id (the X-Request-Id the client got), also from worker threads."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from minidropbox import logs
from minidropbox.api.middleware import SecurityHeaders

log = logging.getLogger("minidropbox.test")


async def in_loop(request: Request) -> PlainTextResponse:
    log.warning("served on the event loop")
    return PlainTextResponse("ok")


def in_thread(request: Request) -> PlainTextResponse:
    log.warning("served in a worker thread")  # Starlette runs sync endpoints in a thread
    return PlainTextResponse("ok")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure_logging(json_logs=True)
    stream = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    try:
        yield stream
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def test_every_line_has_the_request_id(captured: io.StringIO) -> None:
    app = SecurityHeaders(Starlette(routes=[Route("/loop", in_loop), Route("/thread", in_thread)]))

    async def run() -> list[str]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            ids = [(await client.get(path)).headers["x-request-id"]
                   for path in ("/loop", "/thread")]
        log.warning("outside any request")
        return ids

    ids = asyncio.run(run())
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    assert [(x["message"], x.get("request_id")) for x in lines] == [
        ("served on the event loop", ids[0]),
        ("served in a worker thread", ids[1]),
        ("outside any request", None)]
    assert ids[0] != ids[1]
    assert all(x["level"] == "warning" and x["logger"] == "minidropbox.test" for x in lines)
