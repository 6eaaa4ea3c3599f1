"""Accounts and sessions: signup, login, token refresh and rotation, logout, password change.

Access tokens are short-lived HS256 JWTs that name a session; every request also checks that
session in the database, so logout and password changes take effect at once. Refresh tokens
are ``<session id>.<random>``, stored only as a SHA-256, and rotate on every use: presenting a
refresh token that is no longer current means it was stolen or replayed, and revokes the session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from minidropbox.core.accounts import check_password, normalize_username
from minidropbox.core.errors import Forbidden, InvalidInput, TooManyRequests, Unauthorized
from minidropbox.core.ratelimit import SlidingWindow
from minidropbox.metadata import accounts as repo
from minidropbox.metadata import users_admin
from minidropbox.metadata.db import Database
from minidropbox.service.login_throttle import SharedLoginThrottle
from minidropbox.service.passwords import common_passwords
from minidropbox.settings import Settings

JWT_ALGORITHM = "HS256"
# OWASP Password Storage cheat sheet minimum for Argon2id: m=19 MiB, t=2, p=1.
PASSWORD_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
BAD_LOGIN = "Wrong username or password."
# Token kinds (the ``typ`` claim): a bearer access token, or a browser session's cookie.
ACCESS = "access"
BROWSER = "browser"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True)
class BrowserSession:
    token: str  # the cookie's value
    session_id: str
    expires_in: int


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request."""

    user_id: int
    username: str
    session_id: str
    namespace_id: int
    is_admin: bool
    quota_bytes: int | None


