"""Repository functions for entries (files and folders) and their versions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    tuple_,
    update,
)

from minidropbox.core.paths import parent_of, path_key
from minidropbox.metadata import chunks as chunk_repo
from minidropbox.metadata import usage
from minidropbox.metadata.replicas import in_batches
from minidropbox.metadata.tables import (
    chunks,
    entries,
    namespaces,
    users,
    version_chunks,
    versions,
)


def _like_prefix(key: str) -> str:
    """A LIKE pattern matching everything under folder ``key`` (escaping LIKE wildcards)."""
    escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return ("" if key == "/" else escaped) + "/%"


# The statements run once per commit are built once: building a SQLAlchemy statement costs
# more than running it on SQLite, and commit_batch runs thousands of them.
_LIVE = select(entries).where(entries.c.namespace_id == bindparam("ns"),
                              entries.c.path_key == bindparam("key"),
                              entries.c.deleted_at.is_(None))
# The live entry at a path (if any) and its namespace's usage counters, in one row.
_LIVE_AND_USAGE = select(namespaces.c.entry_count.label("ns_entry_count"),
                         namespaces.c.chunk_refs.label("ns_chunk_refs"), entries).select_from(
    namespaces.outerjoin(entries, and_(entries.c.namespace_id == namespaces.c.id,
                                       entries.c.path_key == bindparam("key"),
                                       entries.c.deleted_at.is_(None)))).where(
    namespaces.c.id == bindparam("ns"))
_INSERT_ENTRY = insert(entries).returning(entries.c.id)
_INSERT_VERSION = insert(versions).returning(versions.c.id)
_INSERT_VERSION_CHUNK = insert(version_chunks)
_SET_CURRENT = update(entries).where(entries.c.id == bindparam("entry_id"))


def live(conn: Connection, namespace_id: int, path: str) -> dict[str, Any] | None:
    row = conn.execute(_LIVE, {"ns": namespace_id, "key": path_key(path)}).mappings().first()
    return dict(row) if row else None


def live_and_usage(conn: Connection, namespace_id: int,
                   path: str) -> tuple[dict[str, Any] | None, usage.Usage]:
    """``live`` and ``usage.of`` in one query (a commit asks both)."""
    row = dict(conn.execute(_LIVE_AND_USAGE, {"ns": namespace_id, "key": path_key(path)})
               .mappings().one())
    used = usage.Usage(int(row.pop("ns_entry_count")), int(row.pop("ns_chunk_refs")))
    return (row if row["id"] is not None else None), used


def _children_where(namespace_id: int, folder: str, recursive: bool,
                    after: str | None) -> list[Any]:
    key = path_key(folder)
    where = [entries.c.namespace_id == namespace_id, entries.c.deleted_at.is_(None)]
    if recursive:
        if key != "/":
            where.append(entries.c.path_key.like(_like_prefix(key), escape="\\"))
    else:
        where.append(entries.c.parent_key == key)
    if after is not None:
        where.append(entries.c.path_key > after)
    return where


def children(conn: Connection, namespace_id: int, folder: str, *, recursive: bool = False,
             after: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Live entries directly in (or anywhere under) ``folder``, ordered by path key."""
    stmt = select(entries).where(*_children_where(namespace_id, folder, recursive, after)) \
        .order_by(entries.c.path_key)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [dict(r) for r in conn.execute(stmt).mappings().all()]


_LISTED = (entries.c.path, entries.c.path_key, entries.c.kind, entries.c.version,
           entries.c.size, entries.c.content_hash, entries.c.modified)
_LISTED_KEYS = tuple(c.name for c in _LISTED)


def listed_children(conn: Connection, namespace_id: int, folder: str, *, recursive: bool,
                    after: str | None, limit: int) -> list[dict[str, Any]]:
    """``children`` with only the columns a listing shows (and ``path_key``, its cursor):
    a folder of 10,000 entries is listed in a fraction of the time full rows take, most of
    which goes to building each row's mapping."""
    stmt = select(*_LISTED).where(*_children_where(namespace_id, folder, recursive, after)) \
        .order_by(entries.c.path_key).limit(limit)
    return [dict(zip(_LISTED_KEYS, row, strict=True)) for row in conn.execute(stmt)]


