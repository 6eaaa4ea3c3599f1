"""The deletion fence: a sequence lock that orders deleting chunk copies against recording them.

Deleting a chunk's bytes from a node (garbage collection, dropping a bad or surplus replica)
races with a writer that PUTs the same chunk and then records it: if the PUT lands just before
the delete and the record commits just after, the metadata would claim a copy that is gone.
So every deleter and every writer go through this fence (``server_info`` row ``fence.epoch``):

- a deleter, in the transaction that removes the rows, makes the epoch odd (``open``), deletes
  the node copies, then makes it even again (``close``);
- a writer reads the epoch before its PUTs and, in the transaction that records the chunk,
  checks that it is the same even number; otherwise a deletion overlapped it, so it waits for
  the fence to close, PUTs again and retries.

A deleter that dies with the fence open would block writers forever, so ``open`` also stores a
deadline; past it a waiting writer closes the fence itself, and the deleter stops deleting
(it checks the deadline before each delete). See docs/DESIGN.md, "Write ordering".
"""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from minidropbox.metadata.tables import server_info

EPOCH = "fence.epoch"
DEADLINE = "fence.deadline"


# Read in every upload's recording transaction: built once.
_GET = select(server_info.c.value).where(server_info.c.key == bindparam("key"))


def _get(conn: Connection, key: str) -> str | None:
    value = conn.execute(_GET, {"key": key}).scalar()
    return None if value is None else str(value)


def _set(conn: Connection, key: str, value: str) -> None:
    if conn.execute(update(server_info).where(server_info.c.key == key)
                    .values(value=value)).rowcount:
        return
    try:
        with conn.begin_nested():
            conn.execute(insert(server_info).values(key=key, value=value))
    except IntegrityError:  # created concurrently: set it
        conn.execute(update(server_info).where(server_info.c.key == key).values(value=value))


def epoch(conn: Connection) -> int:
    value = _get(conn, EPOCH)
    return int(value) if value else 0


def writer_token(conn: Connection) -> int | None:
    """The epoch a writer records under, or None while a deletion is under way."""
    current = epoch(conn)
    return current if current % 2 == 0 else None


def still_valid(conn: Connection, token: int | None) -> bool:
    """In the writer's recording transaction: no deletion began since ``token`` was taken."""
    return token is not None and epoch(conn) == token


def open_fence(conn: Connection, now: float, hold: float) -> int | None:
    """Start a deletion (in the transaction that deletes the rows); returns the odd epoch.

    None when another deletion holds the fence: deleters take turns, so one closing the fence
    can never cut short another that is still deleting.
    """
    expire(conn, now)
    current = epoch(conn)
    if current % 2 == 1:
        return None
    new = current + 1
    _set(conn, EPOCH, str(new))
    _set(conn, DEADLINE, repr(now + hold))
    return new


def close_fence(conn: Connection, opened: int) -> None:
    """End the deletion begun at ``opened`` (a no-op if someone expired it meanwhile)."""
    if epoch(conn) == opened:
        _set(conn, EPOCH, str(opened + 1))


def deadline(conn: Connection) -> float:
    return float(_get(conn, DEADLINE) or 0)


def expire(conn: Connection, now: float) -> bool:
    """Close a fence left open past its deadline (its deleter died); True if it did."""
    current = epoch(conn)
    if current % 2 == 1 and now > deadline(conn):
        _set(conn, EPOCH, str(current + 1))
        return True
    return False