class AccountService:
    def __init__(self, db: Database, settings: Settings,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        assert settings.jwt_secret, "resolve_secrets() first"
        self._secret = settings.jwt_secret
        # Shared with app passwords (WebDAV): one budget of wrong guesses per name and address.
        self.login_throttle = SharedLoginThrottle(db, settings.login_failures_per_user,
                                                  settings.login_failures_per_address)
        self._address_signups = SlidingWindow(settings.signups_per_address,
                                              settings.signup_window)
        # Verified against when the user does not exist, so both cases cost the same time.
        self._dummy_hash = PASSWORD_HASHER.hash(secrets.token_hex(16))

    # -- accounts ---------------------------------------------------------------------------
    def signup(self, username: str, password: str, address: str,
               invite: str | None = None) -> dict[str, Any]:
        """Create an account. Every attempt with a valid name and password counts against
        the client address's signup budget, whether the name was free or taken: that bounds
        both the Argon2id hashes one address can make the server compute and how many names
        it can probe ("username taken" answers) per window."""
        name = normalize_username(username)
        check_password(password, common_passwords(), name)
        now = self.clock()
        wait = self._address_signups.blocked_for(address, now)
        if wait:
            raise TooManyRequests("Too many signups from this address; try again later.",
                                  retry_after=wait)
        self._address_signups.hit(address, now)
        invite_only = self.settings.signup == "invite"
        if invite_only and not invite:
            raise Forbidden("Sign-up on this server is by invitation only: ask its "
                            "administrator for an invite code (`signup --invite CODE`).")
        hashed = PASSWORD_HASHER.hash(password)
        with self.db.write() as conn:
            user_id = repo.create_user(conn, name, hashed, now, self.settings.quota_bytes)
            # Spent in the same transaction: a taken name leaves the invite unused.
            if invite_only and not users_admin.use_invite(
                    conn, hashlib.sha256(str(invite).encode()).hexdigest(), name, now):
                raise Forbidden("That invite code is unknown, used or expired.")
        return {"id": user_id, "username": name, "created_at": now}

    def login(self, username: str, password: str, address: str, device: str = "") -> TokenPair:
        user_id, now = self._check_login(username, password, address)
        return self._new_session(user_id, device[:128], now)

    def browser_login(self, username: str, password: str, address: str,
                      device: str) -> BrowserSession:
        """A session for a browser: one token that lives as long as the session (it goes in
        an HttpOnly cookie, so it never needs refreshing from script). It names a session row
        like any other, so logout and password changes end it at once."""
        user_id, now = self._check_login(username, password, address)
        pair = self._new_session(user_id, device[:128], now)
        session_id = pair.refresh_token.partition(".")[0]
        ttl = self.settings.refresh_token_ttl
        return BrowserSession(self._access_token(user_id, session_id, now, ttl, BROWSER),
                              session_id, ttl)

    def _check_login(self, username: str, password: str, address: str) -> tuple[int, float]:
        """The user id for a right password (throttled per user and per address)."""
        now = self.clock()
        name = username.strip().lower()
        wait = self.login_throttle.blocked_for(name, address, now)
        if wait:
            raise TooManyRequests("Too many failed logins; try again later.", retry_after=wait)
        with self.db.read() as conn:
            user = repo.user_by_name(conn, name)
        if not self._password_ok(user["password_hash"] if user else None, password) or not user:
            self.login_throttle.failed(name, address, now)
            raise Unauthorized(BAD_LOGIN)
        self.login_throttle.succeeded(name)
        if user["disabled_at"] is not None:
            raise Forbidden("This account is disabled; ask the server's administrator.")
        if PASSWORD_HASHER.check_needs_rehash(user["password_hash"]):
            with self.db.write() as conn:
                repo.set_password(conn, user["id"], PASSWORD_HASHER.hash(password),
                                  user["password_changed_at"])
        return user["id"], now

    def change_password(self, principal: Principal, old: str, new: str) -> None:
        check_password(new, common_passwords(), principal.username)
        with self.db.read() as conn:
            user = repo.user_by_id(conn, principal.user_id)
        if not user or not self._password_ok(user["password_hash"], old):
            raise InvalidInput("The current password is wrong.")
        now = self.clock()
        with self.db.write() as conn:
            repo.set_password(conn, principal.user_id, PASSWORD_HASHER.hash(new), now)
            repo.revoke_other_sessions(conn, principal.user_id, principal.session_id, now)

    def _password_ok(self, stored: str | None, password: str) -> bool:
        try:
            return PASSWORD_HASHER.verify(stored or self._dummy_hash, password) and bool(stored)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    # -- sessions ---------------------------------------------------------------------------
    def _new_session(self, user_id: int, device: str, now: float) -> TokenPair:
        session_id = secrets.token_hex(16)
        refresh = f"{session_id}.{secrets.token_urlsafe(32)}"
        with self.db.write() as conn:
            repo.create_session(conn, session_id, user_id, _digest(refresh), device, now,
                                now + self.settings.refresh_token_ttl)
        return TokenPair(self._access_token(user_id, session_id, now), refresh,
                         self.settings.access_token_ttl)

    def _access_token(self, user_id: int, session_id: str, now: float, ttl: int | None = None,
                      kind: str = ACCESS) -> str:
        claims = {"sub": str(user_id), "sid": session_id, "iat": int(now),
                  "exp": int(now) + (ttl or self.settings.access_token_ttl), "typ": kind}
        return jwt.encode(claims, self._secret, algorithm=JWT_ALGORITHM)

    def refresh(self, refresh_token: str) -> TokenPair:
        session_id, _, _ = refresh_token.partition(".")
        now = self.clock()
        reused = False
        with self.db.write() as conn:
            session = repo.session_by_id(conn, session_id) if session_id else None
            if not session or session["revoked_at"] is not None or session["expires_at"] < now:
                raise Unauthorized("The session has ended; log in again.")
            presented = _digest(refresh_token)
            if not hmac.compare_digest(presented, session["refresh_hash"]):
                # An old (rotated) token came back: someone else holds it. End the session
                # (committed before answering, so the revocation sticks).
                repo.revoke_session(conn, session_id, now)
                reused = True
        if reused:
            raise Unauthorized("Refresh token reuse detected; the session was revoked.")
        with self.db.write() as conn:
            new_refresh = f"{session_id}.{secrets.token_urlsafe(32)}"
            if not repo.rotate_refresh(conn, session_id, presented, _digest(new_refresh), now,
                                       now + self.settings.refresh_token_ttl):
                raise Unauthorized("The session has ended; log in again.")
        user_id = session["user_id"]
        return TokenPair(self._access_token(user_id, session_id, now), new_refresh,
                         self.settings.access_token_ttl)

    def logout(self, principal: Principal) -> None:
        with self.db.write() as conn:
            repo.revoke_session(conn, principal.session_id, self.clock())

    def authenticate(self, token: str, kind: str = ACCESS) -> Principal:
        """Check an access token (or, with ``kind=BROWSER``, a browser session's cookie
        token) and its session; ``Unauthorized`` for anything wrong."""
        if not token.isascii():
            # A real token is ASCII; anything else (a lone surrogate from a WebSocket
            # message cannot even be encoded) is refused before the JWT library sees it.
            raise Unauthorized("The access token is invalid or expired.")
        try:
            claims = jwt.decode(token, self._secret, algorithms=[JWT_ALGORITHM],
                                options={"require": ["exp", "iat", "sub", "sid"]})
        except jwt.PyJWTError as exc:
            raise Unauthorized("The access token is invalid or expired.") from exc
        sub = claims.get("sub")
        # Only the server signs tokens, but a malformed id must still be a 401, never a 500.
        if (claims.get("typ") != kind or not isinstance(sub, str) or not sub.isascii()
                or not sub.isdigit() or len(sub) > 18):
            raise Unauthorized("The access token is invalid or expired.")
        with self.db.read() as conn:
            row = repo.caller(conn, str(claims["sid"]), int(sub))
        if not row or row["revoked_at"] is not None or row["namespace_id"] is None:
            raise Unauthorized("The session has ended; log in again.")
        if row["disabled_at"] is not None:
            raise Unauthorized("This account is disabled; ask the server's administrator.")
        return Principal(row["id"], row["username"], row["session_id"], row["namespace_id"],
                         bool(row["is_admin"]), row["quota_bytes"])

    def me(self, principal: Principal) -> dict[str, Any]:
        with self.db.read() as conn:
            user = repo.user_by_id(conn, principal.user_id)
        assert user is not None
        return {"username": user["username"], "created_at": user["created_at"],
                "quota_bytes": user["quota_bytes"], "is_admin": bool(user["is_admin"])}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
