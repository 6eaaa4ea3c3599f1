"""The sync state DB: what this folder and the server last agreed on.

``LOCAL_DIR/.minidropbox/state.db`` (SQLite, never synced) holds one row per path: the server
version and content hash both sides had, and the local size/mtime/ctime/inode at that moment,
so a later scan re-reads only files whose stat moved. It also keeps the account, server and
remote folder it belongs to (a folder is never silently synced against another account, whose
listing would look like mass deletion), the saved journal cursor and the server generation.

A row is written only after the action it records has happened (``synchronous=FULL``; the
executor commits a round's rows in batches), so a crash leaves at worst rows that are behind,
which the next reconcile recognises (both sides equal → agree).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from minidropbox.core.paths import path_key
from minidropbox.core.reconcile import Item, Kind

STATE_DIR = ".minidropbox"
SCHEMA = """
CREATE TABLE IF NOT EXISTS base (
    key TEXT PRIMARY KEY, path TEXT NOT NULL, kind TEXT NOT NULL, version INTEGER,
    size INTEGER, hash TEXT, mtime_ns INTEGER, ctime_ns INTEGER, ino INTEGER);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pending (
    key TEXT PRIMARY KEY, side TEXT NOT NULL, path TEXT NOT NULL, kind TEXT NOT NULL,
    version INTEGER, size INTEGER, hash TEXT, mtime_ns INTEGER, ctime_ns INTEGER, ino INTEGER,
    source TEXT);
"""


@dataclass(frozen=True)
class LocalStat:
    """What identifies a local file's content without reading it."""

    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int


UNKNOWN_STAT = LocalStat(-1, -1, -1, -1)  # never equal to a real stat: forces a re-read


@dataclass(frozen=True)
class BaseRow:
    item: Item
    stat: LocalStat | None


@dataclass(frozen=True)
class Pending:
    """A step that was about to change one side (written, and made durable, before it
    starts): ``side="local"``, the download of ``item`` renamed from a temp file with
    ``stat``; ``side="remote"``, the commit of ``item.hash`` from a local file that had
    ``stat``; ``"move-local"`` / ``"move-remote"``, the move of ``source`` to ``item.path``
    there. If the process dies before the base row is written, the next round looks at
    that side: if the step happened, ``item`` is what both sides held at that moment
    (``SyncEngine._settle_pending``), so a change made since is a change, not a conflict."""

    side: str
    item: Item
    stat: LocalStat
    source: str | None = None


STATE_FILE = f"{STATE_DIR}/state.db"  # where a sync folder keeps its state, inside it


