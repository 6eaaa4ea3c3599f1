"""``backup restore SNAPSHOT --to DATA``: a data directory ``server cluster --data`` starts from.

Layout built (the launcher's): ``DATA/nodes/node-1..N/`` holding the chunks, each on the R
nodes rendezvous placement picks over ``node-1..N`` (the same rule the API writes with, so
reads find them first time), and ``DATA/api/metadata.db``. Secrets are not in backups: the
first start generates new ones in ``DATA/secrets/``, so everybody logs in again.

Ordering: the chunks go to the nodes first (atomic, verified writes), then the metadata is
prepared under a temp name (migrated to this version's schema; ``nodes`` and ``replicas``
rewritten to match where the chunks now are; the repair queue cleared; a new server
``generation`` so sync clients can tell this is a restored server), and renamed into place
last. A restore that dies halfway leaves no ``metadata.db``, so nothing starts from it.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, delete, insert, select

from minidropbox.backup.errors import BackupConfigError, RepositoryDamaged, TargetNotEmpty
from minidropbox.backup.repository import (
    TEMP_PREFIX,
    Repository,
    Snapshot,
    fsync_file,
)
from minidropbox.backup.snapshot import file_sha256
from minidropbox.core.placement import place_replicas
from minidropbox.durable import fsync_dir
from minidropbox.metadata.db import Database
from minidropbox.metadata.tables import nodes, repair_queue, replicas, server_info
from minidropbox.storage.base import ChunkNotFound, ChunkStore, CorruptChunk
from minidropbox.storage.disk import DiskChunkStore
from minidropbox.storage.s3 import S3ChunkStore, location_from

log = logging.getLogger("minidropbox.backup")

PROGRESS_EVERY = 5.0


@dataclass
class RestoreReport:
    snapshot: str
    target: Path
    nodes: int
    replicas: int
    generation: str
    chunks: int = 0
    bytes: int = 0
    duration: float = 0.0
    unrecoverable: list[str] = field(default_factory=list)


def restore(repo: Repository, snap: Snapshot, target: Path, node_count: int = 3,
            replica_count: int = 2, clock: Callable[[], float] = time.time,
            s3_url: str | None = None,
            s3_credentials_file: Path | None = None) -> RestoreReport:
    """Build a data directory at ``target`` from ``snap`` (see the module docstring).

    With ``s3_url`` the chunks go into that bucket instead of ``DATA/nodes/``, and the
    metadata names it as the one storage "node" ``s3`` (R = 1: the object store keeps copies).
    """
    if s3_url:
        node_count = replica_count = 1
    if snap.manifest["metadata"]["kind"] != "sqlite":
        raise BackupConfigError(
            "This snapshot holds a PostgreSQL dump: load it with `pg_restore -d DBURL "
            f"{snap.metadata_path}`; restoring into a data directory needs a SQLite snapshot.")
    if not 1 <= replica_count <= node_count:
        raise BackupConfigError(f"Cannot keep {replica_count} replicas on {node_count} nodes.")
    target = Path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise TargetNotEmpty(f"{target} is not an empty directory; restore into a new one.")
    started = time.monotonic()
    names = ["s3"] if s3_url else [f"node-{i}" for i in range(1, node_count + 1)]
    report = RestoreReport(snap.id, target, node_count, replica_count, secrets.token_hex(16))
    with repo.readers_lock(exclusive=False):
        if file_sha256(snap.metadata_path) != snap.manifest["metadata"]["sha256"]:
            raise RepositoryDamaged(f"The metadata copy of snapshot {snap.id} does not match "
                                    "its checksum; run `backup verify` and pick another one.")
        target.mkdir(parents=True, exist_ok=True)
        stores: dict[str, ChunkStore] = (
            {"s3": S3ChunkStore(location_from(s3_url, s3_credentials_file))} if s3_url else
            {n: DiskChunkStore(target / "nodes" / n) for n in names})
        placed = place_chunks(repo, snap, stores, replica_count, report)
        api_dir = target / "api"
        api_dir.mkdir()
        temp = api_dir / f"{TEMP_PREFIX}metadata.db"
        shutil.copyfile(snap.metadata_path, temp)
        urls = {"s3": s3_url} if s3_url else {}
        rewrite_metadata(temp, names, placed, report.generation, clock(), urls)
        final = api_dir / "metadata.db"
        temp.rename(final)
        fsync_dir(api_dir)
    report.duration = time.monotonic() - started
    log.info("restored snapshot %s into %s: %d chunks (%d bytes) on %d nodes x%d, "
             "%d unrecoverable, generation %s, in %.1f s", snap.id, target, report.chunks,
             report.bytes, node_count, replica_count, len(report.unrecoverable),
             report.generation, report.duration)
    return report


def place_chunks(repo: Repository, snap: Snapshot, stores: dict[str, ChunkStore],
                 replica_count: int, report: RestoreReport) -> dict[str, list[str]]:
    """Write every chunk the snapshot references to its nodes; returns chunk -> node names."""
    placed: dict[str, list[str]] = {}
    listed = snap.chunk_list()
    last = time.monotonic()
    for i, name in enumerate(sorted(listed), 1):
        try:
            data = repo.chunks.get(name)  # verifies
        except (ChunkNotFound, CorruptChunk) as exc:
            log.error("chunk %s cannot be restored: %s", name, exc.message)
            report.unrecoverable.append(name)
            continue
        targets = place_replicas(name, list(stores), replica_count)
        for node in targets:
            stores[node].put(name, data)
        placed[name] = targets
        report.chunks += 1
        report.bytes += len(data)
        if time.monotonic() - last >= PROGRESS_EVERY:
            last = time.monotonic()
            log.info("progress: %d/%d chunks placed", i, len(listed))
    return placed


def rewrite_metadata(path: Path, names: list[str], placed: dict[str, list[str]],
                     generation: str, now: float, urls: dict[str, str] | None = None) -> None:
    """Migrate the copy, point ``nodes``/``replicas`` at the new layout, new generation."""
    db = Database(f"sqlite:///{path.resolve()}")
    try:
        db.migrate()
        with db.write() as conn:
            write_layout(conn, names, placed, generation, now, urls or {})
    finally:
        db.dispose()
    # Back to one self-contained file (the API turns WAL on again when it opens it).
    conn2 = sqlite3.connect(path)
    try:
        conn2.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn2.close()
    fsync_file(path)


def write_layout(conn: Connection, names: list[str], placed: dict[str, list[str]],
                 generation: str, now: float, urls: dict[str, str]) -> None:
    conn.execute(delete(repair_queue))
    conn.execute(delete(replicas))
    conn.execute(delete(nodes))
    # A node's URL is a placeholder: the API records its real address by name at start.
    conn.execute(insert(nodes), [{"name": n, "url": urls.get(n, f"http://{n}.invalid"),
                                  "state": "up"} for n in names])
    node_ids = {name: node_id for node_id, name in
                conn.execute(select(nodes.c.id, nodes.c.name)).all()}
    rows = [{"chunk_hash": h, "node_id": node_ids[n], "state": "ok", "created_at": now}
            for h, holders in placed.items() for n in holders]
    for start in range(0, len(rows), 5000):
        conn.execute(insert(replicas), rows[start:start + 5000])
    conn.execute(delete(server_info).where(server_info.c.key == "generation"))
    conn.execute(insert(server_info).values(key="generation", value=generation))
