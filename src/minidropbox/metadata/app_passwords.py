"""Repository functions for app passwords (per-device WebDAV credentials)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from minidropbox.core.errors import AlreadyExists
from minidropbox.metadata.tables import app_passwords, namespaces, users


def create(conn: Connection, user_id: int, name: str, secret_hash: str, now: float) -> int:
    """Insert one; ``AlreadyExists`` when the user already has one of that name."""
    try:
        with conn.begin_nested():
            return int(conn.execute(
                insert(app_passwords).values(user_id=user_id, name=name,
                                             secret_hash=secret_hash, created_at=now)
                .returning(app_passwords.c.id)).scalar_one())
    except IntegrityError as exc:
        raise AlreadyExists(f"An app password named {name!r} exists; revoke it first.") from exc


def count(conn: Connection, user_id: int) -> int:
    return int(conn.execute(select(func.count()).select_from(app_passwords)
                            .where(app_passwords.c.user_id == user_id)).scalar_one())


def list_for(conn: Connection, user_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(app_passwords.c.name, app_passwords.c.created_at, app_passwords.c.last_used_at)
        .where(app_passwords.c.user_id == user_id).order_by(app_passwords.c.name)).mappings()
    return [dict(r) for r in rows]


def revoke(conn: Connection, user_id: int, name: str) -> bool:
    result = conn.execute(delete(app_passwords).where(app_passwords.c.user_id == user_id,
                                                      app_passwords.c.name == name))
    return result.rowcount == 1


# One query per WebDAV request: the password's row, its user and their root namespace. Built
# once, with bind parameters (building a statement costs more than running it on SQLite).
_CALLER = (
    select(app_passwords.c.id.label("app_password_id"), app_passwords.c.last_used_at,
           users.c.id, users.c.username, users.c.is_admin, users.c.quota_bytes,
           users.c.disabled_at,
           select(func.min(namespaces.c.id)).where(namespaces.c.owner_id == users.c.id)
           .scalar_subquery().label("namespace_id"))
    .join(users, users.c.id == app_passwords.c.user_id)
    .where(app_passwords.c.secret_hash == bindparam("secret_hash"),
           users.c.username == bindparam("username"))
)


def caller(conn: Connection, username: str, secret_hash: str) -> dict[str, Any] | None:
    """The user ``username`` if ``secret_hash`` is one of their app passwords, else None."""
    row = conn.execute(_CALLER, {"secret_hash": secret_hash,
                                 "username": username}).mappings().first()
    return dict(row) if row else None


def touch(conn: Connection, app_password_id: int, now: float) -> None:
    conn.execute(update(app_passwords).where(app_passwords.c.id == app_password_id)
                 .values(last_used_at=now))