class StateDB:
    """One sync folder's state; used from one thread.

    ``rows`` answers from memory while the base is as it last read it: every method that
    writes the base counts the write (``_writes``) before it runs, whether it then succeeds,
    fails or is rolled back, and only a read made outside a transaction is kept (one made
    inside could see rows a rollback undoes). Nothing else writes the file: only this class
    opens it, and one process at a time holds the folder (``folder_lock``). Every round
    reads all rows; on an idle folder nothing has written them since the last round."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(exist_ok=True)
        self.path = path
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(SCHEMA)
        self._writes = 0  # writes of the base so far (attempted: counted before they run)
        self._kept: tuple[int, dict[str, BaseRow]] | None = None  # (at _writes, rows)

    def close(self) -> None:
        self._kept = None
        self.conn.close()

    # -- meta -------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str | None) -> None:
        if value is None:
            self.conn.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                              (key, value))

    # -- base -------------------------------------------------------------------------------
    def rows(self) -> dict[str, BaseRow]:
        """Every base row, by key (a new dict each call: the caller may change it)."""
        kept = self._kept
        if kept is not None and kept[0] == self._writes:
            return dict(kept[1])
        writes = self._writes
        out = self._read_rows()
        if not self.conn.in_transaction:
            self._kept = (writes, out)
            return dict(out)
        return out

    def _read_rows(self) -> dict[str, BaseRow]:
        out: dict[str, BaseRow] = {}
        for key, path, kind, version, size, h, mtime, ctime, ino in self.conn.execute(
                "SELECT key, path, kind, version, size, hash, mtime_ns, ctime_ns, ino "
                "FROM base"):
            kind_: Kind = "folder" if kind == "folder" else "file"
            # No stat (a folder), or none worth trusting (``UNKNOWN_STAT``): None, so the scan
            # reads the file at once rather than waiting for it to settle.
            known = mtime is not None and ino != UNKNOWN_STAT.ino
            stat = LocalStat(size, mtime, ctime, ino) if known else None
            out[key] = BaseRow(Item(path, kind_, h, version, size), stat)
        return out

    def put(self, item: Item, stat: LocalStat | None = None) -> None:
        """Record that both sides hold ``item`` (and, for a file, the local stat of it)."""
        self._writes += 1
        s = stat or UNKNOWN_STAT
        self.conn.execute(
            "INSERT OR REPLACE INTO base (key, path, kind, version, size, hash, mtime_ns, "
            "ctime_ns, ino) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (path_key(item.path), item.path, item.kind, item.version, item.size, item.hash,
             s.mtime_ns if item.kind == "file" else None, s.ctime_ns, s.ino))

    # -- transfers in flight ----------------------------------------------------------------
    def expect(self, side: str, item: Item, stat: LocalStat = UNKNOWN_STAT,
               source: str | None = None) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO pending (key, side, path, kind, version, size, hash, "
            "mtime_ns, ctime_ns, ino, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (path_key(item.path), side, item.path, item.kind, item.version, item.size,
             item.hash, stat.mtime_ns, stat.ctime_ns, stat.ino, source))

    def pending(self) -> list[Pending]:
        out = []
        for side, path, kind, version, size, h, mtime, ctime, ino, source in self.conn.execute(
                "SELECT side, path, kind, version, size, hash, mtime_ns, ctime_ns, ino, source "
                "FROM pending ORDER BY key"):
            kind_: Kind = "folder" if kind == "folder" else "file"
            out.append(Pending(side, Item(path, kind_, h, version, size),
                               LocalStat(size, mtime, ctime, ino), source))
        return out

    def clear_pending(self) -> None:
        self.conn.execute("DELETE FROM pending")

    def forget(self, path: str, subtree: bool = False) -> None:
        self._writes += 1
        key = path_key(path)
        with self._transaction():
            self.conn.execute("DELETE FROM base WHERE key = ?", (key,))
            if subtree:
                self.conn.execute("DELETE FROM base WHERE substr(key, 1, ?) = ?",
                                  (len(key) + 1, key + "/"))

    def rename(self, src: str, dst: str) -> None:
        """Move the rows of ``src`` and everything under it to ``dst``, in one transaction."""
        self._writes += 1
        skey = path_key(src)
        where = "key = ? OR substr(key, 1, ?) = ?"
        args = (skey, len(skey) + 1, skey + "/")
        with self._transaction():
            rows = self.conn.execute(
                "SELECT path, kind, version, size, hash, mtime_ns, ctime_ns, ino FROM base "
                f"WHERE {where}", args).fetchall()
            self.conn.execute(f"DELETE FROM base WHERE {where}", args)
            for path, *rest in rows:
                new = dst + path[len(src):]
                self.conn.execute(
                    "INSERT OR REPLACE INTO base (key, path, kind, version, size, hash, "
                    "mtime_ns, ctime_ns, ino) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (path_key(new), new, *rest))

    # -- batching ---------------------------------------------------------------------------
    # Rows may be committed late, never early: a row written after its action and lost in a
    # crash only makes the next round re-derive it ("both sides agree"). So the executor
    # batches a round's rows into a few transactions instead of one fsync per file.
    def begin(self) -> None:
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """Atomic on its own, or part of the batch already open."""
        if self.conn.in_transaction:
            self.conn.execute("SAVEPOINT step")
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK TO step")
                raise
            finally:
                self.conn.execute("RELEASE step")
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def clear(self) -> None:
        self._writes += 1
        self.conn.execute("DELETE FROM base")
