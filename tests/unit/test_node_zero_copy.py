"""Chunk bodies sent by ``sendfile`` (node/zero_copy.py): the node app served by uvicorn with
the extension, on both event loops the node may run on, and the sending itself against
sockets that are slow, gone or stalled."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import uvloop

from minidropbox.api.timeouts import guarded_protocol
from minidropbox.node import zero_copy
from minidropbox.node.app import create_node_app
from minidropbox.node.settings import NodeSettings
from minidropbox.node.zero_copy import ZERO_COPY, ZeroCopySend, sendfile, with_zero_copy
from minidropbox.storage.node_fetch import FetchPool
from minidropbox.storage.node_http import NodePool

SECRET = "zero-copy-cluster-secret-0123456789"
AUTH = {"Authorization": f"Bearer {SECRET}"}
MiB = 1 << 20

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


def run_on(loop: str, main: Coroutine[Any, Any, None]) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(main)


@pytest.mark.parametrize("loop", list(LOOPS))
def test_the_node_sends_chunks_by_sendfile_whole_ranged_and_kept_alive(
        tmp_path: Path, loop: str) -> None:
    app = create_node_app(NodeSettings(dir=tmp_path / "node", cluster_secret=SECRET,
                                       scrub_rate=0))
    data = os.urandom(3 * MiB + 17)
    name = hashlib.sha256(data).hexdigest()
    offered: list[bool] = []

    async def watching(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            offered.append(ZERO_COPY in scope.get("extensions", {}))
        await app(scope, receive, send)

    async def scenario() -> None:
        sock = socket.create_server(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(watching, log_level="warning", lifespan="off",
                                http=with_zero_copy(guarded_protocol(10.0)))
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        streams, fetch = NodePool(url), FetchPool(url)
        try:
            put = await streams.request("PUT", f"/chunks/{name}", AUTH, data)
            assert put.status_code == 201
            put_answer = len(put.content)
            for _ in range(3):  # one kept-alive connection, several answers on it
                got = await fetch.get(f"/chunks/{name}", AUTH)
                assert got.status_code == 200 and bytes(got.content) == data
            ranged = await streams.request("GET", f"/chunks/{name}",
                                           {**AUTH, "Range": "bytes=1000-2000999"})
            assert ranged.status_code == 206 and ranged.content == data[1000:2001000]
            head = await streams.request("HEAD", f"/chunks/{name}", AUTH)
            assert head.headers["content-length"] == str(len(data)) and head.content == b""
            assert (await fetch.get("/healthz", AUTH)).json()["chunk_count"] == 1
            metrics = (await fetch.get("/metrics", AUTH)).content.decode()
        finally:
            await streams.aclose()
            await fetch.aclose()
            server.should_exit = True
            await serving
        assert offered and all(offered)
        # The bytes sent by sendfile are counted as any others (the PUT's answer too).
        line = 'minidropbox_node_http_sent_bytes_total{route="/chunks/{name}"} '
        counted = next(x for x in metrics.splitlines() if x.startswith(line))
        assert float(counted.removeprefix(line)) == 3 * len(data) + 2_000_000 + put_answer

    run_on(loop, scenario())


def test_sendfile_waits_for_room_and_sends_from_the_offset(tmp_path: Path) -> None:
    data = os.urandom(4 * MiB)
    path = tmp_path / "chunk"
    path.write_bytes(data)
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    ours.setblocking(False)
    received = bytearray()

    def slow_reader() -> None:
        while len(received) < len(data) - 100:
            time.sleep(0.001)
            received.extend(theirs.recv(256 * 1024))

    reader = threading.Thread(target=slow_reader)
    reader.start()
    with open(path, "rb") as fh:
        sendfile(ours.fileno(), fh.fileno(), 100, len(data) - 100)
    reader.join(10)
    assert bytes(received) == data[100:]
    ours.close()
    theirs.close()


def test_a_peer_that_went_away_or_stalls_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "chunk"
    path.write_bytes(os.urandom(8 * MiB))
    with open(path, "rb") as fh:
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        theirs.close()
        with pytest.raises(OSError):
            sendfile(ours.fileno(), fh.fileno(), 0, 8 * MiB)
        ours.close()
        ours, theirs = socket.socketpair()  # open, but never read
        ours.setblocking(False)
        with pytest.raises(TimeoutError):
            sendfile(ours.fileno(), fh.fileno(), 0, 8 * MiB, stall=0.2)
        ours.close()
        theirs.close()


class _Transport:
    def __init__(self, queued: int, sock: socket.socket | None) -> None:
        self.queued, self.sock, self.closed = queued, sock, False

    def get_write_buffer_size(self) -> int:
        return self.queued

    def get_extra_info(self, name: str) -> socket.socket | None:
        return self.sock if name == "socket" else None

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


class _Cycle:
    """What ``ZeroCopySend`` reads of uvicorn's request cycle."""

    def __init__(self, queued: int, sock: socket.socket | None = None,
                 length: int = 10) -> None:
        self.scope = {"method": "GET"}
        self.response_started, self.response_complete, self.disconnected = True, False, False
        self.expected_content_length = length
        self.messages: list[dict[str, Any]] = []
        self.transport = _Transport(queued, sock)

    async def send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)


