"""Whole-chunk GETs from a storage node, each answer received straight into one buffer.

``NodePool`` reads answers through an asyncio ``StreamReader``: the loop reads the socket
into bytes of its own, the reader appends them to its buffer, and ``readexactly`` copies them
out again. Every byte of a download takes that way, so a 1 MiB chunk cost three copies and,
with large blocks mapped afresh (``malloc.py``), page faults on most of its pages twice: a
profile of the API serving a 256 MiB download put a fifth of its CPU in page faults and
copies. Here a GET's body goes from the socket (``recv_into``) into a ``bytearray`` the size
the node announced, and that buffer is what the caller verifies and sends on: the kernel's
copy and nothing else. The buffers are used again (``ReceiveBuffers``) once nothing refers to
them any more, so a download's pages are faulted in once, not once per chunk.

The rules are ``NodePool``'s: one keep-alive pool per node, idle sockets reused most recent
first and dropped when the node closed them, at most ``MAX_CONNECTIONS`` open at once, a
socket back in the pool only once its answer was read to the end, a request that fails on a
reused socket before any byte of the answer is sent once more on a new one (GET is
idempotent), failures raised as ``NodeTransportError``. Timeouts are the caller's; a socket
interrupted by one, a cancellation or an error is closed. Plain HTTP only: a node behind
``https://`` is read through ``NodePool`` (TLS needs the transport's stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections import deque
from urllib.parse import urlsplit

from minidropbox.storage.node_http import (
    _NO_BODY_STATUS,
    MAX_HEAD,
    NodeConnectError,
    NodeProtocolError,
    Response,
    _NoAnswer,
    _parse_head,
    exchange_on_a_connection,
)

MAX_IDLE = 16
MAX_CONNECTIONS = 32
RECV = 256 * 1024  # read size while the length of what comes is not known
# Read size for an answer's head: what comes with it of the body is copied twice on its way
# to the buffer (with 256 KiB reads, a tenth of every chunk was, in fresh memory).
HEAD_RECV = 4096
POOLED_FROM = 64 * 1024  # smaller answers get a buffer of their own
POOL_BYTES = 32 * 1024 * 1024  # capacity of the buffers kept for reuse, at most
IDLE_TRIM = 2.0  # seconds without a take after which the free buffers are let go


class ReceiveBuffers:
    """Bytearrays to receive answers into, handed out again once nothing refers to them.

    A fresh MiB-sized block is a fresh mapping (``malloc.py``), zeroed and faulted in page by
    page: before this, a third of the API's event loop time in a download went there. A
    buffer handed out stays listed here, and ``take`` gives it out again only when the list
    holds the last reference to it; a memoryview of it (the transport's write queue, a hash
    in a worker thread, the download's read-ahead) holds one as long as it lives, so a buffer
    is never written while its bytes are still on their way. Buffers come in power-of-two
    classes: CPython changes the length of a bytearray within half of its allocation without
    reallocating, so each buffer of a class serves every size of that class. Buffers not in
    use are let go once no take came for ``idle_trim`` seconds, so an idle API holds none.
    """

    def __init__(self, max_bytes: int = POOL_BYTES, idle_trim: float = IDLE_TRIM) -> None:
        self.max_bytes = max_bytes
        self.idle_trim = idle_trim
        self._classes: dict[int, list[bytearray]] = {}
        self._listed = 0
        self._zeros = b""
        self._taken_at = 0.0
        self._trim: asyncio.TimerHandle | None = None

    def listed_bytes(self) -> int:
        return self._listed

    def take(self, size: int) -> bytearray:
        if size < POOLED_FROM:
            return bytearray(size)
        loop = asyncio.get_running_loop()
        self._taken_at = loop.time()
        if self._trim is None:
            self._trim = loop.call_later(self.idle_trim, self._trim_idle)
        capacity = 1 << size.bit_length()  # > size, and at most twice it
        listed = self._classes.setdefault(capacity, [])
        for buf in listed:
            if sys.getrefcount(buf) == 3:  # the list, ``buf`` and getrefcount's argument
                if len(buf) > size:
                    del buf[size:]
                elif len(buf) < size:
                    if len(self._zeros) < capacity // 2:
                        self._zeros = bytes(capacity // 2)  # calloc: never written, cheap
                    buf += memoryview(self._zeros)[:size - len(buf)]
                return buf
        buf = bytearray(capacity - 1)  # allocates ``capacity`` bytes
        del buf[size:]
        if self._listed + capacity <= self.max_bytes:
            listed.append(buf)
            self._listed += capacity
        return buf

    def _trim_idle(self) -> None:
        loop = asyncio.get_running_loop()
        idle = loop.time() - self._taken_at
        if idle < self.idle_trim:
            self._trim = loop.call_later(self.idle_trim - idle, self._trim_idle)
            return
        self._trim = None
        for capacity, listed in self._classes.items():
            kept = [buf for buf in listed if sys.getrefcount(buf) > 3]  # list, buf, argument
            self._listed -= capacity * (len(listed) - len(kept))
            listed[:] = kept
        if self._listed:  # some were still in use: look again later
            self._trim = loop.call_later(self.idle_trim, self._trim_idle)

    def close(self) -> None:
        if self._trim is not None:
            self._trim.cancel()
            self._trim = None


class _Socket:
    """A connected socket and the bytes read past the end of the last thing parsed."""

    __slots__ = ("extra", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.extra = bytearray()

    def alive(self) -> bool:
        """False once the node closed it, or sent something unasked while it was idle."""
        try:
            self.sock.recv(1, socket.MSG_PEEK)  # b"": closed; anything else: unasked
        except BlockingIOError:
            return True
        except OSError:
            return False
        return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    async def recv(self, size: int = RECV) -> bytes:
        return await asyncio.get_running_loop().sock_recv(self.sock, size)

    async def read_until(self, separator: bytes, limit: int) -> bytes:
        """Up to and including ``separator``; ``_NoAnswer`` if the node closes first without
        having sent anything, ``NodeProtocolError`` if it closes part-way or goes past
        ``limit``."""
        start = 0
        while (end := self.extra.find(separator, start)) < 0:
            if len(self.extra) > limit:
                raise NodeProtocolError("answer head too long")
            start = max(0, len(self.extra) - len(separator) + 1)
            data = await self.recv(HEAD_RECV)
            if not data:
                if self.extra:
                    raise NodeProtocolError("connection closed in the answer's head")
                raise _NoAnswer("connection closed before the answer")
            self.extra += data
        end += len(separator)
        line = bytes(self.extra[:end])
        del self.extra[:end]
        return line

    async def read_into(self, view: memoryview) -> None:
        """Fill ``view`` exactly: what was read ahead first, then straight from the socket."""
        have = min(len(self.extra), len(view))
        if have:
            view[:have] = self.extra[:have]
            del self.extra[:have]
        loop = asyncio.get_running_loop()
        while have < len(view):
            got = await loop.sock_recv_into(self.sock, view[have:])
            if not got:
                raise NodeProtocolError("connection closed in the middle of the answer")
            have += got

    async def read_exactly(self, size: int, buffers: ReceiveBuffers | None = None,
                           ) -> bytearray:
        data = buffers.take(size) if buffers is not None else bytearray(size)
        await self.read_into(memoryview(data))
        return data

    async def read_to_end(self) -> bytearray:
        data, self.extra = self.extra, bytearray()
        while piece := await self.recv():
            data += piece
        return data


class FetchPool:
    """Keep-alive sockets to one plain-HTTP node, for GETs read whole into one buffer."""

    def __init__(self, url: str, buffers: ReceiveBuffers | None = None,
                 max_idle: int = MAX_IDLE, max_connections: int = MAX_CONNECTIONS) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"Not a plain-HTTP storage node URL: {url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._host_header = host if self.port == 80 else f"{host}:{self.port}"
        self._base_path = parts.path.rstrip("/")
        self._idle: deque[_Socket] = deque()
        self._max_idle = max_idle
        self._slots = asyncio.Semaphore(max_connections)
        self._closed = False
        self.buffers = buffers or ReceiveBuffers()

    async def _connect(self) -> _Socket:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise NodeConnectError(type(exc).__name__) from None
        error: OSError | None = None
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                await loop.sock_connect(sock, address)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            except BaseException:
                sock.close()
                raise
            return _Socket(sock)
        raise NodeConnectError(type(error).__name__ if error else "no address")

    def _idle_socket(self) -> _Socket | None:
        while self._idle:
            conn = self._idle.pop()
            if not conn.extra and conn.alive():
                return conn
            conn.close()
        return None

    def _release(self, conn: _Socket) -> None:
        if not self._closed and len(self._idle) < self._max_idle:
            self._idle.append(conn)
        else:
            conn.close()

    async def aclose(self) -> None:
        self._closed = True
        self.buffers.close()
        while self._idle:
            self._idle.pop().close()

    async def get(self, target: str, headers: dict[str, str]) -> Response:
        """GET ``target`` and read the whole answer; its ``content`` is a ``bytearray``
        received in place (the caller bounds the time)."""
        lines = [f"GET {self._base_path}{target} HTTP/1.1", f"Host: {self._host_header}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        async with self._slots:
            conn, response = await exchange_on_a_connection(
                self._idle_socket(), self._connect, lambda conn: self._exchange(conn, head))
            try:
                reusable = await self._read_body(conn, response)
            except BaseException:
                conn.close()
                raise
            if reusable:
                self._release(conn)
            else:
                conn.close()
        return response

    @staticmethod
    async def _exchange(conn: _Socket, head: bytes) -> Response:
        try:
            await asyncio.get_running_loop().sock_sendall(conn.sock, head)
        except OSError as exc:
            raise _NoAnswer(type(exc).__name__) from None
        try:
            raw = await conn.read_until(b"\r\n\r\n", MAX_HEAD)
        except (_NoAnswer, NodeProtocolError):
            raise
        except OSError as exc:
            raise _NoAnswer(type(exc).__name__) from None
        return _parse_head(raw)

    async def _read_body(self, conn: _Socket, response: Response) -> bool:
        """Read the body into ``response.content``; whether the socket may be reused."""
        headers = response.headers
        reusable = "close" not in headers.get("connection", "").lower()
        try:
            if response.status_code in _NO_BODY_STATUS or response.status_code < 200:
                response.content = bytearray()
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                response.content = await _read_chunked(conn)
            elif "content-length" in headers:
                value = headers["content-length"]
                if not value.isdigit():
                    raise NodeProtocolError("bad Content-Length")
                response.content = await conn.read_exactly(int(value), self.buffers)
            else:  # the body ends when the node closes the connection
                response.content = await conn.read_to_end()
                reusable = False
        except OSError as exc:
            raise NodeProtocolError(type(exc).__name__) from None
        return reusable and not conn.extra


async def _read_chunked(conn: _Socket) -> bytearray:
    data = bytearray()
    while True:
        line = await conn.read_until(b"\r\n", MAX_HEAD)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise NodeProtocolError("bad chunk size") from None
        if size == 0:
            while (await conn.read_until(b"\r\n", MAX_HEAD)) != b"\r\n":
                pass  # trailers
            return data
        piece = await conn.read_exactly(size + 2)
        data += piece[:-2]
