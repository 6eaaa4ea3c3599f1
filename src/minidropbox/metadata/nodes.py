"""The ``nodes`` table: the storage nodes the cluster knows, and its shared record of their state.

Each API process probes the nodes itself; it also writes what it sees here (state, last seen,
space, chunk count) so admin views and other API replicas share one picture, and reads the
``draining`` flags back so a drain started through one replica is honoured by all.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

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


def node_ids(conn: Connection) -> dict[str, int]:
    return {name: int(i) for name, i in conn.execute(select(nodes.c.name, nodes.c.id)).all()}
