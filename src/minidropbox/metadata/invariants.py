"""The invariants of docs/DESIGN.md ("Invariants that run") as one query each.

Each ``Invariant`` names its check as the design doc does, says whether breaking it loses data
(``must``) or is repairable (``should``), and selects the rows that break it: ``count`` says how
many, ``sample`` shows a few. A healthy database at rest selects nothing for any ``must``.
The node-side checks (copies really on their nodes) are in ``service/check.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    String,
    and_,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import aliased

from minidropbox.metadata.tables import (
    chunks,
    entries,
    journal,
    namespaces,
    nodes,
    repair_queue,
    replicas,
    user_chunks,
    users,
    version_chunks,
    versions,
)

MUST, SHOULD = "must", "should"
Query = Select[Any]  # one text column, a row per violation


@dataclass(frozen=True)
class Invariant:
    name: str
    level: str  # MUST: data is lost or wrong when broken; SHOULD: repair or GC restores it
    rule: str
    query: Callable[[int], Query]  # R -> the violating rows

    def count(self, conn: Connection, replicas_wanted: int) -> int:
        found = self.query(replicas_wanted).subquery()
        return int(conn.execute(select(func.count()).select_from(found)).scalar_one())

    def sample(self, conn: Connection, replicas_wanted: int, limit: int) -> list[str]:
        return [str(r[0]) for r in conn.execute(self.query(replicas_wanted).limit(limit))]


def _label(*parts: str | ColumnElement[Any]) -> ColumnElement[str]:
    """One text column describing a violating row, the same on SQLite and PostgreSQL."""
    pieces: list[ColumnElement[str]] = [literal(p, String) if isinstance(p, str)
                                        else cast(p, String) for p in parts]
    text = pieces[0]
    for piece in pieces[1:]:
        text = text.concat(piece)
    return text


def journal_gapless(_: int) -> Query:
    """Namespaces whose retained journal is not exactly ``oldest..journal_head``."""
    spans = (select(journal.c.namespace_id, func.count().label("n"),
                    func.min(journal.c.seq).label("lo"), func.max(journal.c.seq).label("hi"))
             .group_by(journal.c.namespace_id).subquery())
    head = namespaces.c.journal_head
    broken = or_(and_(head > 0, or_(spans.c.n.is_(None), spans.c.hi != head,
                                    spans.c.n != spans.c.hi - spans.c.lo + 1)),
                 and_(head == 0, spans.c.n.is_not(None)))
    return (select(_label("namespace ", namespaces.c.id, " head ", head))
            .select_from(namespaces.outerjoin(spans, spans.c.namespace_id == namespaces.c.id))
            .where(broken).order_by(namespaces.c.id))


def version_chunks_intact(_: int) -> Query:
    """Chunks a version references with no ``ok`` replica on a known node (or no chunk row)."""
    intact = (exists().where(replicas.c.chunk_hash == version_chunks.c.chunk_hash,
                             replicas.c.state == "ok", replicas.c.node_id == nodes.c.id))
    return (select(version_chunks.c.chunk_hash).distinct().where(~intact)
            .order_by(version_chunks.c.chunk_hash))


def current_version(_: int) -> Query:
    """Files (live or trashed) whose current version row is missing or disagrees."""
    current = exists().where(versions.c.entry_id == entries.c.id,
                             versions.c.number == entries.c.version,
                             versions.c.size == entries.c.size,
                             versions.c.content_hash == entries.c.content_hash)
    return (select(_label("namespace ", entries.c.namespace_id, " ", entries.c.path))
            .where(entries.c.kind == "file", ~current).order_by(entries.c.id))


def version_sizes(_: int) -> Query:
    """Versions whose chunks do not add up to their size."""
    total = (select(func.coalesce(func.sum(chunks.c.size), 0))
             .select_from(version_chunks.join(chunks, chunks.c.hash == version_chunks.c.chunk_hash))
             .where(version_chunks.c.version_id == versions.c.id).scalar_subquery())
    return (select(_label("version ", versions.c.id, " size ", versions.c.size))
            .where(versions.c.size != total).order_by(versions.c.id))


def live_parents(_: int) -> Query:
    """Live entries whose parent folder is not a live folder (they would be unreachable)."""
    parent = aliased(entries)
    has_parent = exists().where(parent.c.namespace_id == entries.c.namespace_id,
                                parent.c.path_key == entries.c.parent_key,
                                parent.c.kind == "folder", parent.c.deleted_at.is_(None))
    return (select(_label("namespace ", entries.c.namespace_id, " ", entries.c.path))
            .where(entries.c.deleted_at.is_(None), entries.c.parent_key != "/", ~has_parent)
            .order_by(entries.c.id))


def orphan_replicas(_: int) -> Query:
    """Replica rows naming a chunk or a node that does not exist."""
    chunk = exists().where(chunks.c.hash == replicas.c.chunk_hash)
    node = exists().where(nodes.c.id == replicas.c.node_id)
    return (select(_label(replicas.c.chunk_hash, " on node ", replicas.c.node_id))
            .where(or_(~chunk, ~node)).order_by(replicas.c.chunk_hash))


def orphan_ownership(_: int) -> Query:
    """Ownership rows naming a chunk or a user that does not exist."""
    chunk = exists().where(chunks.c.hash == user_chunks.c.chunk_hash)
    user = exists().where(users.c.id == user_chunks.c.user_id)
    return (select(_label(user_chunks.c.chunk_hash, " of user ", user_chunks.c.user_id))
            .where(or_(~chunk, ~user)).order_by(user_chunks.c.chunk_hash))


def replication(wanted: int) -> Query:
    """Chunks with fewer than R ``ok`` copies on nodes that are not being drained."""
    counted = (select(func.count()).select_from(replicas.join(nodes,
                                                              nodes.c.id == replicas.c.node_id))
               .where(replicas.c.chunk_hash == chunks.c.hash, replicas.c.state == "ok",
                      ~nodes.c.draining).scalar_subquery())
    return select(chunks.c.hash).where(counted < wanted).order_by(chunks.c.hash)


def bad_replicas(_: int) -> Query:
    """Copies marked bad that repair has not dropped yet."""
    return (select(_label(replicas.c.chunk_hash, " on ", nodes.c.name))
            .select_from(replicas.join(nodes, nodes.c.id == replicas.c.node_id))
            .where(replicas.c.state != "ok").order_by(replicas.c.chunk_hash))


def orphan_queue(_: int) -> Query:
    """Repair-queue rows for a chunk that no longer exists."""
    chunk = exists().where(chunks.c.hash == repair_queue.c.chunk_hash)
    return select(repair_queue.c.chunk_hash).where(~chunk).order_by(repair_queue.c.chunk_hash)


INVARIANTS = (
    Invariant("journal_gapless", MUST, "each namespace's journal is gap-free up to its head",
              journal_gapless),
    Invariant("version_chunks", MUST,
              "every chunk a version references has an ok replica on a known node",
              version_chunks_intact),
    Invariant("current_version", MUST,
              "every file has its current version, with the size and hash the entry shows",
              current_version),
    Invariant("version_sizes", MUST, "a version's chunks add up to its size", version_sizes),
    Invariant("live_parents", MUST, "every live entry's parent is a live folder", live_parents),
    Invariant("orphan_replicas", MUST, "no replica row names a missing chunk or node",
              orphan_replicas),
    Invariant("orphan_ownership", MUST, "no ownership row names a missing chunk or user",
              orphan_ownership),
    Invariant("replication", SHOULD, "every chunk has R ok copies on nodes not being drained",
              replication),
    Invariant("bad_replicas", SHOULD, "no copy is marked bad (repair drops them)", bad_replicas),
    Invariant("orphan_queue", SHOULD, "the repair queue names only existing chunks",
              orphan_queue),
)
