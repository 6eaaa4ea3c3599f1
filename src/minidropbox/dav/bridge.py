"""The WebDAV library is synchronous (WSGI, in worker threads); the chunk store is async (on
the API's event loop). These adapters carry calls and bytes across, one block at a time, so
memory stays flat whatever the file size.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

from minidropbox.core.chunking import StreamCutter

T = TypeVar("T")
# A worker thread waits at most this long for one step on the loop (a chunk fetch or store,
# which are themselves bounded by the node timeout); then the request fails rather than hangs.
STEP_TIMEOUT = 300.0
QUEUE_PIECES = 4  # cut chunks (of up to 4 MiB) waiting between the thread and the loop


class LoopBridge:
    """Runs coroutines on the API's event loop from a WSGI worker thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(STEP_TIMEOUT)


async def _next_block(stream: AsyncIterator[bytes | memoryview]) -> memoryview | None:
    try:
        block = await anext(stream)
    except StopAsyncIteration:
        return None
    return memoryview(block)


class ChunkReader:
    """A read-only, seekable file object over a file's chunk list (what GET reads from).

    ``open_stream(start)`` gives the verified bytes from ``start`` to the end; a seek (for
    ``Range``) closes the current stream and opens another at the new offset.
    """

    def __init__(self, bridge: LoopBridge, size: int,
                 open_stream: Any) -> None:  # (start: int) -> AsyncIterator[bytes]
        self.bridge = bridge
        self.size = size
        self._open = open_stream
        self._pos = 0
        self._stream: AsyncIterator[bytes | memoryview] | None = None
        # The block fetched last, and how much of it was read: each read copies its bytes
        # out once (slicing the rest off would copy it again on every read).
        self._buffer = memoryview(b"")

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        target = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self.size}[whence]
        target += offset
        if target != self._pos:
            self._close_stream()
            self._pos = max(0, min(target, self.size))
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        if self._pos >= self.size:
            return b""
        want = self.size - self._pos if n < 0 else min(n, self.size - self._pos)
        if not self._buffer:
            if self._stream is None:
                self._stream = self._open(self._pos)
            block = self.bridge.run(_next_block(self._stream))
            if block is None:
                return b""
            self._buffer = block
        out = bytes(self._buffer[:want])
        self._buffer = self._buffer[len(out):]
        self._pos += len(out)
        return out

    def _close_stream(self) -> None:
        stream, self._stream, self._buffer = self._stream, None, memoryview(b"")
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            self.bridge.run(aclose())

    def close(self) -> None:
        self._close_stream()


class UploadStream:
    """The body of a PUT, cut into chunks in the worker thread as it arrives (each hashed
    once, with the body's SHA-1 and MD5 taken alongside), the chunks handed one by one to
    ``consume`` (a coroutine taking an async iterator of (hash, bytes), e.g.
    ``ChunkService.store_cut``) running on the event loop. The hand-over queue is short, so
    memory stays flat; only whole chunks cross to the loop, not every block of the body."""

    def __init__(self, bridge: LoopBridge,
                 consume: Callable[[AsyncIterator[tuple[str, bytes]]],
                                   Coroutine[Any, Any, T]]) -> None:
        self.bridge = bridge
        self.sha1 = hashlib.sha1(usedforsecurity=False)
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.cutter = StreamCutter()
        self._queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue(
            maxsize=QUEUE_PIECES)
        self._done = asyncio.run_coroutine_threadsafe(consume(self._pieces()), bridge.loop)
        self._finished = False

    @property
    def size(self) -> int:
        return self.cutter.size

    @property
    def hashes(self) -> list[str]:
        """The body's chunks, in order (complete once ``finish`` returned)."""
        return self.cutter.hashes

    async def _pieces(self) -> AsyncIterator[tuple[str, bytes]]:
        while (piece := await self._queue.get()) is not None:
            yield piece

    async def _put(self, item: tuple[str, bytes] | None) -> None:
        # The consumer may stop early (quota, storage): then nobody empties the queue.
        while not self._done.done():
            try:
                await asyncio.wait_for(self._queue.put(item), 1.0)
                return
            except TimeoutError:
                continue

    def _hand_over(self, pieces: list[tuple[str, bytes]]) -> None:
        for piece in pieces:
            if self._done.done():
                self._done.result()  # raises why the consumer stopped
                raise RuntimeError("the upload ended before its body did")
            self.bridge.run(self._put(piece))

    def write(self, data: bytes) -> int:
        if self._done.done():
            self._done.result()  # raises why the consumer stopped
            raise RuntimeError("the upload ended before its body did")
        self.sha1.update(data)
        self.md5.update(data)
        self._hand_over(self.cutter.feed(data))
        return len(data)

    def writelines(self, blocks: Any) -> None:
        for block in blocks:
            self.write(block)

    def close(self) -> None:
        """End of the body (called by the protocol); ``finish`` gives the result."""

    def finish(self) -> Any:
        """Wait for the consumer to take the whole body; its result (or its error)."""
        self._finished = True
        self._hand_over(self.cutter.finish())
        self.bridge.run(self._put(None))
        return self._done.result()  # each chunk write is bounded by the node timeout

    def abort(self) -> None:
        if not self._finished:
            self._done.cancel()
