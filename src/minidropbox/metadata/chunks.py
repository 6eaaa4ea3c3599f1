"""Repository functions for chunks and who owns them (``chunks``, ``user_chunks``): dedup and
commit checks, used bytes, recording an uploaded chunk. Replicas and the repair queue are in
``metadata/replicas.py``, storage nodes in ``metadata/nodes.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Exists,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.exc import IntegrityError

from minidropbox.metadata import upserts
from minidropbox.metadata.replicas import add_replica, in_batches, set_replica_ok
from minidropbox.metadata.tables import (
    chunks,
    entries,
    namespaces,
    nodes,
    repair_queue,
    replicas,
    user_chunks,
    version_chunks,
    versions,
)


def owned_with_replica(conn: Connection, user_id: int, hashes: list[str]) -> set[str]:
    """The hashes this user may reference that still have at least one good replica."""
    present: set[str] = set()
    for batch in in_batches(hashes):
        rows = conn.execute(
            select(user_chunks.c.chunk_hash).distinct()
            .join(replicas, replicas.c.chunk_hash == user_chunks.c.chunk_hash)
            .where(user_chunks.c.user_id == user_id, user_chunks.c.chunk_hash.in_(batch),
                   replicas.c.state == "ok")
        ).all()
        present.update(r[0] for r in rows)
    return present


def owned_sizes(conn: Connection, user_id: int, hashes: list[str]) -> dict[str, int]:
    """Sizes of the chunks in ``hashes`` this user may reference in a commit.

    Like ``owned_with_replica`` (what ``missing`` answers), a chunk counts only while at least
    one replica is not known to be bad: a version is never committed on a chunk with no intact
    copy, and the client is told to upload it again instead.
    """
    sizes: dict[str, int] = {}
    for batch in in_batches(sorted(set(hashes))):
        rows = conn.execute(_OWNED_SIZES, {"user_id": user_id, "hashes": batch}).all()
        sizes.update((r[0], int(r[1])) for r in rows)
    return sizes


# The statements a small file's upload and commit run, built once (building one costs more
# than running it on SQLite); lists go in as expanding parameters.
_OWNED_SIZES = (
    select(chunks.c.hash, chunks.c.size)
    .join(user_chunks, user_chunks.c.chunk_hash == chunks.c.hash)
    .where(user_chunks.c.user_id == bindparam("user_id"),
           chunks.c.hash.in_(bindparam("hashes", expanding=True)),
           select(replicas.c.chunk_hash).where(replicas.c.chunk_hash == chunks.c.hash,
                                               replicas.c.state == "ok").exists()))
_USER_OWNS = select(user_chunks.c.chunk_hash).where(
    user_chunks.c.user_id == bindparam("user_id"),
    user_chunks.c.chunk_hash == bindparam("chunk_hash"))
_OWNED_AMONG = select(user_chunks.c.chunk_hash).where(
    user_chunks.c.user_id == bindparam("user_id"),
    user_chunks.c.chunk_hash.in_(bindparam("hashes", expanding=True)))


def sizes(conn: Connection, hashes: list[str]) -> dict[str, int]:
    """The sizes of the known chunks among ``hashes``."""
    out: dict[str, int] = {}
    for batch in in_batches(sorted(set(hashes))):
        rows = conn.execute(select(chunks.c.hash, chunks.c.size)
                            .where(chunks.c.hash.in_(batch))).all()
        out.update((r[0], int(r[1])) for r in rows)
    return out


def user_owns(conn: Connection, user_id: int, chunk_hash: str) -> bool:
    return conn.execute(_USER_OWNS, {"user_id": user_id,
                                     "chunk_hash": chunk_hash}).first() is not None


def owned_among(conn: Connection, user_id: int, hashes: list[str]) -> set[str]:
    """The hashes in ``hashes`` this user has proven possession of."""
    out: set[str] = set()
    for batch in in_batches(sorted(set(hashes))):
        rows = conn.execute(_OWNED_AMONG, {"user_id": user_id, "hashes": batch}).all()
        out.update(r[0] for r in rows)
    return out


def _committed(user_id: int, chunk_hash: ColumnElement[str]) -> Exists:
    """A version in this user's files references the chunk: a version in a namespace they own
    (their tree, a folder they share: the owner pays for it) or one they made (an editor's
    upload into someone's shared folder counts for the editor too). Never a version of
    anyone else's, so what counts says nothing about other accounts' chunks."""
    return (select(version_chunks.c.chunk_hash)
            .join(versions, versions.c.id == version_chunks.c.version_id)
            .join(entries, entries.c.id == versions.c.entry_id)
            .join(namespaces, namespaces.c.id == entries.c.namespace_id)
            .where(version_chunks.c.chunk_hash == chunk_hash,
                   or_(namespaces.c.owner_id == user_id, versions.c.author_id == user_id))
            .exists())


@dataclass(frozen=True)
class ChunkUsage:
    """A user's chunks, each distinct chunk counted once: ``committed`` bytes are what their
    versions (current, old, trashed) reference, which is what the quota counts; ``staged``
    bytes were sent but no version of theirs references them (an upload not committed yet,
    or one that failed), which GC deletes after its grace period."""

    committed: int
    staged: int


def usage(conn: Connection, user_id: int) -> ChunkUsage:
    counted = _committed(user_id, user_chunks.c.chunk_hash)
    row = conn.execute(
        select(func.coalesce(func.sum(case((counted, chunks.c.size), else_=0)), 0),
               func.coalesce(func.sum(case((counted, 0), else_=chunks.c.size)), 0))
        .select_from(user_chunks.join(chunks, user_chunks.c.chunk_hash == chunks.c.hash))
        .where(user_chunks.c.user_id == user_id)).one()
    return ChunkUsage(int(row[0]), int(row[1]))


def used_bytes(conn: Connection, user_id: int) -> int:
    """The bytes the quota counts: distinct chunks the user's versions reference."""
    return usage(conn, user_id).committed


def committed_among(conn: Connection, user_id: int, hashes: list[str]) -> set[str]:
    """The hashes in ``hashes`` that already count for this user (see ``_committed``)."""
    out: set[str] = set()
    for batch in in_batches(sorted(set(hashes))):
        rows = conn.execute(select(chunks.c.hash).where(
            chunks.c.hash.in_(batch), _committed(user_id, chunks.c.hash))).all()
        out.update(r[0] for r in rows)
    return out


def release(conn: Connection, user_id: int, hashes: list[str]) -> None:
    """Forget that ``user_id`` holds those of ``hashes`` no version of theirs references any
    more (their versions were purged): to use them again they send the bytes again."""
    for batch in in_batches(hashes):
        gone = select(chunks.c.hash).where(chunks.c.hash.in_(batch),
                                           ~_committed(user_id, chunks.c.hash))
        conn.execute(delete(user_chunks).where(user_chunks.c.user_id == user_id,
                                               user_chunks.c.chunk_hash.in_(gone)))


def record_chunk(conn: Connection, chunk_hash: str, size: int, node_names: list[str],
                 user_id: int | None, now: float, kept: Sequence[str] = ()) -> None:
    """After the bytes are durable on the nodes: the chunk, its replicas, and its owner
    (None: nobody, so only garbage collection will ever look at it). ``kept``: nodes that
    held a good copy already and were not written, whose rows stay as they are."""
    ensure_chunk(conn, chunk_hash, size, now)
    node_ids = dict(conn.execute(select(nodes.c.name, nodes.c.id)
                                 .where(nodes.c.name.in_([*node_names, *kept]))).all())
    for name in node_names:
        set_replica_ok(conn, chunk_hash, node_ids[name], now)
    for name in kept:
        add_replica(conn, chunk_hash, node_ids[name], now)
    if user_id is not None:
        grant(conn, user_id, chunk_hash, now)


@dataclass(frozen=True)
class NewChunk:
    """A chunk durable on ``holders`` (node names), to record in one go with others.

    ``kept``: nodes that held a good copy when the upload was admitted and were not written
    again. Their rows are left as they are: one marked bad since (a read or the audit found
    the copy missing) must stay bad, not be turned ``ok`` by an upload that never wrote it."""

    hash: str
    size: int
    holders: list[str]
    kept: list[str] = field(default_factory=list)


def record_chunks(conn: Connection, items: list[NewChunk], user_id: int | None,
                  now: float) -> None:
    """``record_chunk`` for many chunks in a few statements (one per table and window of
    chunks, each an insert that ignores or updates rows already there): a big file's
    thousand chunks cost a handful of round trips, not ten thousand."""
    built = upserts.for_connection(_UPSERTS, conn)
    if built is None:  # a database without insert-or-ignore: row by row
        for item in items:
            record_chunk(conn, item.hash, item.size, item.holders, user_id, now, item.kept)
        return
    if not items:
        return
    names = sorted({n for item in items for n in (*item.holders, *item.kept)})
    node_ids = dict(conn.execute(_NODE_IDS, {"names": names}).all())
    conn.execute(built.chunks,
                 [{"hash": i.hash, "size": i.size, "created_at": now} for i in items])
    for statement, rows in ((built.replicas, [(i.hash, n) for i in items
                                              for n in dict.fromkeys(i.holders)]),
                            (built.kept_replicas, [(i.hash, n) for i in items
                                                   for n in dict.fromkeys(i.kept)])):
        if rows:
            conn.execute(statement, [{"chunk_hash": h, "node_id": node_ids[n], "state": "ok",
                                      "created_at": now} for h, n in rows])
    if user_id is not None:
        conn.execute(built.user_chunks,
                     [{"user_id": user_id, "chunk_hash": i.hash, "created_at": now}
                      for i in items])


_NODE_IDS = select(nodes.c.name, nodes.c.id).where(
    nodes.c.name.in_(bindparam("names", expanding=True)))


@dataclass(frozen=True)
class _Upserts:
    """``record_chunks``'s three statements in one dialect (``metadata/upserts.py``)."""

    chunks: Any
    replicas: Any
    kept_replicas: Any
    user_chunks: Any

    @classmethod
    def build(cls, insert_for: Any) -> _Upserts:
        replica = insert_for(replicas)
        return cls(
            insert_for(chunks).on_conflict_do_nothing(index_elements=["hash"]),
            replica.on_conflict_do_update(index_elements=["chunk_hash", "node_id"],
                                          set_={"state": replica.excluded.state}),
            insert_for(replicas).on_conflict_do_nothing(index_elements=["chunk_hash", "node_id"]),
            insert_for(user_chunks).on_conflict_do_nothing(
                index_elements=["user_id", "chunk_hash"]))


_UPSERTS = upserts.per_dialect(_Upserts.build)


def ensure_chunk(conn: Connection, chunk_hash: str, size: int, now: float) -> None:
    if conn.execute(select(chunks.c.hash).where(chunks.c.hash == chunk_hash)).first() is None:
        try:
            with conn.begin_nested():
                conn.execute(insert(chunks).values(hash=chunk_hash, size=size, created_at=now))
        except IntegrityError:
            pass  # inserted concurrently


def grant(conn: Connection, user_id: int, chunk_hash: str, now: float) -> None:
    """Record that ``user_id`` has proven possession of ``chunk_hash``."""
    if not user_owns(conn, user_id, chunk_hash):
        try:
            with conn.begin_nested():
                conn.execute(insert(user_chunks).values(user_id=user_id, chunk_hash=chunk_hash,
                                                        created_at=now))
        except IntegrityError:
            pass


def grant_many(conn: Connection, user_id: int, hashes: list[str], now: float) -> None:
    """``grant`` for many chunks in one statement that skips those already held (row by
    row on a database without insert-or-ignore)."""
    built = upserts.for_connection(_UPSERTS, conn)
    if built is None:
        for chunk_hash in hashes:
            grant(conn, user_id, chunk_hash, now)
    elif hashes:
        conn.execute(built.user_chunks, [{"user_id": user_id, "chunk_hash": h, "created_at": now}
                                         for h in hashes])


def chunk_size(conn: Connection, chunk_hash: str) -> int | None:
    value = conn.execute(select(chunks.c.size).where(chunks.c.hash == chunk_hash)).scalar()
    return int(value) if value is not None else None


def chunk_page(conn: Connection, after: str, limit: int) -> list[str]:
    """Chunk hashes in ascending order strictly after ``after``."""
    rows = conn.execute(select(chunks.c.hash).where(chunks.c.hash > after)
                        .order_by(chunks.c.hash).limit(limit)).all()
    return [r[0] for r in rows]

def garbage(conn: Connection, cutoff: float, after: str, limit: int,
            only: list[str] | None = None) -> list[tuple[str, int]]:
    """(hash, size) of unreferenced chunks older than ``cutoff``, ascending after ``after``."""
    referenced = exists().where(version_chunks.c.chunk_hash == chunks.c.hash)
    fresh_owner = exists().where(user_chunks.c.chunk_hash == chunks.c.hash,
                                 user_chunks.c.created_at >= cutoff)
    stmt = (select(chunks.c.hash, chunks.c.size)
            .where(chunks.c.created_at < cutoff, ~referenced, ~fresh_owner,
                   chunks.c.hash > after).order_by(chunks.c.hash).limit(limit))
    if only is not None:
        stmt = stmt.where(chunks.c.hash.in_(only))
    return [(h, int(size)) for h, size in conn.execute(stmt).all()]


def delete_unreferenced(conn: Connection, chunk_hash: str) -> bool:
    """Delete a chunk's rows (its replicas and owners cascade) and its queued repair; False
    when a version references it after all (a commit got in first: keep it)."""
    try:
        with conn.begin_nested():
            conn.execute(delete(repair_queue).where(repair_queue.c.chunk_hash == chunk_hash))
            conn.execute(delete(chunks).where(chunks.c.hash == chunk_hash))
    except IntegrityError:
        return False
    return True


def referenced(conn: Connection) -> Iterator[str]:
    """Every chunk some version (current, trashed or historic) references, ascending."""
    rows = conn.execute(select(version_chunks.c.chunk_hash).distinct()
                        .order_by(version_chunks.c.chunk_hash))
    for (chunk_hash,) in rows:
        yield chunk_hash
