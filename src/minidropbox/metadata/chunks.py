"""Repository functions for chunks, their replicas, user ownership, and the repair queue."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from minidropbox.metadata.tables import chunks, nodes, repair_queue, replicas, user_chunks


def _chunked(items: list[str], size: int = 500) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def owned_with_replica(conn: Connection, user_id: int, hashes: list[str]) -> set[str]:
    """The hashes this user may reference that still have at least one good replica."""
    present: set[str] = set()
    for batch in _chunked(hashes):
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
    for batch in _chunked(sorted(set(hashes))):
        intact = select(replicas.c.chunk_hash).where(replicas.c.chunk_hash == chunks.c.hash,
                                                     replicas.c.state == "ok").exists()
        rows = conn.execute(
            select(chunks.c.hash, chunks.c.size)
            .join(user_chunks, user_chunks.c.chunk_hash == chunks.c.hash)
            .where(user_chunks.c.user_id == user_id, chunks.c.hash.in_(batch), intact)).all()
        sizes.update((r[0], int(r[1])) for r in rows)
    return sizes


def user_owns(conn: Connection, user_id: int, chunk_hash: str) -> bool:
    return conn.execute(select(user_chunks.c.chunk_hash).where(
        user_chunks.c.user_id == user_id, user_chunks.c.chunk_hash == chunk_hash)).first() \
        is not None


def used_bytes(conn: Connection, user_id: int) -> int:
    """Bytes this user's chunks take, each distinct chunk counted once."""
    value = conn.execute(select(func.coalesce(func.sum(chunks.c.size), 0))
                         .join(user_chunks, user_chunks.c.chunk_hash == chunks.c.hash)
                         .where(user_chunks.c.user_id == user_id)).scalar_one()
    return int(value)


def good_replicas(conn: Connection, chunk_hash: str) -> list[str]:
    """Names of the nodes holding a good copy of ``chunk_hash``."""
    rows = conn.execute(select(nodes.c.name).join(replicas, replicas.c.node_id == nodes.c.id)
                        .where(replicas.c.chunk_hash == chunk_hash, replicas.c.state == "ok")
                        ).all()
    return [r[0] for r in rows]


def replicas_for(conn: Connection, hashes: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {h: [] for h in hashes}
    for batch in _chunked(sorted(set(hashes))):
        rows = conn.execute(select(replicas.c.chunk_hash, nodes.c.name)
                            .join(nodes, nodes.c.id == replicas.c.node_id)
                            .where(replicas.c.chunk_hash.in_(batch), replicas.c.state == "ok")
                            ).all()
        for h, name in rows:
            out[h].append(name)
    return out


def record_chunk(conn: Connection, chunk_hash: str, size: int, node_names: list[str],
                 user_id: int | None, now: float) -> None:
    """After the bytes are durable on the nodes: the chunk, its replicas, and its owner
    (None: nobody, so only garbage collection will ever look at it)."""
    ensure_chunk(conn, chunk_hash, size, now)
    node_ids = dict(conn.execute(select(nodes.c.name, nodes.c.id)
                                 .where(nodes.c.name.in_(node_names))).all())
    for name in node_names:
        set_replica_ok(conn, chunk_hash, node_ids[name], now)
    if user_id is not None:
        grant(conn, user_id, chunk_hash, now)


def ensure_chunk(conn: Connection, chunk_hash: str, size: int, now: float) -> None:
    if conn.execute(select(chunks.c.hash).where(chunks.c.hash == chunk_hash)).first() is None:
        try:
            with conn.begin_nested():
                conn.execute(insert(chunks).values(hash=chunk_hash, size=size, created_at=now))
        except IntegrityError:
            pass  # inserted concurrently


def set_replica_ok(conn: Connection, chunk_hash: str, node_id: int, now: float) -> None:
    updated = conn.execute(update(replicas).where(
        replicas.c.chunk_hash == chunk_hash, replicas.c.node_id == node_id).values(
        state="ok")).rowcount
    if not updated:
        try:
            with conn.begin_nested():
                conn.execute(insert(replicas).values(chunk_hash=chunk_hash, node_id=node_id,
                                                     state="ok", created_at=now))
        except IntegrityError:
            pass


def grant(conn: Connection, user_id: int, chunk_hash: str, now: float) -> None:
    """Record that ``user_id`` has proven possession of ``chunk_hash``."""
    if not user_owns(conn, user_id, chunk_hash):
        try:
            with conn.begin_nested():
                conn.execute(insert(user_chunks).values(user_id=user_id, chunk_hash=chunk_hash,
                                                        created_at=now))
        except IntegrityError:
            pass


def chunk_size(conn: Connection, chunk_hash: str) -> int | None:
    value = conn.execute(select(chunks.c.size).where(chunks.c.hash == chunk_hash)).scalar()
    return int(value) if value is not None else None


def mark_bad(conn: Connection, chunk_hash: str, node_name: str, reason: str, now: float,
             priority: int = 10) -> None:
    """A replica failed verification or is missing: stop reading it and queue a repair."""
    node_id = conn.execute(select(nodes.c.id).where(nodes.c.name == node_name)).scalar()
    if node_id is not None:
        conn.execute(update(replicas).where(replicas.c.chunk_hash == chunk_hash,
                                            replicas.c.node_id == node_id).values(state="bad"))
    queue_repair(conn, chunk_hash, reason, now, priority)


def queue_repair(conn: Connection, chunk_hash: str, reason: str, now: float,
                 priority: int = 0) -> None:
    existing = conn.execute(select(repair_queue.c.priority).where(
        repair_queue.c.chunk_hash == chunk_hash)).scalar()
    if existing is None:
        try:
            with conn.begin_nested():
                conn.execute(insert(repair_queue).values(chunk_hash=chunk_hash,
                                                         priority=priority, reason=reason,
                                                         queued_at=now))
        except IntegrityError:
            pass
    elif existing < priority:
        conn.execute(update(repair_queue).where(repair_queue.c.chunk_hash == chunk_hash)
                     .values(priority=priority, reason=reason))


def drop_repair(conn: Connection, chunk_hash: str) -> None:
    conn.execute(delete(repair_queue).where(repair_queue.c.chunk_hash == chunk_hash))


def upsert_nodes(conn: Connection, named_urls: list[tuple[str, str]]) -> None:
    for name, url in named_urls:
        existing = conn.execute(select(nodes.c.id).where(nodes.c.name == name)).scalar()
        if existing is None:
            try:
                with conn.begin_nested():
                    conn.execute(insert(nodes).values(name=name, url=url, state="up"))
            except IntegrityError:
                pass
        else:
            conn.execute(update(nodes).where(nodes.c.id == existing).values(url=url))


def all_nodes(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(nodes).order_by(nodes.c.name)).mappings()]
