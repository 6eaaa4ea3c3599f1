"""A PROPFIND or MKCOL reads in one transaction (``DavSession.share_reads``)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import text

from minidropbox.dav.session import DavSession
from minidropbox.metadata.db import Database
from minidropbox.service.accounts import Principal

ALICE = Principal(1, "alice", "app-password:1", 10, False, None)


def _session(db: Database) -> DavSession:
    return DavSession(SimpleNamespace(db=db), ALICE, None)  # type: ignore[arg-type]


def _begins(db: Database) -> list[Any]:
    seen: list[Any] = []
    from sqlalchemy import event

    event.listen(db.engine, "begin", lambda conn: seen.append(conn))
    return seen


def test_shared_reads_use_one_transaction_until_ended(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    begins = _begins(db)
    s = _session(db)
    s.share_reads()
    with s.reading() as a:
        a.execute(text("SELECT 1"))
    with s.reading() as b:
        b.execute(text("SELECT 2"))
    assert a is b and len(begins) == 1
    s.end_reads()
    assert a.closed
    with s.reading() as c:  # after the end: a transaction of its own again
        c.execute(text("SELECT 3"))
    assert c is not a and len(begins) == 2
    db.dispose()


def test_other_requests_read_in_a_transaction_per_lookup(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    begins = _begins(db)
    s = _session(db)
    for _ in range(3):
        with s.reading() as conn:
            conn.execute(text("SELECT 1"))
    assert len(begins) == 3
    s.end_reads()  # nothing to close
    db.dispose()
