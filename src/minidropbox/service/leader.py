"""Cluster-wide background jobs (repair, replica audit, GC) run on one API replica at a time.

On PostgreSQL the leader is the replica holding a session-level advisory lock on a dedicated
connection. It checks that connection every ``interval`` seconds; when the check fails the
lock is gone with it, so the jobs are cancelled at once and the replica goes back to trying.
A replica that dies or hangs loses the lock when its session ends (the server drops it after
``idle_session_timeout``), and another takes over within a few intervals.

Two leaders can overlap only for the moment between a hung leader's session being dropped
and it noticing; the jobs are written to be safe even then (each step is a transaction, chunk
deletions go through the fence), leadership only keeps them from doing the work twice.

With SQLite there is one API process by construction, and it always leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Protocol

import psycopg

from minidropbox.metadata import pg

log = logging.getLogger("minidropbox.leader")

# Advisory locks are per database; 724031 is the migrations lock (metadata/db.py).
LEADER_LOCK = 724032
REPAIR_LOCK = 724033  # one repair (or rebalance) pass at a time in the whole cluster

Work = Callable[[], Coroutine[Any, Any, None]]


class Leadership(Protocol):
    """Runs ``work`` only while this process leads the cluster."""

    @property
    def is_leader(self) -> bool: ...

    async def lead(self, work: Work) -> None:
        """Forever: wait to lead, run ``work`` while leading, cancel it when no longer."""


class SoloLeader:
    """The only API process (SQLite): always the leader."""

    is_leader = True

    async def lead(self, work: Work) -> None:
        await work()


class PgAdvisoryLeader:
    """The replica holding ``LEADER_LOCK`` on its own connection leads (see the module)."""

    def __init__(self, database_url: str, interval: float = 2.0) -> None:
        self.database_url = database_url
        self.interval = interval
        self.is_leader = False

    async def lead(self, work: Work) -> None:
        while True:
            conn = await self._acquire()
            log.info("this replica now runs the cluster-wide jobs")
            self.is_leader = True
            task = asyncio.create_task(work(), name="cluster-jobs")
            try:
                await self._hold(conn)
            finally:
                self.is_leader = False
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                await _close(conn)
            log.warning("no longer the leader; cluster-wide jobs stopped here")

    async def _acquire(self) -> psycopg.AsyncConnection:
        """A connection holding the lock; tries every ``interval`` until it gets one."""
        conn: psycopg.AsyncConnection | None = None
        try:
            while True:
                try:
                    if conn is None or conn.closed:
                        conn = await pg.connect(self.database_url)
                        await self._limit_idle(conn)
                    cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,))
                    row = await cur.fetchone()
                    if row is not None and row[0]:
                        held, conn = conn, None
                        return held
                except psycopg.Error as exc:
                    log.warning("leader election: %s", exc)
                    await _close(conn)
                    conn = None
                await asyncio.sleep(self.interval)
        finally:
            await _close(conn)  # stopped while waiting: do not leave the connection open

    async def _limit_idle(self, conn: psycopg.AsyncConnection) -> None:
        # The server ends this session (and frees the lock) if the process stops checking in:
        # a hung leader must not hold the jobs hostage. Needs PostgreSQL 14; older ones rely
        # on TCP keepalives alone.
        idle_ms = int(self.interval * 5 * 1000)
        with contextlib.suppress(psycopg.errors.UndefinedObject):
            await conn.execute(f"SET idle_session_timeout = {idle_ms}")

    async def _hold(self, conn: psycopg.AsyncConnection) -> None:
        """Check the lock's connection every ``interval``; return when it may be lost."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await asyncio.wait_for(conn.execute("SELECT 1"), self.interval * 2)
            except (psycopg.Error, TimeoutError) as exc:
                log.warning("lost the leader connection: %s", exc or type(exc).__name__)
                return


async def _close(conn: psycopg.AsyncConnection | None) -> None:
    if conn is not None:
        with contextlib.suppress(Exception):
            await conn.close()


@contextlib.asynccontextmanager
async def cluster_exclusive(database_url: str, key: int,
                            poll: float = 0.2) -> AsyncIterator[None]:
    """Run the block in one API replica at a time, cluster-wide (waiting for a turn).

    A session-level advisory lock on a connection of its own, held for the block: with
    PostgreSQL several replicas share the work's state, so two of them must not do the same
    work at once even when one was asked directly (``admin repair``) while the leader's loop
    runs, or when a hung leader wakes next to its successor. SQLite has one API process: the
    caller's own asyncio lock suffices.
    """
    if not database_url.startswith("postgresql"):
        yield
        return
    conn = await pg.connect(database_url)
    try:
        while True:
            cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))
            row = await cur.fetchone()
            if row is not None and row[0]:
                break
            await asyncio.sleep(poll)
        yield
    finally:
        await _close(conn)  # ending the session releases the lock


def leadership_for(database_url: str, interval: float = 2.0) -> Leadership:
    if database_url.startswith("postgresql"):
        return PgAdvisoryLeader(database_url, interval)
    return SoloLeader()
