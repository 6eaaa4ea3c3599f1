"""Repository functions for operators' account management: the user list, disabling,
quotas, deleting an account, and sign-up invites."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from minidropbox.metadata.tables import invites, share_members, shared_folders, users


def page(conn: Connection, after: str, limit: int) -> list[dict[str, Any]]:
    """Users in name order, after ``after``, at most ``limit``."""
    rows = conn.execute(
        select(users.c.id, users.c.username, users.c.is_admin, users.c.quota_bytes,
               users.c.created_at, users.c.disabled_at)
        .where(users.c.username > after).order_by(users.c.username).limit(limit)).mappings()
    return [dict(r) for r in rows]


def by_name(conn: Connection, username: str) -> dict[str, Any] | None:
    row = conn.execute(select(users.c.id, users.c.username, users.c.is_admin,
                              users.c.quota_bytes, users.c.created_at, users.c.disabled_at)
                       .where(users.c.username == username)).mappings().first()
    return dict(row) if row else None


def set_disabled(conn: Connection, user_id: int, when: float | None) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(disabled_at=when))


def set_quota(conn: Connection, user_id: int, quota_bytes: int | None) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(quota_bytes=quota_bytes))


def shared_with_others(conn: Connection, user_id: int) -> int:
    """How many folders this user owns that other accounts are members of."""
    return int(conn.execute(
        select(func.count(func.distinct(shared_folders.c.namespace_id)))
        .join(share_members, share_members.c.namespace_id == shared_folders.c.namespace_id)
        .where(shared_folders.c.owner_id == user_id, share_members.c.user_id != user_id))
        .scalar_one())


def delete_user(conn: Connection, user_id: int) -> None:
    """The user row; sessions, namespaces (with every entry and version), chunk ownership,
    app passwords and memberships go with it (ON DELETE CASCADE)."""
    conn.execute(delete(users).where(users.c.id == user_id))


def create_invite(conn: Connection, code_hash: str, created_by: int, now: float,
                  expires_at: float) -> None:
    conn.execute(insert(invites).values(code_hash=code_hash, created_by=created_by,
                                        created_at=now, expires_at=expires_at))


def use_invite(conn: Connection, code_hash: str, username: str, now: float) -> bool:
    """Spend an unused, unexpired invite (in the sign-up's transaction); False if none."""
    result = conn.execute(update(invites).where(
        invites.c.code_hash == code_hash, invites.c.used_at.is_(None),
        invites.c.expires_at > now).values(used_at=now, used_by=username))
    return result.rowcount == 1
