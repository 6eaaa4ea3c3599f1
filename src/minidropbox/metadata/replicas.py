"""Repository functions for replicas (which node holds which chunk, ``ok`` or ``bad``) and the
repair queue: the data path's reads and bad-copy reports, and the whole-cluster views of repair,
audit, drain and ``admin status``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import TypeVar

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from minidropbox.core.health import DOWN
from minidropbox.metadata.tables import chunks, nodes, repair_queue, replicas

T = TypeVar("T")


def in_batches(items: list[T], size: int = 500) -> Iterable[list[T]]:
    """``items`` in slices small enough for one ``IN (...)`` list on every database."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


# Run for every chunk of every upload: built once (building costs more than running).
_HOLDERS = select(nodes.c.name).join(replicas, replicas.c.node_id == nodes.c.id)
_GOOD_REPLICAS = _HOLDERS.where(replicas.c.chunk_hash == bindparam("chunk_hash"),
                                replicas.c.state == "ok")
_BAD_HOLDERS = _HOLDERS.where(replicas.c.chunk_hash == bindparam("chunk_hash"),
                              replicas.c.state != "ok")


def good_replicas(conn: Connection, chunk_hash: str) -> list[str]:
    """Names of the nodes holding a good copy of ``chunk_hash``."""
    return [r[0] for r in conn.execute(_GOOD_REPLICAS, {"chunk_hash": chunk_hash})]


def replicas_for(conn: Connection, hashes: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {h: [] for h in hashes}
    for batch in in_batches(sorted(set(hashes))):
        rows = conn.execute(select(replicas.c.chunk_hash, nodes.c.name)
                            .join(nodes, nodes.c.id == replicas.c.node_id)
                            .where(replicas.c.chunk_hash.in_(batch), replicas.c.state == "ok")
                            ).all()
        for h, name in rows:
            out[h].append(name)
    return out


def set_replica_ok(conn: Connection, chunk_hash: str, node_id: int, now: float) -> None:
    """A copy just written (or verified): its row says ``ok``, whatever it said before."""
    updated = conn.execute(update(replicas).where(
        replicas.c.chunk_hash == chunk_hash, replicas.c.node_id == node_id).values(
        state="ok")).rowcount
    if not updated:
        add_replica(conn, chunk_hash, node_id, now)


def add_replica(conn: Connection, chunk_hash: str, node_id: int, now: float) -> None:
    """An ``ok`` row for a copy, unless the node has a row for it already (left as it is)."""
    try:
        with conn.begin_nested():
            conn.execute(insert(replicas).values(chunk_hash=chunk_hash, node_id=node_id,
                                                 state="ok", created_at=now))
    except IntegrityError:
        pass


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


def replica_map(conn: Connection, hashes: list[str]) -> dict[str, dict[str, str]]:
    """For each hash: {node name: replica state} over every replica row (ok and bad)."""
    out: dict[str, dict[str, str]] = {h: {} for h in hashes}
    for batch in in_batches(hashes):
        rows = conn.execute(select(replicas.c.chunk_hash, nodes.c.name, replicas.c.state)
                            .join(nodes, nodes.c.id == replicas.c.node_id)
                            .where(replicas.c.chunk_hash.in_(batch))).all()
        for h, name, state in rows:
            out[h][name] = state
    return out


def bad_holders(conn: Connection, chunk_hash: str) -> list[str]:
    """Nodes whose copy of ``chunk_hash`` is known to be bad (corrupt, truncated, missing)."""
    return [r[0] for r in conn.execute(_BAD_HOLDERS, {"chunk_hash": chunk_hash})]


def bad_holders_of(conn: Connection, hashes: list[str]) -> dict[str, set[str]]:
    """``bad_holders`` for many chunks in a few queries (chunk -> node names)."""
    out: dict[str, set[str]] = {h: set() for h in hashes}
    for batch in in_batches(sorted(set(hashes))):
        rows = conn.execute(select(replicas.c.chunk_hash, nodes.c.name)
                            .join(nodes, nodes.c.id == replicas.c.node_id)
                            .where(replicas.c.chunk_hash.in_(batch), replicas.c.state != "ok"))
        for h, name in rows:
            out[h].add(name)
    return out


def queued(conn: Connection, limit: int) -> list[str]:
    """The repair queue, most urgent first (a read that hit a bad copy queues at 10)."""
    rows = conn.execute(select(repair_queue.c.chunk_hash)
                        .order_by(repair_queue.c.priority.desc(), repair_queue.c.queued_at)
                        .limit(limit)).all()
    return [r[0] for r in rows]


def dequeue(conn: Connection, hashes: list[str]) -> None:
    if hashes:
        conn.execute(delete(repair_queue).where(repair_queue.c.chunk_hash.in_(hashes)))


def queue_length(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(repair_queue)).scalar_one())


