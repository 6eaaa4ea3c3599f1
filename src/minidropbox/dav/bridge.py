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

T = TypeVar("T")
# A worker thread waits at most this long for one step on the loop (a chunk fetch or store,
# which are themselves bounded by the node timeout); then the request fails rather than hangs.
STEP_TIMEOUT = 300.0
QUEUE_BLOCKS = 8  # body blocks (of up to 1 MiB) waiting between the thread and the loop


class LoopBridge:
    """Runs coroutines on the API's event loop from a WSGI worker thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(STEP_TIMEOUT)


async def _next_block(stream: AsyncIterator[bytes | memoryview]) -> bytes | None:
    try:
        block = await anext(stream)
    except StopAsyncIteration:
        return None
    return bytes(block)


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
        self._buffer = b""

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
        out, self._buffer = self._buffer[:want], self._buffer[want:]
        self._pos += len(out)
        return out

    def _close_stream(self) -> None:
        stream, self._stream, self._buffer = self._stream, None, b""
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            self.bridge.run(aclose())

    def close(self) -> None:
        self._close_stream()


class UploadStream:
    """The body of a PUT, handed block by block to ``consume`` (a coroutine taking an async
    iterator of blocks, e.g. ``ChunkService.store_stream``) running on the event loop, while
    its SHA-1 and MD5 are taken. The hand-over queue is short, so memory stays flat."""

    def __init__(self, bridge: LoopBridge,
                 consume: Callable[[AsyncIterator[bytes]], Coroutine[Any, Any, T]]) -> None:
        self.bridge = bridge
        self.sha1 = hashlib.sha1(usedforsecurity=False)
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=QUEUE_BLOCKS)
        self._done = asyncio.run_coroutine_threadsafe(consume(self._blocks()), bridge.loop)
        self._finished = False

    async def _blocks(self) -> AsyncIterator[bytes]:
        while (block := await self._queue.get()) is not None:
            yield block

    async def _put(self, item: bytes | None) -> None:
        # The consumer may stop early (quota, storage): then nobody empties the queue.
        while not self._done.done():
            try:
                await asyncio.wait_for(self._queue.put(item), 1.0)
                return
            except TimeoutError:
                continue

    def write(self, data: bytes) -> int:
        if self._done.done():
            self._done.result()  # raises why the consumer stopped
            raise RuntimeError("the upload ended before its body did")
        self.sha1.update(data)
        self.md5.update(data)
        self.size += len(data)
        self.bridge.run(self._put(bytes(data)))
        return len(data)

    def writelines(self, blocks: Any) -> None:
        for block in blocks:
            self.write(block)

    def close(self) -> None:
        """End of the body (called by the protocol); ``finish`` gives the result."""

    def finish(self) -> Any:
        """Wait for the consumer to take the whole body; its result (or its error)."""
        self._finished = True
        self.bridge.run(self._put(None))
        return self._done.result()  # each chunk write is bounded by the node timeout

    def abort(self) -> None:
        if not self._finished:
            self._done.cancel()
