"""``db.savepoint``, the savepoint each commit of a batch runs in, straight to the driver:
what the block wrote stays when it succeeds and goes when it raises (also after a statement
the database refused, which on PostgreSQL aborts the transaction until rolled back to), the
transaction goes on either way, and SQLAlchemy's own savepoints nest inside it."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from minidropbox.metadata.db import Database, savepoint
from minidropbox.metadata.tables import nodes


def _node(name: str) -> object:
    return insert(nodes).values(name=name, url=f"http://{name}")


def test_a_block_that_raises_leaves_nothing_and_the_others_stay(db: Database) -> None:
    kept, dropped, refused, nested = (uuid.uuid4().hex[:20] for _ in range(4))
    with db.write() as conn:
        with savepoint(conn):
            conn.execute(_node(kept))
        with pytest.raises(ValueError), savepoint(conn):
            conn.execute(_node(dropped))
            raise ValueError
        with pytest.raises(IntegrityError), savepoint(conn):
            conn.execute(_node(refused))
            conn.execute(_node(kept))  # a name taken: the database refuses it
        with savepoint(conn):
            with pytest.raises(IntegrityError), conn.begin_nested():
                conn.execute(_node(kept))
            conn.execute(_node(nested))
        conn.execute(_node(uuid.uuid4().hex[:20]))  # the transaction goes on
    with db.read() as conn:
        names = set(conn.execute(select(nodes.c.name)).scalars())
    assert {kept, nested} <= names
    assert not {dropped, refused} & names
