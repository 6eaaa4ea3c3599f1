"""Dedicated PostgreSQL connections, outside the SQLAlchemy pool.

Session-level state (an advisory lock, a ``LISTEN``) lives exactly as long as one server
connection, so the code that needs it opens its own psycopg connection rather than borrowing
a pooled one that would be handed to someone else.
"""

from __future__ import annotations

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import make_url


def libpq_conninfo(database_url: str, with_password: bool = True) -> str:
    """``postgresql+psycopg://...`` (SQLAlchemy) → libpq's ``key=value`` connection string.

    Built from the URL's parsed parts, each quoted for libpq, so a password with spaces,
    quotes or ``@:/#?`` (which a re-rendered URL would leave libpq unable to parse) survives.
    pg_dump's ``--dbname`` takes the same string (without the password, which a command line
    would show to ``ps``: pass it as ``PGPASSWORD``).
    """
    url = make_url(database_url)
    parts = {"host": url.host, "port": url.port, "user": url.username,
             "password": url.password if with_password else None, "dbname": url.database}
    query = {key: value if isinstance(value, str) else value[-1]
             for key, value in url.query.items()}
    return make_conninfo("", **{k: v for k, v in parts.items() if v is not None}, **query)


async def connect(database_url: str, timeout: float = 10.0) -> psycopg.AsyncConnection:
    """A new autocommit connection (each statement its own transaction)."""
    # TCP keepalives notice a dead server or network within about half a minute instead of
    # the OS default of two hours: a silently dropped connection would otherwise keep a lock
    # holder believing it leads, or a listener believing it listens.
    return await psycopg.AsyncConnection.connect(
        libpq_conninfo(database_url), autocommit=True, connect_timeout=max(1, int(timeout)),
        keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3)
