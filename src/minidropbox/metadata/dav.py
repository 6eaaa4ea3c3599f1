"""Repository functions for WebDAV: dead properties and the SHA-1s of file contents."""

from __future__ import annotations

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.exc import IntegrityError

from minidropbox.metadata import upserts
from minidropbox.metadata.entries import _like_prefix
from minidropbox.metadata.replicas import in_batches
from minidropbox.metadata.tables import content_checksums, dav_properties


def checksums_of_many(conn: Connection,
                      content_hashes: list[str]) -> dict[str, tuple[str, str]]:
    """(SHA-1, MD5) by content hash, for those known."""
    found: dict[str, tuple[str, str]] = {}
    unique = sorted(set(content_hashes))
    t = content_checksums
    for i in range(0, len(unique), 500):
        rows = conn.execute(select(t.c.content_hash, t.c.sha1, t.c.md5)
                            .where(t.c.content_hash.in_(unique[i:i + 500])))
        found.update({r.content_hash: (r.sha1, r.md5) for r in rows})
    return found


def record_checksums(conn: Connection, content_hash: str, sha1: str, md5: str) -> None:
    row = {"content_hash": content_hash, "sha1": sha1, "md5": md5}
    upsert = upserts.for_connection(_RECORD_CHECKSUMS, conn)
    if upsert is not None:  # one statement, no savepoint: every WebDAV PUT records one
        conn.execute(upsert, row)
        return
    try:
        with conn.begin_nested():
            conn.execute(insert(content_checksums), row)
    except IntegrityError:
        pass  # recorded meanwhile by another upload of the same content


# Insert or leave the row recorded meanwhile by another upload of the same content.
_RECORD_CHECKSUMS = upserts.per_dialect(
    lambda insert_for: insert_for(content_checksums).on_conflict_do_nothing(
        index_elements=["content_hash"]))


def _subtree(namespace_id: int, key: str, with_children: bool) -> ColumnElement[bool]:
    exact = dav_properties.c.path_key == key
    if not with_children:
        return and_(dav_properties.c.namespace_id == namespace_id, exact)
    under = dav_properties.c.path_key.like(_like_prefix(key), escape="\\")
    return and_(dav_properties.c.namespace_id == namespace_id, or_(exact, under))


def properties(conn: Connection, namespace_id: int, key: str) -> dict[str, str]:
    rows = conn.execute(select(dav_properties.c.name, dav_properties.c.value)
                        .where(_subtree(namespace_id, key, False)))
    return {r.name: r.value for r in rows}


def names_held(conn: Connection, namespace_id: int, keys: list[str],
               names: list[str]) -> set[tuple[str, str]]:
    """(path key, name) of the dead properties among ``names`` held by any of ``keys`` (path
    keys in ``namespace_id``): a folder's listing asks once, not once per entry."""
    held: set[tuple[str, str]] = set()
    for batch in in_batches(sorted(set(keys))):
        rows = conn.execute(_NAMES_HELD, {"ns": namespace_id, "keys": batch,
                                          "names": sorted(set(names))})
        held.update((r.path_key, r.name) for r in rows)
    return held


_NAMES_HELD = select(dav_properties.c.path_key, dav_properties.c.name).where(
    dav_properties.c.namespace_id == bindparam("ns"),
    dav_properties.c.path_key.in_(bindparam("keys", expanding=True)),
    dav_properties.c.name.in_(bindparam("names", expanding=True)))


def count_properties(conn: Connection, namespace_id: int, key: str) -> int:
    return int(conn.execute(select(func.count()).select_from(dav_properties)
                            .where(_subtree(namespace_id, key, False))
                            ).scalar_one())


def set_property(conn: Connection, namespace_id: int, key: str, name: str, value: str) -> None:
    conn.execute(delete(dav_properties).where(
        _subtree(namespace_id, key, False), dav_properties.c.name == name))
    conn.execute(insert(dav_properties).values(namespace_id=namespace_id, path_key=key,
                                               name=name, value=value))


def remove_property(conn: Connection, namespace_id: int, key: str, name: str) -> None:
    conn.execute(delete(dav_properties).where(
        _subtree(namespace_id, key, False), dav_properties.c.name == name))


def remove_subtree(conn: Connection, namespace_id: int, key: str) -> None:
    conn.execute(delete(dav_properties).where(
        _subtree(namespace_id, key, True)))


def copy_subtree(conn: Connection, namespace_id: int, src_key: str, dest_key: str,
                 with_children: bool, move: bool) -> None:
    """Copy (or move) the properties of ``src_key`` (and below) to ``dest_key``."""
    rows = conn.execute(select(dav_properties).where(
        _subtree(namespace_id, src_key, with_children))).mappings().all()
    remove_subtree(conn, namespace_id, dest_key)
    if move:
        remove_subtree(conn, namespace_id, src_key)
    for row in rows:
        key = dest_key + row["path_key"][len(src_key):]
        conn.execute(insert(dav_properties).values(namespace_id=namespace_id, path_key=key,
                                                   name=row["name"], value=row["value"]))


def carry(conn: Connection, from_ns: int, from_key: str, to_ns: int, to_key: str,
          *, contents_only: bool = False) -> None:
    """Entries moved (by any route: the API, a sync client, sharing) take their dead
    properties along; whatever was at the destination is gone (the destination was free)."""
    where = (_subtree(from_ns, from_key, True) if not contents_only else and_(
        dav_properties.c.namespace_id == from_ns,
        dav_properties.c.path_key.like(_like_prefix(from_key), escape="\\")))
    rows = conn.execute(select(dav_properties).where(where)).mappings().all()
    if not rows:
        return
    conn.execute(delete(dav_properties).where(where))
    for row in rows:
        tail = row["path_key"][len(from_key):] if from_key != "/" else row["path_key"]
        key = (to_key if to_key != "/" else "") + tail or "/"
        conn.execute(delete(dav_properties).where(
            _subtree(to_ns, key, False), dav_properties.c.name == row["name"]))
        conn.execute(insert(dav_properties).values(namespace_id=to_ns, path_key=key,
                                                   name=row["name"], value=row["value"]))
