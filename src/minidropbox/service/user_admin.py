"""What an operator does to accounts (``minidropbox admin users``, ``admin invite``): list
them with their usage, create one, disable or enable, delete, reset a password, set a
quota, and make sign-up invites for servers where open sign-up is off (``SIGNUP=invite``).

Disabling revokes every session at once (and ``authenticate`` refuses a disabled account's
tokens and app passwords anyway), so it takes effect on the next request, not when an access
token expires. A password reset ends every session too. Deleting an account deletes its
files, versions and trash with it (GC then frees their chunks); an account that owns a
folder shared with others is refused until the folder is unshared, so nobody loses a folder
they were working in without its owner deciding.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Any

from minidropbox.core.accounts import check_password, normalize_username
from minidropbox.core.errors import Conflict, InvalidInput, NotFound
from minidropbox.metadata import accounts as accounts_repo
from minidropbox.metadata import chunks as chunk_repo
from minidropbox.metadata import users_admin as repo
from minidropbox.metadata.db import Database
from minidropbox.service.accounts import PASSWORD_HASHER, Principal
from minidropbox.service.passwords import common_passwords
from minidropbox.settings import Settings

MAX_PAGE = 1000  # users per listing
MAX_INVITE_SECONDS = 90 * 24 * 3600


def invite_digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


class UserAdmin:
    def __init__(self, db: Database, settings: Settings,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock

    def list(self, after: str = "", limit: int = MAX_PAGE) -> list[dict[str, Any]]:
        """Users after ``after`` in name order, each with the bytes the quota counts."""
        limit = max(1, min(limit, MAX_PAGE))
        with self.db.read() as conn:
            rows = repo.page(conn, after, limit)
            for row in rows:
                row["used_bytes"] = chunk_repo.used_bytes(conn, row["id"])
        return [_public(r) for r in rows]

    def _user(self, conn: Any, username: str) -> dict[str, Any]:
        user = repo.by_name(conn, username.strip().lower())
        if user is None:
            raise NotFound(f"There is no user {username!r}.")
        return user

    def create(self, username: str, password: str) -> dict[str, Any]:
        """An account made by the operator (whatever ``SIGNUP`` says)."""
        name = normalize_username(username)
        check_password(password, common_passwords(), name)
        hashed = PASSWORD_HASHER.hash(password)
        now = self.clock()
        with self.db.write() as conn:
            accounts_repo.create_user(conn, name, hashed, now, self.settings.quota_bytes)
            user = self._user(conn, name)
        return _public({**user, "used_bytes": 0})

    def set_disabled(self, admin: Principal, username: str, disabled: bool) -> dict[str, Any]:
        now = self.clock()
        with self.db.write() as conn:
            user = self._user(conn, username)
            if disabled and user["id"] == admin.user_id:
                raise InvalidInput("You cannot disable your own account.")
            repo.set_disabled(conn, user["id"], now if disabled else None)
            if disabled:
                accounts_repo.revoke_other_sessions(conn, user["id"], None, now)
            user = self._user(conn, username)
            user["used_bytes"] = chunk_repo.used_bytes(conn, user["id"])
        return _public(user)

    def delete(self, admin: Principal, username: str) -> None:
        with self.db.write() as conn:
            user = self._user(conn, username)
            if user["id"] == admin.user_id:
                raise InvalidInput("You cannot delete your own account.")
            shared = repo.shared_with_others(conn, user["id"])
            if shared:
                raise Conflict(f"{user['username']} owns {shared} folder(s) shared with other "
                               "accounts; unshare them (or remove the members) first.")
            repo.delete_user(conn, user["id"])

    def reset_password(self, username: str, password: str) -> None:
        """A new password; every session of the account ends."""
        with self.db.read() as conn:
            user = self._user(conn, username)
        check_password(password, common_passwords(), user["username"])
        hashed = PASSWORD_HASHER.hash(password)
        now = self.clock()
        with self.db.write() as conn:
            accounts_repo.set_password(conn, user["id"], hashed, now)
            accounts_repo.revoke_other_sessions(conn, user["id"], None, now)

    def set_quota(self, username: str, quota_bytes: int | None) -> dict[str, Any]:
        if quota_bytes is not None and quota_bytes < 0:
            raise InvalidInput("A quota cannot be negative.")
        with self.db.write() as conn:
            user = self._user(conn, username)
            repo.set_quota(conn, user["id"], quota_bytes)
            user = self._user(conn, username)
            user["used_bytes"] = chunk_repo.used_bytes(conn, user["id"])
        return _public(user)

    def create_invite(self, admin: Principal, expires_in: float) -> dict[str, Any]:
        """A sign-up code, shown once (only its SHA-256 is kept)."""
        if not 60 <= expires_in <= MAX_INVITE_SECONDS:
            raise InvalidInput("An invite lasts from a minute to 90 days.")
        code = secrets.token_urlsafe(18)
        now = self.clock()
        with self.db.write() as conn:
            repo.create_invite(conn, invite_digest(code), admin.user_id, now, now + expires_in)
        return {"code": code, "expires_at": now + expires_in}


def _public(user: dict[str, Any]) -> dict[str, Any]:
    return {"username": user["username"], "is_admin": bool(user["is_admin"]),
            "quota_bytes": user["quota_bytes"], "used_bytes": user["used_bytes"],
            "created_at": user["created_at"], "disabled": user["disabled_at"] is not None,
            "disabled_at": user["disabled_at"]}