def insert_entry(conn: Connection, namespace_id: int, path: str, kind: str, now: float,
                 modified: float | None = None) -> dict[str, Any]:
    values = dict(namespace_id=namespace_id, path=path, path_key=path_key(path),
                  parent_key=path_key(parent_of(path)), kind=kind,
                  modified=modified if modified is not None else now, created_at=now)
    entry_id = conn.execute(_INSERT_ENTRY, values).scalar_one()
    usage.add(conn, namespace_id, entries=1)
    return {"id": entry_id, "version": None, "size": None, "content_hash": None,
            "deleted_at": None, **values}


def insert_file(conn: Connection, namespace_id: int, path: str, now: float, *, number: int,
                size: int, content_hash: str, chunk_hashes: list[str], mtime: float,
                device: str, author_id: int | None) -> dict[str, Any]:
    """A new file's entry and its version ``number``: what ``insert_entry``,
    ``insert_version`` and ``set_current`` write but the usage counters, in three statements
    fewer (the entry is inserted already current). The caller moves the counters (an entry,
    ``len(chunk_hashes)`` references): ``journal.append`` of the commit does, with its head."""
    values = dict(namespace_id=namespace_id, path=path, path_key=path_key(path),
                  parent_key=path_key(parent_of(path)), kind="file", modified=mtime,
                  created_at=now, version=number, size=size, content_hash=content_hash)
    entry_id = conn.execute(_INSERT_ENTRY, values).scalar_one()
    _insert_version_row(conn, entry_id, number, size, content_hash, chunk_hashes, mtime,
                        device, now, author_id)
    return {"id": entry_id, "deleted_at": None, **values}


def set_current(conn: Connection, entry_id: int, version: int, size: int, content_hash: str,
                modified: float) -> None:
    conn.execute(_SET_CURRENT, {"entry_id": entry_id, "version": version, "size": size,
                                "content_hash": content_hash, "modified": modified})


def set_mtime(conn: Connection, entry_id: int, version: int, mtime: float) -> None:
    """A file's modification time, on the entry and its current version."""
    conn.execute(update(entries).where(entries.c.id == entry_id).values(modified=mtime))
    conn.execute(update(versions).where(versions.c.entry_id == entry_id,
                                        versions.c.number == version).values(mtime=mtime))


def insert_version(conn: Connection, namespace_id: int, entry_id: int, number: int, size: int,
                   content_hash: str, chunk_hashes: list[str], mtime: float, device: str,
                   now: float, author_id: int | None = None) -> int:
    usage.add(conn, namespace_id, chunk_refs=len(chunk_hashes))
    return _insert_version_row(conn, entry_id, number, size, content_hash, chunk_hashes,
                               mtime, device, now, author_id)


def _insert_version_row(conn: Connection, entry_id: int, number: int, size: int,
                        content_hash: str, chunk_hashes: list[str], mtime: float,
                        device: str, now: float, author_id: int | None) -> int:
    version_id = conn.execute(_INSERT_VERSION, {
        "entry_id": entry_id, "number": number, "size": size, "content_hash": content_hash,
        "mtime": mtime, "device": device, "created_at": now,
        "author_id": author_id}).scalar_one()
    if chunk_hashes:
        conn.execute(_INSERT_VERSION_CHUNK, [
            {"version_id": version_id, "idx": i, "chunk_hash": h}
            for i, h in enumerate(chunk_hashes)])
    return int(version_id)


def copy_version(conn: Connection, namespace_id: int, entry_id: int, number: int,
                 old: dict[str, Any], mtime: float, device: str, now: float,
                 author_id: int | None = None) -> int:
    """A new version with ``old``'s size, content and chunk list, the list copied inside the
    database in one statement (a version may list 100,000 chunks)."""
    version_id = conn.execute(_INSERT_VERSION, {
        "entry_id": entry_id, "number": number, "size": old["size"],
        "content_hash": old["content_hash"], "mtime": mtime, "device": device,
        "created_at": now, "author_id": author_id}).scalar_one()
    copied = conn.execute(insert(version_chunks).from_select(
        ["version_id", "idx", "chunk_hash"],
        select(literal(version_id), version_chunks.c.idx, version_chunks.c.chunk_hash).where(
            version_chunks.c.version_id == old["id"]))).rowcount
    usage.add(conn, namespace_id, chunk_refs=copied)
    return int(version_id)


def count_chunks(conn: Connection, version_id: int) -> int:
    return int(conn.execute(select(func.count()).select_from(version_chunks).where(
        version_chunks.c.version_id == version_id)).scalar_one())


