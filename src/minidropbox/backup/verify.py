"""``backup verify``: is every snapshot whole and restorable?

Per snapshot: the metadata copy is present and matches the manifest's SHA-256; SQLite's
``PRAGMA integrity_check`` says ``ok``; the chunk list matches its checksum and the chunks
the metadata copy references; every chunk in it is in the repository with the right size and
none was missing at backup time. With ``read_data`` every chunk is also re-read and re-hashed
(each distinct chunk once, however many snapshots share it).
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field

from sqlalchemy import create_engine

from minidropbox.backup.metadata_copy import MetadataCopy, read_references
from minidropbox.backup.repository import CHUNK_LIST, Repository, Snapshot
from minidropbox.backup.snapshot import file_sha256
from minidropbox.storage.base import ChunkNotFound, CorruptChunk

log = logging.getLogger("minidropbox.backup")


@dataclass
class VerifyReport:
    snapshots: int = 0
    chunks_checked: int = 0
    bytes_read: int = 0
    duration: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(repo: Repository, snaps: list[Snapshot], read_data: bool = False) -> VerifyReport:
    """Check ``snaps`` (see the module docstring); every problem found goes in the report."""
    report = VerifyReport()
    started = time.monotonic()
    checked: dict[str, str | None] = {}  # chunk -> problem (None: fine), to check each once
    with repo.readers_lock(exclusive=False):
        for snap in snaps:
            report.snapshots += 1
            report.problems += [f"snapshot {snap.id}: {p}" for p in check_metadata(snap)]
            try:
                listed = snap.chunk_list()
            except (OSError, ValueError) as exc:
                report.problems.append(f"snapshot {snap.id}: chunk list unreadable ({exc})")
                continue
            for name in snap.manifest["chunks"].get("missing", []):
                report.problems.append(f"snapshot {snap.id}: chunk {name} was on no storage "
                                       "node at backup time; files using it cannot be restored")
            for name, size in listed.items():
                if name not in checked:
                    checked[name] = check_chunk(repo, name, size, read_data, report)
                problem = checked[name]
                if problem and name not in snap.manifest["chunks"].get("missing", []):
                    report.problems.append(f"snapshot {snap.id}: {problem}")
    report.chunks_checked = len(checked)
    report.duration = time.monotonic() - started
    log.info("verified %d snapshot(s), %d chunks, %d bytes read, %d problem(s), in %.1f s",
             report.snapshots, report.chunks_checked, report.bytes_read, len(report.problems),
             report.duration)
    return report


def check_chunk(repo: Repository, name: str, size: int, read_data: bool,
                report: VerifyReport) -> str | None:
    store = repo.chunks
    try:
        actual = store.size(name)
    except ChunkNotFound:
        return f"chunk {name} is not in the repository"
    if size >= 0 and actual != size:
        return f"chunk {name} has {actual} bytes, the metadata says {size}"
    if read_data:
        try:
            report.bytes_read += len(store.get(name))  # re-hashes
        except CorruptChunk:
            return f"chunk {name} is corrupt (its bytes do not hash to its name)"
    return None


def check_metadata(snap: Snapshot) -> list[str]:
    """Problems with a snapshot's metadata copy and chunk list (empty when fine)."""
    meta = snap.manifest["metadata"]
    path = snap.metadata_path
    if not path.is_file():
        return [f"metadata copy {path.name} is missing"]
    problems = []
    if file_sha256(path) != meta["sha256"]:
        problems.append(f"metadata copy {path.name} does not match its checksum")
    list_path = snap.path / CHUNK_LIST
    try:
        if file_sha256(list_path) != snap.manifest["chunk_list_sha256"]:
            problems.append("chunk list does not match its checksum")
    except FileNotFoundError:
        problems.append("chunk list is missing")
    if meta["kind"] == "sqlite":
        problems += check_sqlite(snap)
    elif shutil.which("pg_restore"):
        result = subprocess.run(["pg_restore", "--list", str(path)], capture_output=True)
        if result.returncode != 0:
            problems.append("pg_restore cannot read the metadata dump")
    return problems


def check_sqlite(snap: Snapshot) -> list[str]:
    path = snap.metadata_path
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return [f"metadata copy cannot be opened: {exc}"]
    if rows != ["ok"]:
        return ["SQLite integrity_check: " + "; ".join(rows[:5])]
    # The chunk list must be exactly what the copy references (it is derived from it).
    copy = MetadataCopy(path, "sqlite")
    engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        with engine.connect() as conn2:
            read_references(conn2, copy)
    except Exception as exc:  # a damaged copy: report, do not crash the whole verify
        return [f"metadata copy cannot be read: {exc}"]
    finally:
        engine.dispose()
    try:
        listed = snap.chunk_list()
    except (OSError, ValueError):
        return []  # reported by the caller
    if set(listed) != set(copy.chunks):
        return [f"chunk list ({len(listed)}) differs from the chunks the metadata references "
                f"({len(copy.chunks)})"]
    return []
