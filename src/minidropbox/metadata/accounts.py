"""Repository functions for users, sessions and namespaces."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from minidropbox.core.errors import AlreadyExists
from minidropbox.metadata.tables import namespaces, sessions, users


def create_user(conn: Connection, username: str, password_hash: str, now: float,
                quota_bytes: int | None = None) -> int:
    """Insert a user and their root namespace; ``AlreadyExists`` on a taken name."""
    try:
        with conn.begin_nested():
            user_id = conn.execute(
                insert(users).values(
                    username=username, password_hash=password_hash, created_at=now,
                    password_changed_at=now, quota_bytes=quota_bytes,
                ).returning(users.c.id)
            ).scalar_one()
    except IntegrityError as exc:
        raise AlreadyExists("That username is taken.") from exc
    conn.execute(insert(namespaces).values(owner_id=user_id, created_at=now))
    return int(user_id)


def user_by_name(conn: Connection, username: str) -> dict[str, Any] | None:
    row = conn.execute(select(users).where(users.c.username == username)).mappings().first()
    return dict(row) if row else None


def user_by_id(conn: Connection, user_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(users).where(users.c.id == user_id)).mappings().first()
    return dict(row) if row else None


def set_password(conn: Connection, user_id: int, password_hash: str, now: float) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(
        password_hash=password_hash, password_changed_at=now))


def root_namespace(conn: Connection, user_id: int) -> int:
    return int(conn.execute(
        select(namespaces.c.id).where(namespaces.c.owner_id == user_id)
        .order_by(namespaces.c.id).limit(1)
    ).scalar_one())


def create_session(conn: Connection, session_id: str, user_id: int, refresh_hash: str,
                   device: str, now: float, expires_at: float) -> None:
    conn.execute(insert(sessions).values(
        id=session_id, user_id=user_id, refresh_hash=refresh_hash, device=device,
        created_at=now, last_used_at=now, expires_at=expires_at,
    ))


def session_by_id(conn: Connection, session_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(sessions).where(sessions.c.id == session_id)).mappings().first()
    return dict(row) if row else None


# Built once: this runs on every authenticated request. The root namespace is the user's
# oldest (lowest id), as in ``root_namespace``.
_CALLER = (
    select(sessions.c.id.label("session_id"), sessions.c.revoked_at, users.c.id,
           users.c.username, users.c.is_admin, users.c.quota_bytes, users.c.disabled_at,
           select(func.min(namespaces.c.id)).where(namespaces.c.owner_id == users.c.id)
           .scalar_subquery().label("namespace_id"))
    .join(users, users.c.id == sessions.c.user_id)
    .where(sessions.c.id == bindparam("sid"), users.c.id == bindparam("uid"))
)


def caller(conn: Connection, session_id: str, user_id: int) -> dict[str, Any] | None:
    """The session (``session_id``, ``revoked_at``), its user and their root namespace in
    one query; None unless the session exists and belongs to ``user_id``."""
    row = conn.execute(_CALLER, {"sid": session_id, "uid": user_id}).mappings().first()
    return dict(row) if row else None


def rotate_refresh(conn: Connection, session_id: str, old_hash: str, new_hash: str,
                   now: float, expires_at: float) -> bool:
    """Swap the refresh hash if ``old_hash`` is still current; False means reuse or race."""
    result = conn.execute(
        update(sessions)
        .where(sessions.c.id == session_id, sessions.c.refresh_hash == old_hash,
               sessions.c.revoked_at.is_(None))
        .values(refresh_hash=new_hash, last_used_at=now, expires_at=expires_at)
    )
    return result.rowcount == 1


def revoke_session(conn: Connection, session_id: str, now: float) -> None:
    conn.execute(update(sessions).where(sessions.c.id == session_id,
                                        sessions.c.revoked_at.is_(None)).values(revoked_at=now))


def revoke_other_sessions(conn: Connection, user_id: int, keep: str | None, now: float) -> None:
    stmt = update(sessions).where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
    if keep:
        stmt = stmt.where(sessions.c.id != keep)
    conn.execute(stmt.values(revoked_at=now))
