"""BodyPace judges the client's pace, not the server's: only time spent waiting for body
bytes counts against the window."""

from __future__ import annotations

import asyncio

from starlette.types import Message, Receive, Scope, Send

from minidropbox.api.timeouts import BodyPace

WINDOW = 0.2


async def _run(app_delay: float, messages: list[tuple[float, Message]]) -> list[Message]:
    """Run BodyPace around an app that waits ``app_delay`` s before reading the body, fed by a
    client that sends each message after its delay; returns what the server sent."""
    sent: list[Message] = []
    queue = list(messages)

    async def receive() -> Message:
        delay, message = queue.pop(0)
        await asyncio.sleep(delay)
        return message

    async def send(message: Message) -> None:
        sent.append(message)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(app_delay)  # a busy server: the handler is slow to ask for the body
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    await BodyPace(app, WINDOW)({"type": "http"}, receive, send)
    return sent


def test_a_server_slow_to_read_a_small_body_does_not_blame_the_client() -> None:
    sent = asyncio.run(_run(WINDOW * 3, [(0, {"type": "http.request", "body": b"{}",
                                              "more_body": False})]))
    assert sent[0]["status"] == 200


def test_a_trickling_body_is_still_refused() -> None:
    trickle = [(WINDOW / 4, {"type": "http.request", "body": b"x", "more_body": True})
               for _ in range(40)]
    sent = asyncio.run(_run(0, trickle))
    assert sent[0]["status"] == 408


def test_a_client_that_stops_sending_is_refused() -> None:
    sent = asyncio.run(_run(0, [(0, {"type": "http.request", "body": b"x", "more_body": True}),
                                (WINDOW * 20, {"type": "http.request", "body": b"",
                                               "more_body": False})]))
    assert sent[0]["status"] == 408
