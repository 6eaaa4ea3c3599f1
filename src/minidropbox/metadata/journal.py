"""The change journal: one row per change, per namespace, with a gap-free monotonic cursor."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from minidropbox.metadata.tables import journal, namespaces

_BUMP_HEAD = (update(namespaces).where(namespaces.c.id == bindparam("ns_id"))
              .values(journal_head=namespaces.c.journal_head + 1)
              .returning(namespaces.c.journal_head))
_INSERT = insert(journal)
_LOCK = select(namespaces.c.id).where(namespaces.c.id == bindparam("ns_id")).with_for_update()


def lock_namespace(conn: Connection, namespace_id: int) -> None:
    """Serialise writers to one namespace (a row lock on PostgreSQL; SQLite has one writer)."""
    conn.execute(_LOCK, {"ns_id": namespace_id})


def append(conn: Connection, namespace_id: int, op: str, path: str, kind: str, now: float, *,
           from_path: str | None = None, version: int | None = None, size: int | None = None,
           content_hash: str | None = None) -> int:
    """Append a change in the caller's transaction and return its cursor."""
    seq = conn.execute(_BUMP_HEAD, {"ns_id": namespace_id}).scalar_one()
    conn.execute(_INSERT, {
        "namespace_id": namespace_id, "seq": seq, "op": op, "path": path,
        "from_path": from_path, "kind": kind, "version": version, "size": size,
        "content_hash": content_hash, "created_at": now})
    return int(seq)


def head(conn: Connection, namespace_id: int) -> int:
    return int(conn.execute(select(namespaces.c.journal_head)
                            .where(namespaces.c.id == namespace_id)).scalar_one())


def oldest(conn: Connection, namespace_id: int) -> int | None:
    """The oldest retained cursor (None when the journal is empty)."""
    value = conn.execute(select(func.min(journal.c.seq))
                         .where(journal.c.namespace_id == namespace_id)).scalar()
    return int(value) if value is not None else None


def since(conn: Connection, namespace_id: int, cursor: int, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(journal).where(journal.c.namespace_id == namespace_id, journal.c.seq > cursor)
        .order_by(journal.c.seq).limit(limit)
    ).mappings().all()
    return [dict(r) for r in rows]


def trim(conn: Connection, namespace_id: int, keep: int) -> int:
    """Delete all but the newest ``keep`` changes of a namespace; returns rows deleted.

    The journal stays gap-free (only a prefix goes), so a cursor is resumable exactly when it
    is at or after ``oldest() - 1``.
    """
    below = head(conn, namespace_id) - keep
    if below <= 0:
        return 0
    result = conn.execute(delete(journal).where(journal.c.namespace_id == namespace_id,
                                                journal.c.seq <= below))
    return int(result.rowcount or 0)


def namespaces_longer_than(conn: Connection, keep: int) -> list[int]:
    """Namespaces whose journal may hold more than ``keep`` changes."""
    rows = conn.execute(select(namespaces.c.id).where(namespaces.c.journal_head > keep)
                        .order_by(namespaces.c.id)).all()
    return [int(r[0]) for r in rows]
