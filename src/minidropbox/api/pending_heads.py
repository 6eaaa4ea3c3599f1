"""How many connections may be waiting for their request head at once.

A head deadline bounds how long one slow connection lives, not how many there are: 20,000
connections that each send a byte every few seconds still hold 20,000 descriptors for the
whole deadline. ``PendingHeads`` keeps the connections whose head has not fully arrived, oldest
first, capped per client address and overall. Admitting one past a cap closes the oldest
pending connection (of that client when it is over its own cap): an honest client sends its
head within milliseconds, so the oldest pending connections are the slow ones, and a flood
evicts itself rather than the honest connection that arrives after it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

Conn = TypeVar("Conn", bound=Hashable)


class PendingHeads(Generic[Conn]):
    """Connections still sending their head, at most ``limit`` in all and ``per_client`` for
    one client address."""

    def __init__(self, limit: int, per_client: int) -> None:
        if limit < 1 or per_client < 1:
            raise ValueError("pending head limits must be at least 1")
        self.limit = limit
        self.per_client = per_client
        self._all: OrderedDict[Conn, str] = OrderedDict()
        self._by_client: dict[str, OrderedDict[Conn, None]] = {}

    def admit(self, conn: Conn, client: str) -> list[Conn]:
        """Add ``conn`` (from address ``client``); return the connections it pushed out, already
        forgotten here, for the caller to close."""
        evicted: list[Conn] = []
        while self.count(client) >= self.per_client:
            evicted.append(next(iter(self._by_client[client])))
            self.remove(evicted[-1])
        while len(self._all) >= self.limit:
            evicted.append(next(iter(self._all)))
            self.remove(evicted[-1])
        self._all[conn] = client
        self._by_client.setdefault(client, OrderedDict())[conn] = None
        return evicted

    def remove(self, conn: Conn) -> None:
        """Forget ``conn`` (its head arrived, or it closed); unknown connections are ignored."""
        client = self._all.pop(conn, None)
        if client is None:
            return
        mine = self._by_client[client]
        del mine[conn]
        if not mine:
            del self._by_client[client]

    def count(self, client: str | None = None) -> int:
        """Pending connections in all, or of one client address."""
        if client is None:
            return len(self._all)
        return len(self._by_client.get(client, ()))
