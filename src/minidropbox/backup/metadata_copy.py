"""A consistent copy of the live metadata, and what it says about chunks.

SQLite: ``sqlite3.Connection.backup`` in one step. It reads the database inside one read
transaction, so the copy is exactly one committed state however busy the API is; in WAL mode
that read never blocks the API's writers. A file copy of a live database could tear pages
mid-write, so it is never used. The copy is switched to a rollback journal so it is one
self-contained file, then fsynced.

PostgreSQL: ``pg_dump -Fc`` (it must be on PATH) run with ``--snapshot`` of a REPEATABLE READ
transaction that exported it; the chunk list is read in that same transaction, so the dump
and the list describe the same committed state, as the SQLite path gets by reading the copy.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, create_engine, func, select, text
from sqlalchemy.engine import make_url

from minidropbox.backup.errors import MetadataUnavailable
from minidropbox.backup.repository import fsync_file
from minidropbox.metadata.db import sqlite_path
from minidropbox.metadata.pg import libpq_conninfo
from minidropbox.metadata.tables import (
    chunks,
    entries,
    nodes,
    replicas,
    server_info,
    users,
    version_chunks,
)

SQLITE_FILE = "metadata.db"
PG_FILE = "metadata.pgdump"


@dataclass
class MetadataCopy:
    """The copied metadata and the facts the snapshot needs from it."""

    path: Path
    kind: str  # "sqlite" | "postgresql"
    chunks: dict[str, int] = field(default_factory=dict)  # referenced hash -> size
    holders: dict[str, list[str]] = field(default_factory=dict)  # hash -> node names
    node_urls: dict[str, str] = field(default_factory=dict)  # name -> url in the nodes table
    generation: str | None = None
    # What the copy holds, for `backup list` and the empty-snapshot check.
    users: int = 0
    files: int = 0
    bytes: int = 0  # the current files' sizes


def read_references(conn: Connection, copy: MetadataCopy) -> None:
    """Fill ``copy`` with the referenced chunks, their good replicas and the node table."""
    rows = conn.execute(select(chunks.c.hash, chunks.c.size)
                        .where(chunks.c.hash.in_(select(version_chunks.c.chunk_hash)))).all()
    copy.chunks = {h: int(size) for h, size in rows}
    # A version row naming a chunk with no ``chunks`` row would be a broken database; keep
    # it in the list (size unknown) so it is reported missing instead of silently dropped.
    for (h,) in conn.execute(select(version_chunks.c.chunk_hash).distinct()).all():
        copy.chunks.setdefault(h, -1)
    copy.node_urls = {name: url for name, url in
                      conn.execute(select(nodes.c.name, nodes.c.url)).all()}
    held = conn.execute(select(replicas.c.chunk_hash, nodes.c.name)
                        .join(nodes, nodes.c.id == replicas.c.node_id)
                        .where(replicas.c.state == "ok")).all()
    for h, name in held:
        if h in copy.chunks:
            copy.holders.setdefault(h, []).append(name)
    value = conn.execute(select(server_info.c.value)
                         .where(server_info.c.key == "generation")).scalar()
    copy.generation = str(value) if value is not None else None
    copy.users = int(conn.execute(select(func.count()).select_from(users)).scalar() or 0)
    live = (entries.c.kind == "file") & entries.c.deleted_at.is_(None)
    copy.files, copy.bytes = (int(v or 0) for v in conn.execute(
        select(func.count(), func.sum(entries.c.size)).where(live)).one())


def copy_metadata(database_url: str, folder: Path) -> MetadataCopy:
    """Copy the database at ``database_url`` into ``folder``; see the module docstring."""
    if database_url.startswith("sqlite"):
        return copy_sqlite(database_url, folder / SQLITE_FILE)
    if database_url.startswith("postgresql"):
        return copy_postgres(database_url, folder / PG_FILE)
    raise MetadataUnavailable(f"Cannot back up a database of this kind: "
                              f"{database_url.split(':', 1)[0]}.")


def copy_sqlite(database_url: str, dest: Path) -> MetadataCopy:
    source_path = sqlite_path(database_url)
    if source_path is None or not source_path.is_file():
        raise MetadataUnavailable(f"The metadata database {source_path} does not exist (yet): "
                                  "start the API once, or check MINIDROPBOX_DATA_DIR.")
    # mode=rw: never create an empty database where the API's should be.
    source = sqlite3.connect(f"file:{source_path}?mode=rw", uri=True, timeout=30)
    try:
        source.execute("PRAGMA busy_timeout=30000")
        target = sqlite3.connect(dest)
        try:
            source.backup(target)  # pages=-1: one step, one read transaction, one state
            target.execute("PRAGMA journal_mode=DELETE")
            target.commit()
        finally:
            target.close()
    except sqlite3.Error as exc:
        raise MetadataUnavailable(f"Could not copy the metadata database: {exc}.") from None
    finally:
        source.close()
    fsync_file(dest)
    copy = MetadataCopy(dest, "sqlite")
    engine = create_engine(f"sqlite:///file:{dest}?mode=ro&uri=true")
    try:
        with engine.connect() as conn:
            has_schema = conn.execute(text(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='version_chunks'"
            )).first()
            if not has_schema:
                raise MetadataUnavailable("The metadata database has no schema yet: the API "
                                          "has not finished its first start.")
            read_references(conn, copy)
    finally:
        engine.dispose()
    return copy


def copy_postgres(database_url: str, dest: Path,
                  run: Callable[..., subprocess.CompletedProcess[bytes]] = subprocess.run
                  ) -> MetadataCopy:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise MetadataUnavailable("Backing up PostgreSQL needs pg_dump on PATH "
                                  "(install the PostgreSQL client tools).")
    copy = MetadataCopy(dest, "postgresql")
    env = dict(os.environ)
    password = make_url(database_url).password
    if password is not None:
        env["PGPASSWORD"] = password
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                read_references(conn, copy)
                # The exported snapshot lives as long as this transaction: dump inside it.
                result = run([pg_dump, "-Fc", f"--snapshot={snapshot}", "-f", str(dest),
                              "--dbname", libpq_conninfo(database_url, with_password=False)],
                             capture_output=True, env=env)
                if result.returncode != 0:
                    message = result.stderr.decode(errors="replace").strip().splitlines()
                    raise MetadataUnavailable("pg_dump failed: " + (message[-1] if message
                                                                     else "no message"))
    finally:
        engine.dispose()
    fsync_file(dest)
    return copy
