"""The backup repository on disk: layout, locks, atomic files, snapshots and their manifests.

See the package docstring for the layout and the invariants. Everything that changes a file
here goes through ``atomic_write`` (temp file in the same folder, fsync, rename, fsync the
folder), so a crash leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from minidropbox.backup.errors import NotARepository, RepositoryLocked, SnapshotNotFound
from minidropbox.durable import fsync_dir
from minidropbox.storage.disk import DiskChunkStore

FORMAT = 1
MANIFEST = "manifest.json"
CHUNK_LIST = "chunks.txt"
TEMP_PREFIX = ".tmp-"


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: temp file, fsync, rename, fsync the folder."""
    temp = path.with_name(f"{TEMP_PREFIX}{path.name}-{secrets.token_hex(4)}")
    try:
        with open(temp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def new_snapshot_id(now: float) -> str:
    """Sortable by time, unique without coordination: ``20240501T120000Z-1a2b3c``."""
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Snapshot:
    """A complete snapshot: its folder and its manifest."""

    id: str
    path: Path
    manifest: dict[str, Any]

    @property
    def time(self) -> float:
        return float(self.manifest["time"])

    @property
    def metadata_path(self) -> Path:
        return self.path / str(self.manifest["metadata"]["file"])

    def chunk_list(self) -> dict[str, int]:
        """Every chunk this snapshot references, with its size."""
        return read_chunk_list(self.path / CHUNK_LIST)


def read_chunk_list(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    with open(path) as fh:
        for line in fh:
            name, _, size = line.strip().partition(" ")
            if name:
                out[name] = int(size)
    return out


def format_chunk_list(chunks: dict[str, int]) -> bytes:
    return "".join(f"{h} {chunks[h]}\n" for h in sorted(chunks)).encode()


class Repository:
    """A backup repository rooted at ``root`` (created by ``init``, opened by ``open``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.snapshots_dir = self.root / "snapshots"
        self._store: DiskChunkStore | None = None

    # -- creating and opening -----------------------------------------------------------

    @classmethod
    def init(cls, root: Path) -> Repository:
        """Open the repository at ``root``, creating it if the folder is new or empty."""
        root = Path(root)
        config = root / "config.json"
        if not config.exists():
            if root.exists() and any(p.name != "lock" for p in root.iterdir()):
                raise NotARepository(f"{root} is not empty and is not a backup repository.")
            root.mkdir(parents=True, exist_ok=True)
            (root / "snapshots").mkdir(exist_ok=True)
            (root / "chunks").mkdir(exist_ok=True)
            body = {"format": FORMAT, "id": secrets.token_hex(16), "created": time.time()}
            atomic_write(config, json.dumps(body, indent=2).encode())
        return cls.open(root)

    @classmethod
    def open(cls, root: Path) -> Repository:
        root = Path(root)
        try:
            config = json.loads((root / "config.json").read_text())
        except FileNotFoundError:
            raise NotARepository(f"{root} is not a backup repository (no config.json); "
                                 "`minidropbox backup now --repo DIR` creates one.") from None
        except ValueError:
            raise NotARepository(f"{root}/config.json is damaged.") from None
        if config.get("format") != FORMAT:
            raise NotARepository(f"{root} has repository format {config.get('format')}, "
                                 f"this version reads format {FORMAT}.")
        return cls(root)

    @property
    def chunks(self) -> DiskChunkStore:
        """The chunk store (opened lazily: opening counts every chunk file)."""
        if self._store is None:
            self._store = DiskChunkStore(self.root / "chunks")
        return self._store

    # -- locks --------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, purpose: str) -> Iterator[None]:
        """The writer lock (``backup now``, ``prune``): one at a time, never waits.

        An flock, so a writer killed by SIGKILL holds nothing: the lock file it leaves behind
        is stale by construction and the next writer simply takes it. The file names the
        holder (pid, host, purpose) for the message a refused writer prints.
        """
        path = self.root / "lock"
        fh = open(path, "a+")  # noqa: SIM115 - closed below, the lock lives as long as it
        try:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RepositoryLocked(f"The repository is locked: {_holder(fh)}.") from None
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "purpose": purpose, "since": time.time()}))
            fh.flush()
            yield
        finally:
            fh.close()  # releases the flock

    @contextlib.contextmanager
    def readers_lock(self, exclusive: bool) -> Iterator[None]:
        """Shared by readers (verify, restore); exclusive for prune, which deletes."""
        path = self.root / "lock.readers"
        with open(path, "a+") as fh:
            try:
                fcntl.flock(fh.fileno(), (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
                            | fcntl.LOCK_NB)
            except BlockingIOError:
                what = "verify or restore is reading it" if exclusive else "a prune is running"
                raise RepositoryLocked(f"The repository is busy: {what}; try again later.") \
                    from None
            yield

    # -- snapshots ------------------------------------------------------------------------

    def snapshots(self) -> list[Snapshot]:
        """Complete snapshots (those with a manifest), oldest first."""
        found = []
        for folder in sorted(self.snapshots_dir.iterdir()):
            if folder.name.startswith(".") or not folder.is_dir():
                continue
            try:
                manifest = json.loads((folder / MANIFEST).read_text())
            except FileNotFoundError:
                continue  # incomplete: killed before its manifest was written
            found.append(Snapshot(folder.name, folder, manifest))
        return sorted(found, key=lambda s: (s.time, s.id))

    def snapshot(self, ref: str) -> Snapshot:
        """A snapshot by id, unique id prefix, or ``latest``."""
        snaps = self.snapshots()
        if ref == "latest":
            if not snaps:
                raise SnapshotNotFound("The repository has no snapshots yet.")
            return snaps[-1]
        matches = [s for s in snaps if s.id == ref] or [s for s in snaps if s.id.startswith(ref)]
        if len(matches) != 1:
            detail = "is ambiguous" if matches else "does not exist (see `backup list`)"
            raise SnapshotNotFound(f"Snapshot {ref} {detail}.")
        return matches[0]

    def incomplete(self) -> list[Path]:
        """Snapshot folders without a manifest: leftovers of interrupted backups."""
        return [p for p in sorted(self.snapshots_dir.iterdir())
                if p.is_dir() and not (p / MANIFEST).exists()]

    def remove_incomplete(self) -> int:
        """Delete interrupted snapshots (caller holds the writer lock); returns how many."""
        leftovers = self.incomplete()
        for folder in leftovers:
            shutil.rmtree(folder)
        for stray in self.snapshots_dir.glob(TEMP_PREFIX + "*"):
            stray.unlink(missing_ok=True)
        if leftovers:
            fsync_dir(self.snapshots_dir)
        return len(leftovers)

    def remove_snapshot(self, snap: Snapshot) -> None:
        """Forget a snapshot: its manifest goes first, so a crash leaves it merely incomplete."""
        (snap.path / MANIFEST).unlink(missing_ok=True)
        fsync_dir(snap.path)
        shutil.rmtree(snap.path)
        fsync_dir(self.snapshots_dir)

    def referenced_chunks(self, snaps: list[Snapshot] | None = None) -> set[str]:
        names: set[str] = set()
        for snap in self.snapshots() if snaps is None else snaps:
            names.update(snap.chunk_list())
        return names

    def iter_chunk_names(self) -> Iterator[str]:
        after = ""
        while True:
            page = self.chunks.list(after, 1000)
            if not page:
                return
            yield from page
            after = page[-1]


def _holder(fh: TextIO) -> str:
    fh.seek(0)
    try:
        info = json.loads(fh.read() or "{}")
    except ValueError:
        info = {}
    if not info:
        return "held by another process"
    since = datetime.fromtimestamp(float(info.get("since", 0)), UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return (f"{info.get('purpose', 'a writer')} by pid {info.get('pid')} on "
            f"{info.get('host')} since {since}")
