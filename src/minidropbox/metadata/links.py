"""Repository functions for share links (``share_links``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from minidropbox.metadata.tables import share_links, users


def create(conn: Connection, **values: Any) -> int:
    return int(conn.execute(insert(share_links).returning(share_links.c.id), values)
               .scalar_one())


def by_token_hash(conn: Connection, token_hash: str) -> dict[str, Any] | None:
    """A link that is not revoked, with its owner's name and quota."""
    row = conn.execute(
        select(share_links, users.c.username.label("owner_name"),
               users.c.quota_bytes.label("owner_quota"))
        .join(users, users.c.id == share_links.c.owner_id)
        .where(share_links.c.token_hash == token_hash, share_links.c.revoked_at.is_(None))
    ).mappings().first()
    return dict(row) if row else None


def of_owner(conn: Connection, owner_id: int, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(select(share_links).where(
        share_links.c.owner_id == owner_id, share_links.c.revoked_at.is_(None))
        .order_by(share_links.c.id).limit(limit)).mappings().all()
    return [dict(r) for r in rows]


def count_of_owner(conn: Connection, owner_id: int) -> int:
    return int(conn.execute(select(func.count()).select_from(share_links).where(
        share_links.c.owner_id == owner_id, share_links.c.revoked_at.is_(None))).scalar_one())


def revoke(conn: Connection, owner_id: int, public_id: str, now: float) -> bool:
    result = conn.execute(update(share_links).where(
        share_links.c.public_id == public_id, share_links.c.owner_id == owner_id,
        share_links.c.revoked_at.is_(None)).values(revoked_at=now))
    return bool(result.rowcount)


def touch(conn: Connection, link_id: int, now: float) -> None:
    conn.execute(update(share_links).where(share_links.c.id == link_id)
                 .values(last_used_at=now))


def count_download(conn: Connection, link_id: int, now: float) -> bool:
    """Count one download, unless the link's limit is reached (then False). One statement,
    so two downloads racing for the last one cannot both get it."""
    result = conn.execute(update(share_links).where(
        share_links.c.id == link_id,
        share_links.c.max_downloads.is_(None)
        | (share_links.c.downloads < share_links.c.max_downloads))
        .values(downloads=share_links.c.downloads + 1, last_used_at=now))
    return bool(result.rowcount)