def test_bytes_still_queued_send_the_body_the_ordinary_way(tmp_path: Path) -> None:
    """sendfile past bytes the transport still holds would reorder the answer."""
    path = tmp_path / "chunk"
    path.write_bytes(b"0123456789abcdef")
    cycle = _Cycle(queued=5)
    with open(path, "rb") as fh:
        asyncio.run(ZeroCopySend(cycle)({"type": ZERO_COPY, "file": fh, "offset": 3,
                                         "count": 10}))
    assert [m.get("body") for m in cycle.messages] == [b"3456789abc", b""]
    assert [m["more_body"] for m in cycle.messages] == [True, False]
    with open(path, "rb") as fh, pytest.raises(RuntimeError, match="longer"):
        asyncio.run(ZeroCopySend(_Cycle(queued=0))({"type": ZERO_COPY, "file": fh,
                                                     "offset": 0, "count": 11}))


def test_a_protocol_without_the_parts_needed_is_left_as_it_is() -> None:
    class Other(asyncio.Protocol):
        pass

    assert with_zero_copy(Other) is Other
    assert with_zero_copy(guarded_protocol(10.0)).__name__.startswith("ZeroCopy")


def test_a_peer_gone_mid_answer_drops_the_rest_quietly(tmp_path: Path) -> None:
    """As uvicorn does when its own write finds the connection gone: no error to log (the
    API closes a hedged read's connection once another holder answered)."""
    path = tmp_path / "chunk"
    path.write_bytes(os.urandom(4 * MiB))
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.close()
    cycle = _Cycle(queued=0, sock=ours, length=4 * MiB)
    with open(path, "rb") as fh:
        asyncio.run(ZeroCopySend(cycle)({"type": ZERO_COPY, "file": fh, "offset": 0,
                                         "count": 4 * MiB}))
    assert cycle.disconnected and cycle.transport.closed and cycle.messages == []
    ours.close()


def test_the_thread_writes_to_its_own_descriptor_whatever_becomes_of_the_transports(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The transport may close its socket while the worker thread sends (the peer went away),
    and the process may hand that descriptor's number to the next file it opens — a chunk
    being written, another connection. The thread must be sending through a descriptor of its
    own by then, or the chunk's bytes land in that file."""
    data = os.urandom(256 * 1024)
    path = tmp_path / "chunk"
    path.write_bytes(data)
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    victim = tmp_path / "another-chunk-being-written"
    reused: list[int] = []
    real = zero_copy.sendfile

    def closed_and_reused_first(sock_fd: int, fd: int, offset: int, count: int) -> None:
        number = ours.fileno()
        ours.close()  # what the transport does when the peer goes away
        reused.append(os.open(victim, os.O_WRONLY | os.O_CREAT, 0o600))
        assert reused[0] == number  # the lowest free number: the socket's
        real(sock_fd, fd, offset, count)

    monkeypatch.setattr(zero_copy, "sendfile", closed_and_reused_first)
    received = bytearray()

    def read_all() -> None:
        while len(received) < len(data):
            piece = theirs.recv(1 << 20)
            if not piece:
                return
            received.extend(piece)

    reader = threading.Thread(target=read_all)
    reader.start()
    cycle = _Cycle(queued=0, sock=ours, length=len(data))
    with open(path, "rb") as fh:
        asyncio.run(ZeroCopySend(cycle)({"type": ZERO_COPY, "file": fh, "offset": 0,
                                         "count": len(data)}))
    reader.join(10)
    os.close(reused[0])
    assert victim.read_bytes() == b""
    assert bytes(received) == data
    theirs.close()


def test_a_peer_gone_before_the_answer_started_is_no_error(tmp_path: Path) -> None:
    """uvicorn drops the head of an answer to a peer already gone; the body then goes the
    same way, quietly (it was a RuntimeError, logged as an unhandled error on every hedged
    read the API gave up early)."""
    path = tmp_path / "chunk"
    path.write_bytes(b"0123456789")
    cycle = _Cycle(queued=0)
    cycle.response_started, cycle.disconnected = False, True
    with open(path, "rb") as fh:
        asyncio.run(ZeroCopySend(cycle)({"type": ZERO_COPY, "file": fh, "offset": 0,
                                         "count": 10}))
    assert cycle.messages == []
    cycle.disconnected = False
    with open(path, "rb") as fh, pytest.raises(RuntimeError, match="Unexpected"):
        asyncio.run(ZeroCopySend(cycle)({"type": ZERO_COPY, "file": fh, "offset": 0,
                                         "count": 10}))
