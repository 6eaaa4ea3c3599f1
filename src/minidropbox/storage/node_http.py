"""A small HTTP/1.1 client for the cluster-internal storage node protocol, on asyncio streams.

The API talks to its storage nodes on every chunk it writes or reads. A general-purpose client
(httpx/httpcore over anyio) spent a third of the API's CPU on those exchanges: pool
bookkeeping, cancel scopes and 64 KiB socket writes. The node protocol needs far less:

- one keep-alive pool per node (``NodePool``): idle connections are reused most recent first;
  a connection goes back to the pool only after its response was read to the end, and one the
  node closed while idle is dropped before use; at most ``MAX_CONNECTIONS`` are open at once
  (more requests wait for one);
- requests carry a ``Content-Length`` body (or none) and are written with at most two writes,
  the head and the body as it is (no copy, no chunked encoding);
- responses are parsed for the status, ``Content-Length`` (chunked bodies and bodies ending at
  EOF are understood too) and the few headers the caller reads;
- failures are ``NodeTransportError`` and nothing else, so the caller maps them like any
  other transport failure. Timeouts are the caller's (``asyncio.timeout``); a connection
  interrupted mid-exchange, by a timeout, a cancellation or an error, is closed.

Every operation of the node API is idempotent (a chunk's name is its hash), so a request that
fails on a reused connection before any byte of the answer arrived is sent once more on a new
connection: the node may have closed the idle connection just as we picked it.

The ``Authorization`` header is sent as given and never logged or put into an exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

MAX_IDLE = 32
# Connections open to one node at once, at most: past it a request waits for one to be free
# (the node's file descriptors are not ours to exhaust).
MAX_CONNECTIONS = 64
READ_LIMIT = 4 * 1024 * 1024  # stream buffer: the reader pauses the socket above twice this
MAX_HEAD = 64 * 1024
_NO_BODY_STATUS = frozenset({204, 304})


class NodeTransportError(Exception):
    """The exchange with the node failed (refused, reset, closed early, malformed answer)."""

    kind = "TransportError"  # named as httpx names it, for log lines that read the same


class NodeConnectError(NodeTransportError):
    """No connection could be opened."""

    kind = "ConnectError"


class NodeProtocolError(NodeTransportError):
    """The node closed the connection early or answered something that is not HTTP/1.1."""

    kind = "RemoteProtocolError"


class _NoAnswer(NodeProtocolError):
    """The connection failed before any byte of the answer arrived."""


class Response:
    """A node's answer: status, headers (lower-case names) and, once read, the body."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: dict[str, str],
                 content: bytes | bytearray = b"") -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    def json(self) -> Any:
        return json.loads(self.content)


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def usable(self) -> bool:
        """False once the node closed it (EOF seen while idle) or it is shutting down."""
        return not (self.writer.is_closing() or self.reader.at_eof()
                    or self.reader.exception() is not None)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class NodePool:
    """Keep-alive connections to one node (``http://host:port`` or ``https://``)."""

    def __init__(self, url: str, max_idle: int = MAX_IDLE,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"Not a storage node URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.base_path = parts.path.rstrip("/")
        self._ssl: ssl.SSLContext | None = (ssl.create_default_context()
                                            if parts.scheme == "https" else None)
        default_port = 443 if parts.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._host_header = host if self.port == default_port else f"{host}:{self.port}"
        self._idle: deque[_Connection] = deque()
        self._max_idle = max_idle
        self._slots = asyncio.Semaphore(max_connections)
        self._closed = False

    # -- connections ------------------------------------------------------------------------
    async def _connect(self) -> _Connection:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self._ssl,
                                                           limit=READ_LIMIT)
        except OSError as exc:
            raise NodeConnectError(type(exc).__name__) from None
        return _Connection(reader, writer)

    def _idle_connection(self) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if conn.usable():
                return conn
            conn.close()
        return None

    def _release(self, conn: _Connection, reusable: bool) -> None:
        if reusable and not self._closed and len(self._idle) < self._max_idle and conn.usable():
            self._idle.append(conn)
        else:
            conn.close()

    async def aclose(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()

    # -- requests ---------------------------------------------------------------------------
    def _head(self, method: str, target: str, headers: dict[str, str], length: int | None) -> bytes:
        lines = [f"{method} {self.base_path}{target} HTTP/1.1", f"Host: {self._host_header}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if length is not None:
            lines.append(f"Content-Length: {length}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def request(self, method: str, target: str, headers: dict[str, str],
                      body: bytes | memoryview | None = None) -> Response:
        """Send one request and read the whole answer (the caller bounds the time)."""
        async with self.open(method, target, headers, body) as (response, chunks):
            response.content = b"".join([piece async for piece in chunks(READ_LIMIT)])
        return response

    @contextlib.asynccontextmanager
    async def open(self, method: str, target: str, headers: dict[str, str],
                   body: bytes | memoryview | None = None,
                   ) -> AsyncIterator[tuple[Response, Any]]:
        """``(response, chunks)`` once the head of the answer is in; ``chunks(size)`` yields
        the body in pieces of up to ``size`` bytes. The connection goes back to the pool only
        if the body was read to the end; leaving early closes it."""
        if body is not None and method in ("GET", "HEAD", "DELETE") and not len(body):
            body = None
        head = self._head(method, target, headers,
                          len(body) if body is not None else (0 if method in ("PUT", "POST")
                                                              else None))
        async with self._slots:
            conn, response = await exchange_on_a_connection(
                self._idle_connection(), self._connect,
                lambda conn: self._exchange(conn, head, body))
            try:
                reader = _BodyReader(conn.reader, response, method)
                yield response, reader.chunks
            except BaseException:
                conn.close()
                raise
            self._release(conn, reader.done and reader.reusable)

    async def _exchange(self, conn: _Connection, head: bytes,
                        body: bytes | memoryview | None) -> Response:
        try:
            writer = conn.writer
            if body is not None and len(body) <= 64 * 1024:
                writer.write(head + body)
            else:
                writer.write(head)
                if body is not None:
                    writer.write(body)
            await writer.drain()
        except (OSError, RuntimeError) as exc:
            raise _NoAnswer(type(exc).__name__) from None
        try:
            raw = await conn.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise NodeProtocolError("connection closed in the answer's head") from None
            raise _NoAnswer("connection closed before the answer") from None
        except asyncio.LimitOverrunError:
            raise NodeProtocolError("answer head too long") from None
        except OSError as exc:
            raise _NoAnswer(type(exc).__name__) from None
        return _parse_head(raw)


class _Closable(Protocol):
    def close(self) -> None: ...


Conn = TypeVar("Conn", bound=_Closable)


async def exchange_on_a_connection(idle: Conn | None, connect: Callable[[], Awaitable[Conn]],
                                   exchange: Callable[[Conn], Awaitable[Response]],
                                   ) -> tuple[Conn, Response]:
    """``exchange`` (send a request, read the head of its answer) on ``idle``, a connection
    taken from a pool, or else on a new one from ``connect``; the connection and the answer.

    A node may close an idle connection just as we pick it: an exchange that fails on a
    reused connection before any byte of the answer arrived (``_NoAnswer``) is tried once
    more on a new one (every node operation is idempotent). A connection an exchange failed
    on, or was interrupted on (a timeout, a cancellation), is closed."""
    conn = idle
    while True:
        if conn is None:
            conn = await connect()
        try:
            return conn, await exchange(conn)
        except _NoAnswer:
            conn.close()
            if idle is None:
                raise
            conn = idle = None  # the node closed the idle connection as we picked it
        except BaseException:
            conn.close()
            raise


def _parse_head(raw: bytes) -> Response:
    if len(raw) > MAX_HEAD:
        raise NodeProtocolError("answer head too long")
    lines = raw.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise NodeProtocolError("not an HTTP/1.1 answer")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise NodeProtocolError("malformed header line")
        headers[name.strip().lower()] = value.strip()
    return Response(int(code), headers)


class _BodyReader:
    """Reads one answer's body off the connection: Content-Length, chunked, or to EOF."""

    def __init__(self, reader: asyncio.StreamReader, response: Response, method: str) -> None:
        self.reader = reader
        headers = response.headers
        self.reusable = "close" not in headers.get("connection", "").lower()
        self.chunked = False
        self.left: int | None
        if method == "HEAD" or response.status_code in _NO_BODY_STATUS \
                or response.status_code < 200:
            self.left = 0
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            self.left, self.chunked = None, True
        elif "content-length" in headers:
            value = headers["content-length"]
            if not value.isdigit():
                raise NodeProtocolError("bad Content-Length")
            self.left = int(value)
        else:  # the body ends when the node closes the connection
            self.left, self.reusable = None, False
        self.done = self.left == 0

    async def chunks(self, size: int) -> AsyncIterator[bytes]:
        try:
            if self.chunked:
                async for piece in self._chunked():
                    yield piece
            elif self.left is None:
                while piece := await self.reader.read(size):
                    yield piece
            else:
                while self.left:
                    piece = await self.reader.readexactly(min(size, self.left))
                    self.left -= len(piece)
                    yield piece
        except asyncio.IncompleteReadError:
            raise NodeProtocolError("connection closed in the middle of the answer") from None
        except OSError as exc:
            raise NodeProtocolError(type(exc).__name__) from None
        self.done = True

    async def _chunked(self) -> AsyncIterator[bytes]:
        while True:
            line = await self.reader.readuntil(b"\r\n")
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise NodeProtocolError("bad chunk size") from None
            if size == 0:
                while (await self.reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return
            data = await self.reader.readexactly(size + 2)
            yield data[:-2]
