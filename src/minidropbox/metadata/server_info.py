"""Server-wide facts kept in the ``server_info`` table: the generation and the cursor key.

The *generation* is a random id made at first start. A restore from a backup must call
``new_generation`` on the restored database before the server starts on it: journal cursors
carry the generation, so every cursor handed out before the restore stops verifying and sync
clients do a full three-way reconcile instead of trusting positions the restored journal
never had.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from minidropbox.metadata.tables import server_info

GENERATION = "generation"
CURSOR_KEY = "cursor_key"


@dataclass(frozen=True)
class ServerIdentity:
    generation: str
    cursor_key: bytes


def get(conn: Connection, key: str) -> str | None:
    return conn.execute(select(server_info.c.value)
                        .where(server_info.c.key == key)).scalar_one_or_none()


def put(conn: Connection, key: str, value: str) -> None:
    """Insert or replace one value."""
    if conn.execute(update(server_info).where(server_info.c.key == key)
                    .values(value=value)).rowcount == 0:
        conn.execute(insert(server_info).values(key=key, value=value))


def _get_or_create(conn: Connection, key: str, make: str) -> str:
    existing = get(conn, key)
    if existing is not None:
        return existing
    try:
        with conn.begin_nested():  # another API replica may be starting at the same moment
            conn.execute(insert(server_info).values(key=key, value=make))
    except IntegrityError:
        pass
    value = get(conn, key)
    assert value is not None
    return value


def _new_generation_id() -> str:
    return secrets.token_hex(8)


def ensure_identity(conn: Connection) -> ServerIdentity:
    """The generation and cursor key, created on first start (call in a write transaction)."""
    generation = _get_or_create(conn, GENERATION, _new_generation_id())
    key = _get_or_create(conn, CURSOR_KEY, secrets.token_hex(32))
    return ServerIdentity(generation, bytes.fromhex(key))


def generation(conn: Connection) -> str | None:
    """The current generation (None before the first start)."""
    return get(conn, GENERATION)


def new_generation(conn: Connection) -> str:
    """Give the server a new generation (after a restore); returns it.

    Every journal cursor issued before this call is refused with 410 ``reset`` once the API
    (re)starts on this database.
    """
    value = _new_generation_id()
    put(conn, GENERATION, value)
    return value
