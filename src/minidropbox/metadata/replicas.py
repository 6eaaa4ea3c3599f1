"""Replica queries for repair, audit, drain and the admin views.

The write path's own queries (record, mark bad, queue) live in ``metadata/chunks.py``; these
are the whole-cluster views: every replica of a chunk with its state, pages of chunks, the
repair queue in priority order, and the counts ``admin status`` shows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from sqlalchemy import Connection, delete, func, select

from minidropbox.core.health import DOWN
from minidropbox.metadata.tables import chunks, nodes, repair_queue, replicas


def replica_map(conn: Connection, hashes: list[str]) -> dict[str, dict[str, str]]:
    """For each hash: {node name: replica state} over every replica row (ok and bad)."""
    out: dict[str, dict[str, str]] = {h: {} for h in hashes}
    for start in range(0, len(hashes), 500):
        batch = hashes[start:start + 500]
        rows = conn.execute(select(replicas.c.chunk_hash, nodes.c.name, replicas.c.state)
                            .join(nodes, nodes.c.id == replicas.c.node_id)
                            .where(replicas.c.chunk_hash.in_(batch))).all()
        for h, name, state in rows:
            out[h][name] = state
    return out


def bad_holders(conn: Connection, chunk_hash: str) -> list[str]:
    """Nodes whose copy of ``chunk_hash`` is known to be bad (corrupt, truncated, missing)."""
    rows = conn.execute(select(nodes.c.name).join(replicas, replicas.c.node_id == nodes.c.id)
                        .where(replicas.c.chunk_hash == chunk_hash, replicas.c.state != "ok"))
    return [r[0] for r in rows]


def chunk_page(conn: Connection, after: str, limit: int) -> list[str]:
    """Chunk hashes in ascending order strictly after ``after``."""
    rows = conn.execute(select(chunks.c.hash).where(chunks.c.hash > after)
                        .order_by(chunks.c.hash).limit(limit)).all()
    return [r[0] for r in rows]


def chunk_sizes(conn: Connection, hashes: list[str]) -> dict[str, int]:
    rows = conn.execute(select(chunks.c.hash, chunks.c.size)
                        .where(chunks.c.hash.in_(hashes))).all()
    return {h: int(size) for h, size in rows}


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


def node_ids(conn: Connection) -> dict[str, int]:
    return {name: int(i) for name, i in conn.execute(select(nodes.c.name, nodes.c.id)).all()}


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