def list_versions(conn: Connection, entry_id: int) -> list[dict[str, Any]]:
    """Newest first, each with its author's name (``author``; None before version authors
    were recorded)."""
    rows = conn.execute(select(versions, users.c.username.label("author"))
                        .outerjoin(users, users.c.id == versions.c.author_id)
                        .where(versions.c.entry_id == entry_id)
                        .order_by(versions.c.number.desc())).mappings().all()
    return [dict(r) for r in rows]


def get_version(conn: Connection, entry_id: int, number: int) -> dict[str, Any] | None:
    row = conn.execute(select(versions).where(versions.c.entry_id == entry_id,
                                              versions.c.number == number)).mappings().first()
    return dict(row) if row else None


def live_many(conn: Connection, namespace_id: int,
              keys: list[str]) -> dict[str, dict[str, Any]]:
    """The live entries at path keys ``keys``, by key: one query per 500 keys (a download of
    many small files asks for hundreds at once)."""
    out: dict[str, dict[str, Any]] = {}
    for batch in in_batches(sorted(set(keys))):
        rows = conn.execute(select(entries).where(
            entries.c.namespace_id == namespace_id, entries.c.path_key.in_(batch),
            entries.c.deleted_at.is_(None))).mappings()
        out.update((r["path_key"], dict(r)) for r in rows)
    return out


def versions_many(conn: Connection,
                  wanted: list[tuple[int, int]]) -> dict[tuple[int, int], dict[str, Any]]:
    """The versions ``(entry id, number)`` in ``wanted`` that exist, by that pair."""
    out: dict[tuple[int, int], dict[str, Any]] = {}
    for batch in in_batches(sorted(set(wanted))):
        rows = conn.execute(select(versions).where(
            tuple_(versions.c.entry_id, versions.c.number).in_(batch))).mappings()
        out.update(((r["entry_id"], r["number"]), dict(r)) for r in rows)
    return out


def chunk_lists(conn: Connection, version_ids: list[int]) -> dict[int, list[tuple[str, int]]]:
    """The ordered (hash, size) list of each version in ``version_ids``'s chunks (an empty
    file has none)."""
    out: dict[int, list[tuple[str, int]]] = {v: [] for v in version_ids}
    for batch in in_batches(sorted(set(version_ids))):
        rows = conn.execute(
            select(version_chunks.c.version_id, version_chunks.c.chunk_hash, chunks.c.size)
            .join(chunks, chunks.c.hash == version_chunks.c.chunk_hash)
            .where(version_chunks.c.version_id.in_(batch))
            .order_by(version_chunks.c.version_id, version_chunks.c.idx))
        for version_id, chunk_hash, size in rows:
            out[version_id].append((chunk_hash, int(size)))
    return out


def subtree_filter(namespace_id: int, folder_key: str) -> Any:
    return and_(entries.c.namespace_id == namespace_id, entries.c.deleted_at.is_(None),
                entries.c.path_key.like(_like_prefix(folder_key), escape="\\"))


def move_entry(conn: Connection, entry: dict[str, Any], new_path: str) -> int:
    """Rename an entry and, for a folder, everything under it (one statement, however many
    there are). Returns rows moved."""
    old_key, new_key = path_key(entry["path"]), path_key(new_path)
    conn.execute(update(entries).where(entries.c.id == entry["id"]).values(
        path=new_path, path_key=new_key, parent_key=path_key(parent_of(new_path))))
    moved = 1
    if entry["kind"] == "folder":
        # Everything under the folder starts with its old path and key (its parent too):
        # swap that prefix. Both are NFC, and casefolding works character by character.
        path_len, key_len = len(entry["path"]), len(old_key)
        moved += conn.execute(update(entries).where(
            subtree_filter(entry["namespace_id"], old_key)).values(
            path=literal(new_path) + func.substr(entries.c.path, path_len + 1),
            path_key=literal(new_key) + func.substr(entries.c.path_key, key_len + 1),
            parent_key=literal(new_key) + func.substr(entries.c.parent_key, key_len + 1),
        )).rowcount
    return moved


def count_below(conn: Connection, namespace_id: int, folder_key: str) -> int:
    """Live entries under a folder."""
    return int(conn.execute(select(func.count()).select_from(entries).where(
        subtree_filter(namespace_id, folder_key))).scalar_one())


def depth_below(conn: Connection, namespace_id: int, folder_key: str) -> int:
    """The most ``/`` in the path of any live entry under a folder (0 if it is empty)."""
    slashes = func.length(entries.c.path) - func.length(func.replace(entries.c.path, "/", ""))
    return int(conn.execute(select(func.coalesce(func.max(slashes), 0)).where(
        subtree_filter(namespace_id, folder_key))).scalar_one())


