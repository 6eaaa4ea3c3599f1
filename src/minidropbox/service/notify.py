"""The notification hub: "namespace N's journal reached position P", fanned out to waiters.

Long-polls and WebSockets wait on a ``Listener`` instead of polling the database, so a
waiting client holds neither a database connection nor a worker thread, only a small object
on the event loop.

The ordering that makes this lossless: a waiter *first* starts listening, *then* reads the
journal head from the database, and only then waits. ``FileService`` publishes only after a
change's transaction has committed. So a change is either already visible to that read, or
its publication reaches the listener.

``ChangeHub`` is the port. ``LocalChangeHub`` fans out inside one process; with several API
replicas on PostgreSQL, an adapter would publish with ``NOTIFY`` and run a ``LISTEN`` loop as
a background job that hands what it hears to a ``LocalChangeHub``. Routes only see the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol


class Listener:
    """One waiter's view of one namespace's journal head. Used on the event loop only."""

    def __init__(self, namespace_id: int) -> None:
        self.namespace_id = namespace_id
        self.latest = 0
        self.closed = False  # the server is stopping: stop waiting
        self._event = asyncio.Event()

    def advance(self, seq: int) -> None:
        """Record that the journal has reached ``seq`` (ignores anything older)."""
        if seq > self.latest:
            self.latest = seq
            self._event.set()

    def close(self) -> None:
        self.closed = True
        self._event.set()

    async def wait_past(self, seq: int, timeout: float) -> int:
        """Wait until the head passes ``seq``, ``timeout`` seconds go by, or the listener is
        closed; returns the head."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.latest <= seq and not self.closed:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            # No await between the check above and clear(): advance() runs on this loop, so
            # a publication cannot slip in between and be lost.
            self._event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), remaining)
        return self.latest


class ChangeHub(Protocol):
    """Publish journal positions; listen for them.

    ``publish`` may be called from any thread, and only after the change committed. It never
    blocks and never raises. ``listen`` is entered on the event loop; the listener hears
    every position published for its namespace while it is open (positions may be coalesced:
    a listener may see only the newest of several).
    """

    def publish(self, namespace_id: int, seq: int) -> None: ...

    def listen(self, namespace_id: int) -> AbstractAsyncContextManager[Listener]: ...

    def close(self) -> None:
        """The server is stopping: wake every waiter, and let later ones return at once.

        Called on the event loop."""


class LocalChangeHub:
    """An in-process ``ChangeHub`` bound to the event loop of its first listener."""

    def __init__(self) -> None:
        self._listeners: dict[int, set[Listener]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._closed = False

    def publish(self, namespace_id: int, seq: int) -> None:
        # Nobody listening: nothing to do. A listener that registers after this check reads
        # the head from the database afterwards, and so sees this change there.
        if namespace_id not in self._listeners:
            return
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if _running_loop() is loop:
            self._deliver(namespace_id, seq)
            return
        with contextlib.suppress(RuntimeError):  # the loop closed while shutting down
            loop.call_soon_threadsafe(self._deliver, namespace_id, seq)

    def _deliver(self, namespace_id: int, seq: int) -> None:
        for listener in list(self._listeners.get(namespace_id, ())):
            listener.advance(seq)

    @contextlib.asynccontextmanager
    async def listen(self, namespace_id: int) -> AsyncIterator[Listener]:
        with self._lock:
            self._loop = asyncio.get_running_loop()
        listener = Listener(namespace_id)
        if self._closed:
            listener.close()
        self._listeners.setdefault(namespace_id, set()).add(listener)
        try:
            yield listener
        finally:
            group = self._listeners.get(namespace_id)
            if group is not None:
                group.discard(listener)
                if not group:
                    del self._listeners[namespace_id]

    def close(self) -> None:
        self._closed = True
        for group in list(self._listeners.values()):
            for listener in list(group):
                listener.close()

    def listener_count(self) -> int:
        """How many listeners are open (for metrics and tests)."""
        return sum(len(group) for group in list(self._listeners.values()))


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
