"""The login throttle every API replica shares: failed credential checks counted in the
metadata database, per username and per client address, over a sliding window.

Logins and WebDAV's app passwords spend one budget. Past either limit the next attempt waits
(429 + ``Retry-After``) whatever password it brings, so a guesser learns nothing while
blocked; a blocked attempt is not counted again. Counted in the database, not in each
process: with several replicas behind a balancer, or a restart, an attacker would otherwise get
a fresh budget per process.

Reading the budget costs one small statement (for each key, an indexed look at its limit-th
newest failure) in a transaction the caller may already hold (a WebDAV request's); a failure
costs one write transaction, which also drops rows no window can count any more, so the table
holds at most the last window's failures.
"""

from __future__ import annotations

import math

from sqlalchemy import Connection

from minidropbox.metadata import auth_failures as repo
from minidropbox.metadata.db import Database


def _user(name: str) -> str:
    return f"u:{name}"


def _address(address: str) -> str:
    return f"a:{address}"


class SharedLoginThrottle:
    def __init__(self, db: Database, per_user: int, per_address: int,
                 window: float = 60.0) -> None:
        self.db = db
        self.per_user = per_user
        self.per_address = per_address
        self.window = window

    def blocked_for(self, name: str, address: str, now: float,
                    conn: Connection | None = None) -> int:
        """Seconds until ``name`` may try again from ``address`` (0: now); ``conn``: a read
        transaction of the caller's to read in."""
        if conn is None:
            with self.db.read() as own:
                return self.blocked_for(name, address, now, own)
        oldest = repo.nth_newest(conn, (_user(name), self.per_user),
                                 (_address(address), self.per_address), now - self.window)
        # As a sliding window: blocked until the limit-th newest failure has left it.
        return max((max(1, math.ceil(at + self.window - now)) for at in oldest
                    if at is not None), default=0)

    def failed(self, name: str, address: str, now: float) -> None:
        with self.db.write() as conn:
            repo.record(conn, (_user(name), _address(address)), now, now - self.window)

    def succeeded(self, name: str) -> None:
        """A right password at login: the user's count starts again (the address's stays)."""
        with self.db.write() as conn:
            repo.forget(conn, _user(name))
