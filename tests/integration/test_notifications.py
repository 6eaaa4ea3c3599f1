"""The notification WebSocket against a real API process: authentication (subprotocol or
first message, never the URL), pushes after commits, pings, isolation between accounts, and
sockets closed when their session ends. Timers are shrunk so each shows within a second."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import statistics
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from tests.conftest import PASSWORD, bearer, signup_and_login
from tests.harness import ServerProcess, start_api

PING = 1.0
AUTH_TIMEOUT = 0.5
SESSION_CHECK = 0.5
MAX_SOCKETS = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    api = start_api(tmp_path_factory.mktemp("notify"), env={
        "ws_ping_interval": PING, "ws_auth_timeout": AUTH_TIMEOUT,
        "ws_session_check": SESSION_CHECK, "ws_max_per_user": MAX_SOCKETS})
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def ws_url(server: ServerProcess, query: str = "") -> str:
    return server.url.replace("http://", "ws://") + "/api/v1/notifications" + query


def new_user(http: httpx.Client) -> tuple[str, dict[str, str]]:
    name = "u" + uuid.uuid4().hex[:12]
    tokens = signup_and_login(http, name)
    return name, tokens


def subscribe(server: ServerProcess, token: str) -> Any:
    return connect(ws_url(server), subprotocols=[Subprotocol("bearer"), Subprotocol(token)],
                   open_timeout=5, close_timeout=2)


def latest(http: httpx.Client, auth: dict[str, str]) -> str:
    response = http.get("/api/v1/changes", headers=auth)
    assert response.status_code == 200, response.text
    return str(response.json()["cursor"])


def receive(ws: ClientConnection, timeout: float = 2.0) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
    return message


def next_push(ws: ClientConnection, timeout: float = 2.0) -> dict[str, Any]:
    """The next message that is not a ping."""
    deadline = time.monotonic() + timeout
    while True:
        message = receive(ws, max(0.01, deadline - time.monotonic()))
        if not message.get("ping"):
            return message


def close_code(ws: ClientConnection, timeout: float = 3.0) -> tuple[int | None, list[Any]]:
    """Read until the server closes; returns (close code, messages seen before it)."""
    seen = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            seen.append(json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic()))))
    except ConnectionClosed as exc:
        return (exc.rcvd.code if exc.rcvd else None), seen
    except TimeoutError:
        pass
    return None, seen


def mkdir(http: httpx.Client, auth: dict[str, str], path: str) -> None:
    response = http.post("/api/v1/files/folder", headers=auth, json={"path": path})
    assert response.status_code == 201, response.text


def commit_empty(http: httpx.Client, auth: dict[str, str], path: str) -> None:
    response = http.post("/api/v1/files/commit", headers=auth, json={
        "path": path, "size": 0, "chunks": [], "parent_version": None})
    assert response.status_code == 201, response.text


def test_subprotocol_auth_then_a_push_within_half_a_second_of_each_commit(
        server: ServerProcess, http: httpx.Client) -> None:
    _, tokens = new_user(http)
    auth = bearer(tokens)
    lags = []
    with subscribe(server, tokens["access_token"]) as ws:
        assert ws.subprotocol == "bearer"
        assert receive(ws) == {"cursor": latest(http, auth)}
        for i in range(5):
            sent = time.monotonic()  # so the lag includes the commit itself: an upper bound
            commit_empty(http, auth, f"/f{i}.txt")
            message = next_push(ws, 2.0)
            lags.append(time.monotonic() - sent)
            assert message == {"cursor": latest(http, auth)}
    print(f"commit sent to push received: median {statistics.median(lags) * 1000:.1f} ms, "
          f"max {max(lags) * 1000:.1f} ms")
    assert max(lags) < 0.5


def test_first_message_auth(server: ServerProcess, http: httpx.Client) -> None:
    _, tokens = new_user(http)
    with connect(ws_url(server), open_timeout=5) as ws:
        assert ws.subprotocol is None
        ws.send(json.dumps({"token": tokens["access_token"]}))
        assert receive(ws) == {"cursor": latest(http, bearer(tokens))}
        mkdir(http, bearer(tokens), "/pushed")
        assert next_push(ws) == {"cursor": latest(http, bearer(tokens))}


def test_a_token_in_the_url_is_refused(server: ServerProcess, http: httpx.Client) -> None:
    _, tokens = new_user(http)
    for query in (f"?access_token={tokens['access_token']}", f"?token={tokens['access_token']}"):
        with connect(ws_url(server, query), open_timeout=5) as ws:
            code, seen = close_code(ws)
        assert code == 4400 and seen == []


@pytest.mark.parametrize("how", ["subprotocol", "first-message", "not-json", "no-token-after",
                                 "silence"])
def test_missing_or_bad_tokens_are_closed(server: ServerProcess, http: httpx.Client,
                                          how: str) -> None:
    _, tokens = new_user(http)
    forged = tokens["access_token"][:-4] + "AAAA"
    expected = 4400 if how == "not-json" else 4401
    protocols = {"subprotocol": ["bearer", forged], "no-token-after": ["bearer"]}.get(how)
    started = time.monotonic()
    with connect(ws_url(server), subprotocols=[Subprotocol(p) for p in protocols or []] or None,
                 open_timeout=5) as ws:
        if how == "first-message":
            ws.send(json.dumps({"token": forged}))
        elif how == "not-json":
            ws.send("Bearer " + tokens["access_token"])
        code, seen = close_code(ws, timeout=AUTH_TIMEOUT + 3)
    assert (code, seen) == (expected, [])
    if how == "silence":
        assert time.monotonic() - started >= AUTH_TIMEOUT


def test_pings_repeat_the_current_cursor(server: ServerProcess, http: httpx.Client) -> None:
    _, tokens = new_user(http)
    with subscribe(server, tokens["access_token"]) as ws:
        first = receive(ws)
        ping = receive(ws, PING + 1.5)
    assert ping == {"cursor": first["cursor"], "ping": True}


def test_one_accounts_changes_never_reach_another_accounts_socket(
        server: ServerProcess, http: httpx.Client) -> None:
    _, alice = new_user(http)
    _, bob = new_user(http)
    with subscribe(server, alice["access_token"]) as a, subscribe(server, bob["access_token"]) as b:
        a_start, b_start = receive(a)["cursor"], receive(b)["cursor"]
        for i in range(5):
            mkdir(http, bearer(alice), f"/alice-{i}")
        target = latest(http, bearer(alice))
        heard_by_alice = [next_push(a)["cursor"]]
        while heard_by_alice[-1] != target:  # pushes may coalesce; the last is the head
            heard_by_alice.append(next_push(a)["cursor"])
        assert a_start not in heard_by_alice
        # Bob's socket hears only his own (unchanged) cursor, pings included.
        deadline = time.monotonic() + PING + 0.5
        heard_by_bob = []
        while time.monotonic() < deadline:
            try:
                heard_by_bob.append(receive(b, max(0.01, deadline - time.monotonic())))
            except TimeoutError:
                break
        assert heard_by_bob and all(m["cursor"] == b_start for m in heard_by_bob)
        # Then Bob's own change reaches him, and not Alice.
        mkdir(http, bearer(bob), "/bob")
        assert next_push(b) == {"cursor": latest(http, bearer(bob))}
        alice_after = [m for m in _drain(a, 0.5) if not m.get("ping")]
        assert alice_after == []
    # Cursors are bound to their account: Alice's do not work for Bob, nor his for her.
    assert http.get("/api/v1/changes", headers=bearer(bob),
                    params={"cursor": a_start}).status_code == 410
    assert http.get("/api/v1/changes", headers=bearer(alice),
                    params={"cursor": b_start}).status_code == 410


def _drain(ws: ClientConnection, seconds: float) -> list[dict[str, Any]]:
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            seen.append(receive(ws, max(0.01, deadline - time.monotonic())))
        except TimeoutError:
            break
    return seen


def test_a_socket_is_closed_when_its_session_ends(server: ServerProcess,
                                                  http: httpx.Client) -> None:
    name, first = new_user(http)
    response = http.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
    second = response.json()
    with subscribe(server, first["access_token"]) as ws:
        start = receive(ws)["cursor"]
        response = http.post("/api/v1/auth/logout", headers=bearer(first))
        assert response.status_code == 204
        # A change made from another device must not be pushed to the ended session.
        mkdir(http, bearer(second), "/after-logout")
        ended = time.monotonic()
        code, seen = close_code(ws, timeout=SESSION_CHECK + 3)
    assert code == 4401
    assert all(m["cursor"] == start for m in seen)
    assert time.monotonic() - ended < SESSION_CHECK + 2


def test_a_peer_that_stops_answering_pings_is_disconnected(server: ServerProcess,
                                                           http: httpx.Client) -> None:
    """A raw client that completes the handshake, then never reads or answers a ping (a
    laptop that went to sleep): the server drops it after one ping interval and timeout."""
    _, tokens = new_user(http)
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall((f"GET /api/v1/notifications HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                     f"Sec-WebSocket-Version: 13\r\n"
                     f"Sec-WebSocket-Protocol: bearer, {tokens['access_token']}\r\n\r\n").encode())
        started = time.monotonic()
        received = b""
        while data := raw.recv(65536):
            received += data
        dropped_after = time.monotonic() - started
    assert received.startswith(b"HTTP/1.1 101 ")
    assert b'"cursor"' in received
    assert PING <= dropped_after < 2 * PING + 2


def test_an_account_cannot_hold_more_than_its_share_of_sockets(server: ServerProcess,
                                                               http: httpx.Client) -> None:
    _, tokens = new_user(http)
    _, other = new_user(http)
    token = tokens["access_token"]
    with contextlib.ExitStack() as stack:
        open_sockets = [stack.enter_context(subscribe(server, token))
                        for _ in range(MAX_SOCKETS)]
        assert all("cursor" in receive(ws) for ws in open_sockets)
        with subscribe(server, token) as extra:
            assert close_code(extra) == (4429, [])
        with subscribe(server, other["access_token"]) as someone_else:  # per account
            assert "cursor" in receive(someone_else)
        open_sockets[0].close()
        deadline = time.monotonic() + 3
        while True:  # the server notices the close a moment later
            with subscribe(server, token) as again:
                code, seen = close_code(again, timeout=0.3)
            if (code is None and seen) or time.monotonic() > deadline:
                break
        assert code is None and "cursor" in seen[0]
