"""Aggregate counts for the metrics gauges (read-only, one statement each)."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from minidropbox.metadata.tables import chunks, nodes, replicas


def under_replicated(conn: Connection, counted_nodes: list[str], wanted: int) -> int:
    """Chunks with fewer than ``wanted`` intact replicas on ``counted_nodes``.

    One correlated count per chunk over the replicas primary key, so it costs an index probe
    per chunk and no memory in this process, whatever the size of the store.
    """
    intact = (select(func.count()).select_from(replicas)
              .join(nodes, nodes.c.id == replicas.c.node_id)
              .where(replicas.c.chunk_hash == chunks.c.hash, replicas.c.state == "ok",
                     nodes.c.name.in_(counted_nodes))
              .scalar_subquery())
    stmt = select(func.count()).select_from(chunks).where(intact < wanted)
    return int(conn.execute(stmt).scalar_one())

