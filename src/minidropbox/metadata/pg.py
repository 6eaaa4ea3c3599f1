"""Dedicated PostgreSQL connections, outside the SQLAlchemy pool.

Session-level state (an advisory lock, a ``LISTEN``) lives exactly as long as one server
connection, so the code that needs it opens its own psycopg connection rather than borrowing
a pooled one that would be handed to someone else.
"""

from __future__ import annotations

import psycopg
from sqlalchemy.engine import make_url


def libpq_url(database_url: str) -> str:
    """``postgresql+psycopg://...`` (SQLAlchemy) → ``postgresql://...`` (libpq)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(
        hide_password=False)


async def connect(database_url: str, timeout: float = 10.0) -> psycopg.AsyncConnection:
    """A new autocommit connection (each statement its own transaction)."""
    # TCP keepalives notice a dead server or network within about half a minute instead of
    # the OS default of two hours: a silently dropped connection would otherwise keep a lock
    # holder believing it leads, or a listener believing it listens.
    return await psycopg.AsyncConnection.connect(
        libpq_url(database_url), autocommit=True, connect_timeout=max(1, int(timeout)),
        keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3)
