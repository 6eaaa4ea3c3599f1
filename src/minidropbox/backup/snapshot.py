"""Taking a snapshot: the metadata copy, then its chunks, then (last) the manifest.

Write ordering, which is what keeps the repository's invariants (package docstring):

1. take the writer lock; remove folders of interrupted snapshots (no manifest);
2. copy the metadata online into ``snapshots/<id>/`` (``metadata_copy``);
3. read the referenced chunks from that COPY, never from the live database, so the snapshot
   cannot reference a chunk committed after the copy and absent from the repository;
4. copy each chunk the repository lacks from a storage node: the replicas the copy names
   first, then every other node; the node client and the chunk store both verify the hash,
   and the store writes atomically and fsyncs. A chunk no node can serve is logged and
   listed as missing;
5. write ``chunks.txt`` and then ``manifest.json`` atomically. Only now does the snapshot
   exist. A kill before this step leaves an incomplete folder that nobody reads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minidropbox.backup.errors import BackupCancelled, BackupConfigError, EmptySnapshotRefused
from minidropbox.backup.metadata_copy import MetadataCopy, copy_metadata
from minidropbox.backup.repository import (
    CHUNK_LIST,
    FORMAT,
    MANIFEST,
    Repository,
    atomic_write,
    format_chunk_list,
    new_snapshot_id,
)
from minidropbox.core.placement import rank_nodes
from minidropbox.durable import fsync_dir
from minidropbox.storage.base import NoIntactCopy, StoreFull, read_first_intact
from minidropbox.storage.disk import DiskChunkStore
from minidropbox.storage.open import RemoteChunkStore, open_store

log = logging.getLogger("minidropbox.backup")

PROGRESS_EVERY = 5.0  # seconds between progress lines


@dataclass
class SnapshotOptions:
    """Where the data comes from and how to fetch it."""

    database_url: str
    cluster_secret: str
    nodes: dict[str, str] = field(default_factory=dict)  # name -> url; empty: the DB's table
    node_timeout: float = 10.0
    s3_credentials_file: Path | None = None  # for a bucket among the nodes (else AWS_* env)
    allow_empty: bool = False  # take a snapshot of an empty database after ones with data
    workers: int = 4
    # Test-only: seconds to sleep after each copied chunk, so a test can kill a backup
    # mid-run (set from MINIDROPBOX_BACKUP_TEST_THROTTLE by the CLI; never in production).
    throttle: float = 0.0
    clock: Callable[[], float] = time.time
    # Set to abandon the run (SIGTERM): the snapshot stays incomplete and is cleaned up later.
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass
class CopyTally:
    copied: int = 0
    copied_bytes: int = 0
    skipped: int = 0
    skipped_bytes: int = 0
    missing: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def done(self) -> int:
        return self.copied + self.skipped + len(self.missing)


def take_snapshot(repo: Repository, options: SnapshotOptions) -> dict[str, Any]:
    """Take one snapshot (see the module docstring); returns its manifest."""
    started = options.clock()
    mono = time.monotonic()
    with repo.lock("backup"):
        removed = repo.remove_incomplete()
        if removed:
            log.info("removed %d incomplete snapshot(s) left by an interrupted backup", removed)
        snap_id = new_snapshot_id(started)
        folder = repo.snapshots_dir / snap_id
        folder.mkdir()
        fsync_dir(repo.snapshots_dir)
        try:
            manifest = _fill(repo, folder, snap_id, started, mono, options)
        except BaseException:
            # We hold the lock, so nobody else can be using the folder: tidy up now rather
            # than leave it to the next run (a SIGKILL still leaves it to the next run).
            shutil.rmtree(folder, ignore_errors=True)
            raise
    c = manifest["chunks"]
    log.info("snapshot %s done: %d chunks copied (%d bytes), %d skipped (%d bytes), "
             "%d missing, in %.1f s", snap_id, c["copied"], c["copied_bytes"], c["skipped"],
             c["skipped_bytes"], c["missing_count"], manifest["duration"])
    return manifest


def _fill(repo: Repository, folder: Path, snap_id: str, started: float, mono: float,
          options: SnapshotOptions) -> dict[str, Any]:
    """Steps 2 to 5 into ``folder``; returns the manifest once it is durable."""
    copy = copy_metadata(options.database_url, folder)
    if not options.allow_empty:
        refuse_empty(repo, copy, options.database_url)
    meta_bytes = copy.path.stat().st_size
    log.info("snapshot %s: metadata copied (%d bytes), %d chunks referenced",
             snap_id, meta_bytes, len(copy.chunks))
    tally = copy_chunks(repo, copy, options)
    if options.cancel.is_set():
        raise BackupCancelled(f"Snapshot {snap_id} abandoned before its manifest.")
    list_bytes = format_chunk_list(copy.chunks)
    atomic_write(folder / CHUNK_LIST, list_bytes)
    manifest = {
        "format": FORMAT,
        "id": snap_id,
        "time": started,
        "finished": options.clock(),
        "duration": round(time.monotonic() - mono, 3),
        "host": socket.gethostname(),
        "generation": copy.generation,
        "metadata": {"file": copy.path.name, "kind": copy.kind, "bytes": meta_bytes,
                     "sha256": file_sha256(copy.path)},
        "chunk_list_sha256": hashlib.sha256(list_bytes).hexdigest(),
        "contents": {"users": copy.users, "files": copy.files, "bytes": copy.bytes},
        "chunks": {
            "referenced": len(copy.chunks),
            "referenced_bytes": sum(max(s, 0) for s in copy.chunks.values()),
            "copied": tally.copied, "copied_bytes": tally.copied_bytes,
            "skipped": tally.skipped, "skipped_bytes": tally.skipped_bytes,
            "missing_count": len(tally.missing), "missing": sorted(tally.missing),
        },
    }
    atomic_write(folder / MANIFEST, _dump(manifest))
    return manifest


def refuse_empty(repo: Repository, copy: MetadataCopy, database_url: str) -> None:
    """An empty database after snapshots with data is almost always the wrong database (a
    data directory given one level off creates a fresh one elsewhere); backing it up would
    make it ``latest`` and the next restore would bring back an empty server."""
    if copy.users or copy.files:
        return
    for snap in reversed(repo.snapshots()):
        held = snap.manifest.get("contents") or {}
        if held.get("users") or held.get("files"):
            raise EmptySnapshotRefused(
                f"The metadata at {database_url} holds no users and no files, but snapshot "
                f"{snap.id} held {held.get('users', 0)} users and {held.get('files', 0)} "
                "files: check --data / MINIDROPBOX_DATA_DIR (the folder given to `server "
                "cluster --data`), or pass --allow-empty if the server really is empty now.")


def copy_chunks(repo: Repository, copy: MetadataCopy, options: SnapshotOptions) -> CopyTally:
    """Bring every chunk ``copy`` references into the repository (step 4)."""
    urls = dict(copy.node_urls)
    urls.update(options.nodes)
    if not urls and copy.chunks:
        raise BackupConfigError("No storage nodes are known: set MINIDROPBOX_NODES.")
    clients = {name: open_store(url, options.cluster_secret, options.node_timeout,
                                options.s3_credentials_file)
               for name, url in urls.items()}
    tally = CopyTally()
    store = repo.chunks
    total = len(copy.chunks)
    last_report = [time.monotonic()]

    def one(name: str) -> None:
        if options.cancel.is_set():
            return
        size = copy.chunks[name]
        if store.has(name):
            with tally.lock:
                tally.skipped += 1
                tally.skipped_bytes += max(size, 0)
        else:
            fetched = fetch(name, copy.holders.get(name, []), clients, store)
            with tally.lock:
                if fetched is None:
                    tally.missing.append(name)
                else:
                    tally.copied += 1
                    tally.copied_bytes += fetched
            if fetched is not None and options.throttle:
                time.sleep(options.throttle)
        now = time.monotonic()
        with tally.lock:
            if now - last_report[0] >= PROGRESS_EVERY:
                last_report[0] = now
                log.info("progress: %d/%d chunks (%d copied, %d skipped, %d missing)",
                         tally.done, total, tally.copied, tally.skipped, len(tally.missing))

    try:
        with ThreadPoolExecutor(max(options.workers, 1), "backup-copy") as pool:
            for _ in pool.map(one, sorted(copy.chunks)):
                pass
    finally:
        for client in clients.values():
            client.close()
    return tally


def fetch(name: str, holders: list[str], clients: dict[str, RemoteChunkStore],
          store: DiskChunkStore) -> int | None:
    """Copy one chunk into ``store`` from the first node that serves it intact.

    Returns its size, or None (logged) when no node has a good copy.
    """
    others = rank_nodes(name, [n for n in clients if n not in holders])
    order = [n for n in holders if n in clients] + others
    try:
        data = read_first_intact(name, [(node, clients[node]) for node in order])
    except NoIntactCopy as exc:
        problems = "; ".join(f"{node}: {fault.message}" for node, fault in exc.failures)
        log.error("chunk %s is on no storage node (%s); recorded as missing in the manifest",
                  name, problems or "no nodes")
        return None
    try:
        store.put(name, data)  # verifies again, writes atomically, fsyncs
    except StoreFull:
        raise StoreFull(f"The backup repository's disk is full ({store.root}).") from None
    return len(data)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _dump(body: dict[str, Any]) -> bytes:
    return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()
