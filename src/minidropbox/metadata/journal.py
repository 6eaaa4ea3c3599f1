"""The change journal: one row per change, per namespace, with a gap-free monotonic cursor.

A shared folder is a namespace of its own, mounted into each member's tree at a path of their
choosing. Each change to it is appended to its own journal *and* copied, in the same
transaction, into the journal of every member's root namespace at their mount path, so every
member's feed (``/changes``, long-poll, WebSocket) is still one gap-free journal.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from minidropbox.metadata.tables import entries, journal, namespaces

_BUMP_HEAD = (update(namespaces).where(namespaces.c.id == bindparam("ns_id"))
              .values(journal_head=namespaces.c.journal_head + 1)
              .returning(namespaces.c.journal_head))
# The head and the namespace's usage counters in one update, for a change that moves both.
_BUMP_HEAD_AND_USAGE = (update(namespaces).where(namespaces.c.id == bindparam("ns_id"))
                        .values(journal_head=namespaces.c.journal_head + 1,
                                entry_count=namespaces.c.entry_count + bindparam("d_entries"),
                                chunk_refs=namespaces.c.chunk_refs + bindparam("d_refs"))
                        .returning(namespaces.c.journal_head))
_INSERT = insert(journal)
_LOCK = select(namespaces.c.id).where(namespaces.c.id == bindparam("ns_id")).with_for_update()
_MOUNTS = select(entries.c.namespace_id, entries.c.path).where(
    entries.c.mount_namespace_id == bindparam("ns_id"), entries.c.deleted_at.is_(None))
HEADS = "minidropbox.journal_heads"  # conn.info key: the heads this transaction moved
FIXED_MOUNTS = "minidropbox.journal_mounts"  # conn.info key: mounts read once (mounts_fixed)


def lock_namespace(conn: Connection, namespace_id: int) -> None:
    """Serialise writers to one namespace (a row lock on PostgreSQL; SQLite has one writer)."""
    conn.execute(_LOCK, {"ns_id": namespace_id})


@contextmanager
def mounts_fixed(conn: Connection, namespace_id: int) -> Iterator[None]:
    """Read once who mounts ``namespace_id`` for the appends inside: for a caller that holds
    the namespace's lock (``lock_namespace``: sharing and leaving take it too) and changes
    no mount point itself, such as a batch of commits, which otherwise asked once per file."""
    fixed = conn.info.setdefault(FIXED_MOUNTS, {})
    fixed[namespace_id] = conn.execute(_MOUNTS, {"ns_id": namespace_id}).all()
    try:
        yield
    finally:
        fixed.pop(namespace_id, None)


def append(conn: Connection, namespace_id: int, op: str, path: str, kind: str, now: float, *,
           from_path: str | None = None, version: int | None = None, size: int | None = None,
           content_hash: str | None = None, entries: int = 0, chunk_refs: int = 0) -> int:
    """Append a change in the caller's transaction and return its cursor; a change to a
    shared folder is copied to each member's journal at their mount path. ``entries`` and
    ``chunk_refs``: what the change adds to ``namespace_id``'s usage counters
    (``metadata/usage.py``), moved by the same update as its journal head."""
    row = {"op": op, "path": path, "from_path": from_path, "kind": kind, "version": version,
           "size": size, "content_hash": content_hash, "created_at": now}
    seq = _append(conn, namespace_id, row, entries, chunk_refs)
    fixed = conn.info.get(FIXED_MOUNTS, {})
    mounts = fixed[namespace_id] if namespace_id in fixed else conn.execute(
        _MOUNTS, {"ns_id": namespace_id}).all()
    for member_ns, mount in mounts:
        _append(conn, member_ns, {**row, "path": _under(mount, path),
                                  "from_path": _under(mount, from_path)})
    return seq


def _append(conn: Connection, namespace_id: int, row: dict[str, Any], entries: int = 0,
            chunk_refs: int = 0) -> int:
    if entries or chunk_refs:
        seq = int(conn.execute(_BUMP_HEAD_AND_USAGE, {
            "ns_id": namespace_id, "d_entries": entries, "d_refs": chunk_refs}).scalar_one())
    else:
        seq = int(conn.execute(_BUMP_HEAD, {"ns_id": namespace_id}).scalar_one())
    conn.execute(_INSERT, {"namespace_id": namespace_id, "seq": seq, **row})
    conn.info.setdefault(HEADS, {})[namespace_id] = seq
    return seq


def _under(mount: str, path: str | None) -> str | None:
    if path is None:
        return None
    return mount if path == "/" else mount + path


def moved_heads(conn: Connection) -> dict[int, int]:
    """The journal heads this connection's transaction moved (namespace → newest cursor),
    forgotten as they are read: whoever commits the transaction announces them."""
    heads: dict[int, int] = conn.info.pop(HEADS, {})
    return heads


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
