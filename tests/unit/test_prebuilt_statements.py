"""The statements built once at import (upserts, lookups with bound lists) keep the meaning of
the ones they replaced, on SQLite and, when the test server is there, on PostgreSQL: a second
upload of the same content keeps its first checksums, a copy found bad is marked good again
when it is stored again, lookups by a list see every item of it, and the fence epoch read by
every upload sees a deletion begin."""

from __future__ import annotations

import uuid

from sqlalchemy import insert, select, update

from minidropbox.metadata import chunks, dav, fence, replicas
from minidropbox.metadata.db import Database
from minidropbox.metadata.tables import content_checksums, nodes, users
from minidropbox.metadata.tables import replicas as replica_rows


def unique(prefix: str) -> str:
    """A name no earlier run left in a shared database (hashes are 64 hex digits)."""
    return (prefix + uuid.uuid4().hex * 2)[:64]


def test_checksums_recorded_twice_keep_the_first(db: Database) -> None:
    content = unique("c")
    with db.write() as conn:
        dav.record_checksums(conn, content, "1" * 40, "a" * 32)
        dav.record_checksums(conn, content, "2" * 40, "b" * 32)  # the same content again
    with db.read() as conn:
        assert dav.checksums_of_many(conn, [content]) == {content: ("1" * 40, "a" * 32)}
        row = conn.execute(select(content_checksums.c.sha1)
                           .where(content_checksums.c.content_hash == content)).all()
    assert len(row) == 1


def test_recording_chunks_again_marks_a_bad_copy_good_and_lists_see_every_item(
        db: Database) -> None:
    a, b = unique("a"), unique("b")
    node_a, node_b = unique("n")[:20], unique("m")[:20]
    with db.write() as conn:
        for name in (node_a, node_b):
            conn.execute(insert(nodes).values(name=name, url=f"http://{name}"))
        user = conn.execute(insert(users).values(
            username=unique("u")[:30], password_hash="x", created_at=1.0,
            password_changed_at=1.0)
            .returning(users.c.id)).scalar_one()
        chunks.record_chunks(conn, [chunks.NewChunk(a, 10, [node_a, node_b]),
                                    chunks.NewChunk(b, 20, [node_a])], user, 2.0)
        node_b_id = conn.execute(select(nodes.c.id).where(nodes.c.name == node_b)).scalar_one()
        conn.execute(update(replica_rows).where(replica_rows.c.chunk_hash == a,
                                                replica_rows.c.node_id == node_b_id)
                     .values(state="corrupt"))
    with db.read() as conn:
        assert replicas.bad_holders(conn, a) == [node_b]
        assert replicas.good_replicas(conn, a) == [node_a]
        assert chunks.owned_sizes(conn, user, [a, b, unique("z")]) == {a: 10, b: 20}
        assert chunks.owned_among(conn, user, [a, b]) == {a, b}
        assert chunks.user_owns(conn, user, b) and not chunks.user_owns(conn, user + 1, b)
        token = fence.writer_token(conn)
    with db.write() as conn:  # a deletion begins: a writer's token taken before is stale
        opened = fence.open_fence(conn, 4.0, 60.0)
        assert opened is not None and not fence.still_valid(conn, token)
        fence.close_fence(conn, opened)
        assert fence.epoch(conn) == opened + 1
    with db.write() as conn:  # stored again on node_b: its copy is good again
        chunks.record_chunks(conn, [chunks.NewChunk(a, 10, [node_b])], None, 3.0)
    with db.read() as conn:
        assert replicas.bad_holders(conn, a) == []
        assert sorted(replicas.good_replicas(conn, a)) == sorted([node_a, node_b])


def test_holders_an_upload_did_not_write_keep_their_rows_as_they_are(db: Database) -> None:
    """A node that held a good copy when the upload was admitted is not written again; if a
    read or the audit has marked its copy bad since, recording the upload leaves it bad (it
    would hide a copy that is gone), while a node the upload wrote is marked good."""
    a = unique("a")
    node_a, node_b, node_c = (unique(p)[:20] for p in "nmo")
    with db.write() as conn:
        for name in (node_a, node_b, node_c):
            conn.execute(insert(nodes).values(name=name, url=f"http://{name}"))
        chunks.record_chunks(conn, [chunks.NewChunk(a, 10, [node_a, node_b])], None, 1.0)
        replicas.mark_bad(conn, a, node_b, "missing", 2.0)
        chunks.record_chunks(conn, [chunks.NewChunk(a, 10, [], [node_a, node_b, node_c])],
                             None, 3.0)
    with db.read() as conn:
        assert replicas.bad_holders(conn, a) == [node_b]
        assert sorted(replicas.good_replicas(conn, a)) == sorted([node_a, node_c])
    with db.write() as conn:  # written again on node_b: good again
        chunks.record_chunks(conn, [chunks.NewChunk(a, 10, [node_b], [node_a])], None, 4.0)
    with db.read() as conn:
        assert replicas.bad_holders(conn, a) == []
