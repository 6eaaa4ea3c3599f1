"""App passwords: per-device credentials for WebDAV (HTTP Basic), created, listed, revoked.

An app password is a random 25-letter string (about 125 bits) shown once at creation. Only
its SHA-256 is stored: with that much entropy a slow hash adds nothing, and a fast one lets
every WebDAV request check the database, so a revoked password stops working at once (there
is no cache to expire). Failures are throttled per user and per address like logins. App
passwords open WebDAV only; the account password does not open WebDAV.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from minidropbox.core.errors import InvalidInput, NotFound, TooManyRequests, Unauthorized
from minidropbox.metadata import app_passwords as repo
from minidropbox.metadata.db import Database
from minidropbox.service.accounts import Principal
from minidropbox.service.login_throttle import SharedLoginThrottle
from minidropbox.settings import Settings

# No 0/O, 1/I/L: readable when typed from one screen into another.
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
GROUPS, GROUP_LEN = 5, 5
BAD_CREDENTIALS = "Wrong username or app password (WebDAV takes app passwords only)."
# Recording "last used" on every request would make every read a write; once a minute will do.
TOUCH_EVERY = 60.0


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 64 or not name.isprintable():
        raise InvalidInput("An app password's name is 1 to 64 printable characters.")
    return name


class AppPasswordService:
    def __init__(self, db: Database, settings: Settings, throttle: SharedLoginThrottle,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.limit = settings.app_passwords_per_user
        self.clock = clock
        self.throttle = throttle  # the logins' own: wrong guesses count against one budget

    def create(self, principal: Principal, name: str) -> dict[str, Any]:
        """A new app password; the only time its secret is returned."""
        name = check_name(name)
        secret = "-".join("".join(secrets.choice(ALPHABET) for _ in range(GROUP_LEN))
                          for _ in range(GROUPS))
        now = self.clock()
        with self.db.write() as conn:
            if repo.count(conn, principal.user_id) >= self.limit:
                raise InvalidInput(f"An account has at most {self.limit} app passwords; "
                                   "revoke one first.")
            repo.create(conn, principal.user_id, name, _digest(secret), now)
        return {"name": name, "password": secret, "username": principal.username,
                "created_at": now}

    def list(self, principal: Principal) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            return repo.list_for(conn, principal.user_id)

    def revoke(self, principal: Principal, name: str) -> None:
        with self.db.write() as conn:
            if not repo.revoke(conn, principal.user_id, name):
                raise NotFound(f"No app password named {name!r}.")

    def authenticate(self, username: str, secret: str, address: str,
                     conn: Connection | None = None) -> Principal:
        """The caller for HTTP Basic credentials; ``Unauthorized`` or ``TooManyRequests``.
        ``conn``: a read transaction of the request's to look the password up in (a WebDAV
        PUT reads its caller, mount points, target and locks in one)."""
        now = self.clock()
        name = username.strip().lower()
        if conn is None:
            with self.db.read() as own:
                return self.authenticate(username, secret, address, own)
        wait = self.throttle.blocked_for(name, address, now, conn)
        if wait:
            raise TooManyRequests("Too many failed logins; try again later.", retry_after=wait)
        row = None
        if 0 < len(secret) <= 128 and 0 < len(name) <= 64:
            row = repo.caller(conn, name, _digest(secret))
        if row is None or row["namespace_id"] is None:
            self.throttle.failed(name, address, now)
            raise Unauthorized(BAD_CREDENTIALS)
        if row["disabled_at"] is not None:
            raise Unauthorized("This account is disabled; ask the server's administrator.")
        # No reset on success (unlike a login): a device sends the right password with every
        # request, which would wipe the count of someone else's wrong guesses at once.
        if row["last_used_at"] is None or now - row["last_used_at"] > TOUCH_EVERY:
            with self.db.write() as conn:
                repo.touch(conn, row["app_password_id"], now)
        return Principal(row["id"], row["username"], f"app-password:{row['app_password_id']}",
                         row["namespace_id"], bool(row["is_admin"]), row["quota_bytes"])
