"""What a namespace's metadata takes: its entries (live and in the trash) and the chunk
references of its versions. Counters on the namespace row, kept by ``entries`` as rows come
and go, so the metadata quota is one primary-key read."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from minidropbox.metadata.tables import namespaces


@dataclass(frozen=True)
class Usage:
    entries: int
    chunk_refs: int


def of(conn: Connection, namespace_id: int) -> Usage:
    row = conn.execute(select(namespaces.c.entry_count, namespaces.c.chunk_refs).where(
        namespaces.c.id == namespace_id)).one()
    return Usage(int(row[0]), int(row[1]))


def add(conn: Connection, namespace_id: int, entries: int = 0, chunk_refs: int = 0) -> None:
    if entries or chunk_refs:
        conn.execute(update(namespaces).where(namespaces.c.id == namespace_id).values(
            entry_count=namespaces.c.entry_count + entries,
            chunk_refs=namespaces.c.chunk_refs + chunk_refs))
