"""``minidropbox.client.changes.notifications`` against a real API: through a proxy that
refuses WebSocket upgrades (as some corporate proxies do) it falls back to long-polling and
still hears of a change within a second; ``stop`` ends it promptly."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from minidropbox.client.api import ApiClient
from minidropbox.client.changes import notifications
from minidropbox.client.remote import Remote
from tests.conftest import PASSWORD, bearer, signup_and_login
from tests.harness import ServerProcess


class NoWebSocketProxy:
    """Forwards HTTP to ``upstream``; answers 403 to any WebSocket upgrade."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.refused = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = client.recv(65536)
            if not data:
                client.close()
                return
            head += data
        if b"upgrade: websocket" in head.lower():
            self.refused += 1
            client.sendall(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n"
                           b"connection: close\r\n\r\n")
            client.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        upstream.sendall(head)
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        _pipe(client, upstream)

    def close(self) -> None:
        self.listener.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    for s in (source, sink):
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxy(api_server: ServerProcess) -> Iterator[NoWebSocketProxy]:
    p = NoWebSocketProxy(api_server.port)
    try:
        yield p
    finally:
        p.close()


def test_falls_back_to_long_polling_when_websockets_are_refused(
        api_server: ServerProcess, http: httpx.Client, proxy: NoWebSocketProxy) -> None:
    name = "u" + uuid.uuid4().hex[:12]
    auth = bearer(signup_and_login(http, name))
    client = ApiClient(proxy.url, persist=False)
    client.login(name, PASSWORD)
    api = Remote(client)
    start = api.latest_cursor()
    stop = threading.Event()
    heard: list[tuple[float, str]] = []

    def follow() -> None:
        for cursor in notifications(api, stop=stop, poll_timeout=1.0):
            heard.append((time.monotonic(), cursor))

    follower = threading.Thread(target=follow)
    follower.start()
    try:
        deadline = time.monotonic() + 10
        while not heard and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [c for _, c in heard] == [start]  # the current cursor first, as on a socket
        assert proxy.refused >= 1
        time.sleep(0.3)  # a poll is parked on the server by now
        response = http.post("/api/v1/files/folder", headers=auth, json={"path": "/polled"})
        assert response.status_code == 201, response.text
        changed = time.monotonic()
        while len(heard) < 2 and time.monotonic() < changed + 5:
            time.sleep(0.01)
        assert len(heard) == 2 and heard[1][0] - changed < 1.0
        assert [e.path for e in api.changes_since(start)] == ["/polled"]
    finally:
        stop.set()
        stopped = time.monotonic()
        follower.join(5)
        api.close()
    assert not follower.is_alive() and time.monotonic() - stopped < 2.5