def count_deleted_with(conn: Connection, entry: dict[str, Any]) -> int:
    """Trashed entries that an undelete of ``entry`` would bring back with it."""
    if entry["kind"] != "folder":
        return 0
    return int(conn.execute(select(func.count()).select_from(entries).where(
        entries.c.namespace_id == entry["namespace_id"],
        entries.c.deleted_at == entry["deleted_at"],
        entries.c.path_key.like(_like_prefix(entry["path_key"]), escape="\\"))).scalar_one())


def delete_entry(conn: Connection, entry: dict[str, Any], now: float) -> int:
    """Move an entry (and a folder's contents) to the trash. Returns rows deleted."""
    count = 1
    if entry["kind"] == "folder":
        count += conn.execute(update(entries).where(
            subtree_filter(entry["namespace_id"], entry["path_key"])).values(
            deleted_at=now)).rowcount
    conn.execute(update(entries).where(entries.c.id == entry["id"]).values(deleted_at=now))
    return count


def trashed(conn: Connection, namespace_id: int, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(select(entries).where(
        entries.c.namespace_id == namespace_id, entries.c.deleted_at.is_not(None))
        .order_by(entries.c.deleted_at.desc(), entries.c.path_key).limit(limit)).mappings().all()
    return [dict(r) for r in rows]


def latest_trashed(conn: Connection, namespace_id: int, path: str) -> dict[str, Any] | None:
    row = conn.execute(select(entries).where(
        entries.c.namespace_id == namespace_id, entries.c.path_key == path_key(path),
        entries.c.deleted_at.is_not(None)).order_by(entries.c.deleted_at.desc())
        .limit(1)).mappings().first()
    return dict(row) if row else None


def undelete(conn: Connection, entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Bring back an entry and what was deleted with it; returns the restored rows."""
    restored = [entry]
    if entry["kind"] == "folder":
        like = _like_prefix(entry["path_key"])
        rows = conn.execute(select(entries).where(
            entries.c.namespace_id == entry["namespace_id"],
            entries.c.deleted_at == entry["deleted_at"],
            entries.c.path_key.like(like, escape="\\"))).mappings().all()
        restored += [dict(r) for r in rows]
    ids = [r["id"] for r in restored]
    conn.execute(update(entries).where(entries.c.id.in_(ids)).values(deleted_at=None))
    return restored


def purge_trash(conn: Connection, namespace_id: int, path: str | None) -> int:
    where = [entries.c.namespace_id == namespace_id, entries.c.deleted_at.is_not(None)]
    if path is not None:
        key = path_key(path)
        where.append((entries.c.path_key == key)
                     | entries.c.path_key.like(_like_prefix(key), escape="\\"))
    ids = [r[0] for r in conn.execute(select(entries.c.id).where(*where)).all()]
    owner = conn.execute(select(namespaces.c.owner_id).where(
        namespaces.c.id == namespace_id)).scalar_one()
    for start in range(0, len(ids), 500):
        batch = ids[start:start + 500]
        version_ids = select(versions.c.id).where(versions.c.entry_id.in_(batch))
        held = conn.execute(
            select(versions.c.author_id, version_chunks.c.chunk_hash).distinct()
            .join(versions, versions.c.id == version_chunks.c.version_id)
            .where(versions.c.entry_id.in_(batch))).all()
        refs = conn.execute(delete(version_chunks).where(
            version_chunks.c.version_id.in_(version_ids))).rowcount
        usage.add(conn, namespace_id, entries=-len(batch), chunk_refs=-refs)
        conn.execute(delete(versions).where(versions.c.entry_id.in_(batch)))
        conn.execute(delete(entries).where(entries.c.id.in_(batch)))
        # Deleted for good: who held these chunks through the purged versions holds them no
        # more (unless another version of theirs uses them), so the bytes are neither
        # counted nor staged, and GC may take them.
        hashes = sorted({h for _, h in held})
        for user_id in {owner, *(a for a, _ in held if a is not None)}:
            chunk_repo.release(conn, int(user_id), hashes)
    return len(ids)


def count_live(conn: Connection, namespace_id: int) -> int:
    return int(conn.execute(select(func.count()).select_from(entries).where(
        entries.c.namespace_id == namespace_id, entries.c.deleted_at.is_(None))).scalar_one())
