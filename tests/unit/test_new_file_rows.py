"""A new file's entry and first version, written by ``insert_file`` in fewer statements
(its usage counters moved by the journal append, with the head), are the rows and counters
that ``insert_entry``, ``insert_version`` and ``set_current`` wrote before, on SQLite and,
when the test server is there, on PostgreSQL."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from sqlalchemy import Connection, insert, select

from minidropbox.metadata import accounts, chunks, journal, usage
from minidropbox.metadata import entries as repo
from minidropbox.metadata.db import Database
from minidropbox.metadata.tables import entries, nodes, version_chunks, versions


def _rows(conn: Connection, entry_id: int) -> tuple[dict[str, Any], list[dict[str, Any]],
                                                     list[tuple[int, str]]]:
    entry = dict(conn.execute(select(entries).where(entries.c.id == entry_id)).mappings().one())
    vs = [dict(r) for r in conn.execute(select(versions).where(
        versions.c.entry_id == entry_id)).mappings()]
    listed = [(r.idx, r.chunk_hash) for r in conn.execute(
        select(version_chunks).where(version_chunks.c.version_id == vs[0]["id"])
        .order_by(version_chunks.c.idx))]
    for row in (entry, *vs):  # all but what names the entry
        for key in ("id", "entry_id", "path", "path_key"):
            row.pop(key, None)
    return entry, vs, listed


def test_a_new_file_is_written_as_before(db: Database) -> None:
    hashes = [hashlib.sha256(uuid.uuid4().bytes).hexdigest() for _ in range(2)]
    with db.write() as conn:
        user_id = accounts.create_user(conn, "u" + uuid.uuid4().hex[:12], "x", 1.0)
        ns = accounts.root_namespace(conn, user_id)
        conn.execute(insert(nodes).values(name=uuid.uuid4().hex[:20], url="http://n"))
        node = conn.execute(select(nodes.c.name)).scalars().first()
        chunks.record_chunks(conn, [chunks.NewChunk(h, 10, [node]) for h in hashes],
                             user_id, 2.0)
        before = usage.of(conn, ns)
        old = repo.insert_entry(conn, ns, "/a/Old.txt", "file", 3.0)
        repo.insert_version(conn, ns, old["id"], 1, 20, "c" * 64, hashes, 4.0, "dev", 3.0,
                            author_id=user_id)
        repo.set_current(conn, old["id"], 1, 20, "c" * 64, 4.0)
        middle = usage.of(conn, ns)
        new = repo.insert_file(conn, ns, "/a/New.txt", 3.0, number=1,
                               size=20, content_hash="c" * 64, chunk_hashes=hashes,
                               mtime=4.0, device="dev", author_id=user_id)
        head = journal.head(conn, ns)
        journal.append(conn, ns, "commit", "/a/New.txt", "file", 3.0, version=1, size=20,
                       content_hash="c" * 64, entries=1, chunk_refs=len(hashes))
        assert journal.head(conn, ns) == head + 1
        after = usage.of(conn, ns)
        old_rows, new_rows = _rows(conn, old["id"]), _rows(conn, new["id"])
    assert middle.entries - before.entries == after.entries - middle.entries == 1
    assert middle.chunk_refs - before.chunk_refs == after.chunk_refs - middle.chunk_refs == 2
    assert new_rows == old_rows
    assert {k: new[k] for k in ("path", "kind", "version", "size", "content_hash",
                                "modified")} == {
        "path": "/a/New.txt", "kind": "file", "version": 1, "size": 20,
        "content_hash": "c" * 64, "modified": 4.0}


def test_the_entry_and_usage_read_together_are_those_read_apart(db: Database) -> None:
    with db.write() as conn:
        user_id = accounts.create_user(conn, "u" + uuid.uuid4().hex[:12], "x", 1.0)
        other_id = accounts.create_user(conn, "u" + uuid.uuid4().hex[:12], "x", 1.0)
        ns, other = (accounts.root_namespace(conn, u) for u in (user_id, other_id))
        repo.insert_entry(conn, ns, "/Live.txt", "file", 3.0)
        gone = repo.insert_entry(conn, ns, "/Gone.txt", "file", 3.0)
        repo.delete_entry(conn, gone, 4.0)
        repo.insert_entry(conn, other, "/Theirs.txt", "file", 3.0)
        usage.add(conn, ns, chunk_refs=7)
        for path in ("/Live.txt", "/live.TXT", "/Gone.txt", "/Theirs.txt", "/Nothing"):
            entry, used = repo.live_and_usage(conn, ns, path)
            assert entry == repo.live(conn, ns, path)
            assert used == usage.of(conn, ns) == usage.Usage(2, 7)
