"""A write's lock checks read the locks as they are at the check, never from a snapshot the
request took earlier (dav/plain_put.py reads a PUT's caller and target in one transaction,
but not its locks): on SQLite a snapshot is fixed at its first read, so a lock granted after
it would be missed and the PUT would write under another client's lock."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from wsgidav.dav_error import DAVError

from minidropbox.dav.locks import DbLockManager, DbLockStorage
from minidropbox.metadata.db import Database


def _grant_elsewhere(path: Path, token: str) -> None:
    """Bob's exclusive lock on /7/a.txt, granted and committed by another connection (another
    replica)."""
    other = sqlite3.connect(path)
    other.execute(
        "INSERT INTO dav_locks (token, namespace_id, root, scope, depth, owner, principal,"
        " timeout, expire) VALUES (?, 7, '/7/a.txt', 'exclusive', '0', '', 'bob', 100, ?)",
        (token, time.time() + 100))
    other.commit()
    other.close()


def test_a_lock_committed_after_the_requests_snapshot_is_still_seen(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    locks = DbLockManager(DbLockStorage(db))
    with db.read() as snapshot:  # the request's caller and target lookups
        snapshot.execute(text("SELECT count(*) FROM dav_locks")).scalar_one()
        # Another client's LOCK, granted and committed meanwhile (by another replica).
        _grant_elsewhere(path, "opaquelocktoken:x")
        with pytest.raises(DAVError) as refused:
            locks.check_write_permission(url="/7/a.txt", depth="0", token_list=[],
                                         principal="alice")
        assert refused.value.value == 423
        with pytest.raises(DAVError), locks.write_transaction(
                url="/7/a.txt", token_list=[], principal="alice"):
            pass
    db.dispose()


class _Resolved:
    def writable(self) -> _Resolved:
        return self


class _Files:
    def resolve(self, *args: object) -> _Resolved:
        return _Resolved()


class _Session:
    """What ``plain_target`` asks of a request: one file, ``/a.txt`` in namespace 7."""

    principal = type("P", (), {"username": "alice"})()

    def files(self) -> _Files:
        return _Files()

    def mount_list(self, conn: object = None) -> list[object]:
        return []

    def metadata_in(self, conn: object, path: str) -> dict[str, object]:
        return {"type": "file", "path": "/a.txt"}

    def where(self, path: str) -> tuple[int, str]:
        return 7, path


def test_a_plain_put_sees_a_lock_granted_after_its_caller_was_looked_up(
        tmp_path: Path) -> None:
    from minidropbox.dav.plain_put import plain_target

    path = tmp_path / "m.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    locks = DbLockManager(DbLockStorage(db))
    with db.read() as snapshot:  # the caller's app password was read in it
        snapshot.execute(text("SELECT count(*) FROM dav_locks")).scalar_one()
        _grant_elsewhere(path, "opaquelocktoken:y")
        # Locked: the PUT is left to wsgidav, which answers 423.
        assert plain_target(_Session(), locks, "/a.txt", snapshot) is None  # type: ignore[arg-type]
    db.dispose()