def remove_replica(conn: Connection, chunk_hash: str, node_name: str) -> None:
    node_id = conn.execute(select(nodes.c.id).where(nodes.c.name == node_name)).scalar()
    if node_id is not None:
        conn.execute(delete(replicas).where(replicas.c.chunk_hash == chunk_hash,
                                            replicas.c.node_id == node_id))


def replicas_on_node(conn: Connection, node_name: str, after: str,
                     limit: int) -> list[tuple[str, int, str]]:
    """(hash, size, state) of the replicas recorded on one node, ascending after ``after``."""
    rows = conn.execute(
        select(replicas.c.chunk_hash, chunks.c.size, replicas.c.state)
        .join(nodes, nodes.c.id == replicas.c.node_id)
        .join(chunks, chunks.c.hash == replicas.c.chunk_hash)
        .where(nodes.c.name == node_name, replicas.c.chunk_hash > after)
        .order_by(replicas.c.chunk_hash).limit(limit)).all()
    return [(h, int(size), state) for h, size, state in rows]


def health_counts(conn: Connection, node_states: Mapping[str, str],
                  leaving: set[str], wanted: int) -> dict[str, int]:
    """Cluster-wide counts: chunks, under-replicated, unreadable (no intact copy reachable),
    corrupt replicas (rows marked bad), and replicas per node."""
    per_chunk: dict[str, int] = defaultdict(int)
    readable: set[str] = set()
    corrupt = 0
    total = int(conn.execute(select(func.count()).select_from(chunks)).scalar_one())
    rows = conn.execute(select(replicas.c.chunk_hash, nodes.c.name, replicas.c.state)
                        .join(nodes, nodes.c.id == replicas.c.node_id))
    for h, name, state in rows:
        if state != "ok":
            corrupt += 1
        elif node_states.get(name, DOWN) != DOWN:
            readable.add(h)
            if name not in leaving:
                per_chunk[h] += 1
    healthy = sum(1 for n in per_chunk.values() if n >= wanted)
    return {"chunks": total, "under_replicated": total - healthy,
            "unreadable": total - len(readable), "corrupt_replicas": corrupt,
            "repair_queue": queue_length(conn)}


def recorded_on_node(conn: Connection, node_name: str, hashes: list[str]) -> set[str]:
    """Which of ``hashes`` have a replica row (ok or bad) on the node."""
    if not hashes:
        return set()
    rows = conn.execute(
        select(replicas.c.chunk_hash).join(nodes, nodes.c.id == replicas.c.node_id)
        .where(nodes.c.name == node_name, replicas.c.chunk_hash.in_(hashes))).all()
    return {h for (h,) in rows}


def counts_by_node(conn: Connection) -> dict[int, dict[str, int]]:
    """Per node id: how many replicas it holds in each state (``ok``, ``bad``)."""
    per_node: dict[int, dict[str, int]] = {}
    for node_id, state, count in conn.execute(
            select(replicas.c.node_id, replicas.c.state, func.count())
            .group_by(replicas.c.node_id, replicas.c.state)).all():
        per_node.setdefault(int(node_id), {})[state] = int(count)
    return per_node
