"""``PgChangeHub``: the notification hub across API replicas, over PostgreSQL LISTEN/NOTIFY.

Each replica keeps a ``LocalChangeHub`` for its own waiters. ``publish`` wakes them at once
and queues the position for a ``NOTIFY`` on the ``minidropbox_changes`` channel; every replica
``LISTEN``s there and hands what the others published to its local hub. So a client long-
polling or holding a WebSocket on one replica hears a commit made through another.

Payloads are ``origin:namespace:seq``; a replica skips its own (it delivered them already).
Positions are coalesced per namespace before sending, which the ``ChangeHub`` contract allows.

When the listening connection drops, notifications sent meanwhile are lost to this replica,
so after every (re)connect it reads the journal head of each namespace someone here waits on
and delivers that: a waiter can be woken late, never left asleep past a change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
from collections.abc import AsyncIterator

import psycopg
from sqlalchemy.exc import SQLAlchemyError

from minidropbox.metadata import journal, pg
from minidropbox.metadata.db import Database
from minidropbox.service.notify import Listener, LocalChangeHub

log = logging.getLogger("minidropbox.notify")

CHANNEL = "minidropbox_changes"


class PgChangeHub:
    def __init__(self, db: Database, retry: float = 1.0) -> None:
        self.db = db
        self.retry = retry
        self.local = LocalChangeHub()
        self.origin = secrets.token_hex(6)
        self.connected = asyncio.Event()  # set while LISTEN is active (tests wait on it)
        self._pending: dict[int, int] = {}
        self._pending_lock = threading.Lock()
        self._listening: dict[int, int] = {}  # namespace -> open listeners in this process
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()

    # -- the ChangeHub port -----------------------------------------------------------------
    def publish(self, namespace_id: int, seq: int) -> None:
        self.local.publish(namespace_id, seq)
        with self._pending_lock:
            if seq > self._pending.get(namespace_id, 0):
                self._pending[namespace_id] = seq
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed while shutting down
                loop.call_soon_threadsafe(self._wake.set)

    @contextlib.asynccontextmanager
    async def listen(self, namespace_id: int) -> AsyncIterator[Listener]:
        self._listening[namespace_id] = self._listening.get(namespace_id, 0) + 1
        try:
            async with self.local.listen(namespace_id) as listener:
                yield listener
        finally:
            left = self._listening[namespace_id] - 1
            if left:
                self._listening[namespace_id] = left
            else:
                del self._listening[namespace_id]

    def close(self) -> None:
        self.local.close()

    def listener_count(self) -> int:
        return self.local.listener_count()

    # -- the background job -----------------------------------------------------------------
    async def run(self) -> None:
        """Send this replica's positions and hear the others', forever (every replica)."""
        self._loop = asyncio.get_running_loop()
        self._wake.set()  # anything published before the loop started
        await asyncio.gather(self._send_forever(), self._listen_forever())

    async def _send_forever(self) -> None:
        conn: psycopg.AsyncConnection | None = None
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                with self._pending_lock:
                    batch, self._pending = self._pending, {}
                if not batch:
                    continue
                try:
                    if conn is None or conn.closed:
                        conn = await pg.connect(self.db.url)
                    for ns, seq in sorted(batch.items()):
                        await conn.execute("SELECT pg_notify(%s, %s)",
                                           (CHANNEL, f"{self.origin}:{ns}:{seq}"))
                except psycopg.Error as exc:
                    log.warning("could not send change notifications: %s", exc)
                    conn = None
                    with self._pending_lock:  # keep them for the next try
                        for ns, seq in batch.items():
                            self._pending[ns] = max(seq, self._pending.get(ns, 0))
                    await asyncio.sleep(self.retry)
                    self._wake.set()
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()

    async def _listen_forever(self) -> None:
        while True:
            try:
                conn = await pg.connect(self.db.url)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    await self._catch_up()
                    async for note in conn.notifies():
                        self._heard(note.payload)
            except (psycopg.Error, SQLAlchemyError) as exc:  # SQLAlchemy: the catch-up read
                log.warning("change notifications from other replicas interrupted: %s", exc)
            finally:
                self.connected.clear()
            await asyncio.sleep(self.retry)

    def _heard(self, payload: str) -> None:
        origin, _, rest = payload.partition(":")
        if origin == self.origin:
            return
        ns, _, seq = rest.partition(":")
        try:
            self.local.publish(int(ns), int(seq))
        except ValueError:
            log.warning("ignoring a malformed change notification %r", payload[:80])

    async def _catch_up(self) -> None:
        """Deliver the current head of every namespace waited on here."""
        waited = list(self._listening)
        if not waited:
            return
        heads = await asyncio.to_thread(self._heads, waited)
        for ns, seq in heads.items():
            self.local.publish(ns, seq)

    def _heads(self, namespace_ids: list[int]) -> dict[int, int]:
        with self.db.read() as conn:
            return {ns: journal.head(conn, ns) for ns in namespace_ids}
