"""What a namespace's metadata takes: its entries (live and in the trash) and the chunk
references of its versions. Counters on the namespace row, kept by ``entries`` as rows come
and go, so the metadata quota is one primary-key read. Also the logical byte sums
``minidropbox du`` shows (the quota itself counts stored chunks: ``chunks.usage``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, case, func, or_, select, update

from minidropbox.metadata.tables import entries, namespaces, versions


@dataclass(frozen=True)
class Usage:
    entries: int
    chunk_refs: int


# Built once: both run several times per commit, and building a statement costs more than
# running it on SQLite (a batch of 1,000 small files spent a fifth of its time here).
_OF = select(namespaces.c.entry_count, namespaces.c.chunk_refs).where(
    namespaces.c.id == bindparam("ns"))
_ADD = update(namespaces).where(namespaces.c.id == bindparam("ns")).values(
    entry_count=namespaces.c.entry_count + bindparam("d_entries"),
    chunk_refs=namespaces.c.chunk_refs + bindparam("d_refs"))


def of(conn: Connection, namespace_id: int) -> Usage:
    row = conn.execute(_OF, {"ns": namespace_id}).one()
    return Usage(int(row[0]), int(row[1]))


def add(conn: Connection, namespace_id: int, entries: int = 0, chunk_refs: int = 0) -> None:
    if entries or chunk_refs:
        conn.execute(_ADD, {"ns": namespace_id, "d_entries": entries, "d_refs": chunk_refs})


@dataclass(frozen=True)
class ByteSums:
    """Logical sizes in the namespaces a user owns (their tree and the folders they share),
    each version counted at its full size: ``current`` the live files as they are now,
    ``versions`` the older versions of live files, ``trash`` every version of what is in
    the trash."""

    files: int
    current: int
    versions: int
    trash: int


def byte_sums(conn: Connection, user_id: int) -> ByteSums:
    owned = select(namespaces.c.id).where(namespaces.c.owner_id == user_id).scalar_subquery()
    live = entries.c.deleted_at.is_(None)
    files, current = conn.execute(
        select(func.count(), func.coalesce(func.sum(entries.c.size), 0)).where(
            entries.c.namespace_id.in_(owned), entries.c.kind == "file", live)).one()
    older, trash = conn.execute(
        select(func.coalesce(func.sum(case((live, versions.c.size), else_=0)), 0),
               func.coalesce(func.sum(case((live, 0), else_=versions.c.size)), 0))
        .select_from(versions.join(entries, entries.c.id == versions.c.entry_id))
        .where(entries.c.namespace_id.in_(owned),
               or_(~live, versions.c.number != entries.c.version))).one()
    return ByteSums(int(files), int(current), int(older), int(trash))
