"""The ``nodes`` table as the cluster's shared record of node state.

Each API process probes the nodes itself; it also writes what it sees here (state, last seen,
space, chunk count) so admin views and other API replicas share one picture, and reads the
``draining`` flags back so a drain started through one replica is honoured by all.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, update

from minidropbox.core.errors import NotFound
from minidropbox.metadata.tables import nodes


def save_status(conn: Connection, name: str, state: str, last_seen: float | None,
                stats: dict[str, int] | None) -> None:
    values: dict[str, Any] = {"state": state}
    if last_seen:
        values["last_seen"] = last_seen
    if stats:
        values.update(free_bytes=stats.get("free_bytes"), used_bytes=stats.get("used_bytes"),
                      chunk_count=stats.get("chunk_count"))
    conn.execute(update(nodes).where(nodes.c.name == name).values(**values))


def draining(conn: Connection) -> set[str]:
    return {r[0] for r in conn.execute(select(nodes.c.name).where(nodes.c.draining)).all()}


def set_draining(conn: Connection, name: str, value: bool) -> None:
    if not conn.execute(update(nodes).where(nodes.c.name == name)
                        .values(draining=value)).rowcount:
        raise NotFound(f"There is no storage node named {name}.")


def listing(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(nodes).order_by(nodes.c.name)).mappings()]
