"""Rows of ``auth_failures``: failed credential checks per key, for the shared login throttle."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, insert

from minidropbox.metadata.db import driver_fetchone
from minidropbox.metadata.tables import auth_failures

# Read on every login and every WebDAV request: one small statement, sent straight to the
# driver. For each key, its n-th newest failure, found through the (key, at) index.
_NTH_NEWEST = (
    "SELECT"
    " (SELECT at FROM auth_failures WHERE key = :key0 AND at > :since"
    " ORDER BY at DESC LIMIT 1 OFFSET :skip0),"
    " (SELECT at FROM auth_failures WHERE key = :key1 AND at > :since"
    " ORDER BY at DESC LIMIT 1 OFFSET :skip1)")


def nth_newest(conn: Connection, first: tuple[str, int], second: tuple[str, int],
               since: float) -> tuple[float | None, float | None]:
    """For two (key, n): the time of the key's n-th newest failure after ``since`` (None if
    it has fewer): what a sliding window of n needs to know."""
    row = driver_fetchone(conn, _NTH_NEWEST, {"key0": first[0], "skip0": first[1] - 1,
                                              "key1": second[0], "skip1": second[1] - 1,
                                              "since": since})
    return (None if row[0] is None else float(row[0]),
            None if row[1] is None else float(row[1]))


def record(conn: Connection, keys: Sequence[str], now: float, expired_before: float) -> None:
    """One failure for each key; rows that no window can count any more go."""
    conn.execute(insert(auth_failures), [{"key": key, "at": now} for key in keys])
    conn.execute(delete(auth_failures).where(auth_failures.c.at <= expired_before))


def forget(conn: Connection, key: str) -> None:
    conn.execute(delete(auth_failures).where(auth_failures.c.key == key))
