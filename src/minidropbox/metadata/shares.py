"""Repository functions for shared folders: the folders, their members, and mount points.

A shared folder is a namespace of its own (``shared_folders``). Each member who accepted has a
*mount point* in their root namespace: a folder entry whose ``mount_namespace_id`` names the
shared namespace. The owner is a member too (role ``owner``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Text,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    union_all,
    update,
)

from minidropbox.core.paths import parent_of, path_key
from minidropbox.metadata import dav as dav_repo
from minidropbox.metadata.entries import _like_prefix
from minidropbox.metadata.tables import (
    entries,
    namespaces,
    share_members,
    shared_folders,
    users,
    version_chunks,
    versions,
)


def create_folder(conn: Connection, owner_id: int, name: str, now: float) -> int:
    """A new namespace for a shared folder, with its owner as the first member."""
    ns = int(conn.execute(insert(namespaces).returning(namespaces.c.id),
                          {"owner_id": owner_id, "created_at": now}).scalar_one())
    conn.execute(insert(shared_folders).values(namespace_id=ns, owner_id=owner_id, name=name,
                                               created_at=now))
    conn.execute(insert(share_members).values(namespace_id=ns, user_id=owner_id, role="owner",
                                              state="active", created_at=now, accepted_at=now))
    return ns


def delete_folder(conn: Connection, namespace_id: int) -> None:
    """Forget a shared folder (members cascade); its namespace must be empty by now."""
    conn.execute(delete(shared_folders).where(shared_folders.c.namespace_id == namespace_id))
    conn.execute(delete(namespaces).where(namespaces.c.id == namespace_id))


def folder(conn: Connection, namespace_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(shared_folders, users.c.username.label("owner_name"),
                              users.c.quota_bytes.label("owner_quota"))
                       .join(users, users.c.id == shared_folders.c.owner_id)
                       .where(shared_folders.c.namespace_id == namespace_id)).mappings().first()
    return dict(row) if row else None


# -- members ---------------------------------------------------------------------------------

def membership(conn: Connection, namespace_id: int, user_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(share_members).where(
        share_members.c.namespace_id == namespace_id,
        share_members.c.user_id == user_id)).mappings().first()
    return dict(row) if row else None


def add_member(conn: Connection, namespace_id: int, user_id: int, role: str, invited_by: int,
               now: float) -> int:
    return int(conn.execute(insert(share_members).returning(share_members.c.id), {
        "namespace_id": namespace_id, "user_id": user_id, "role": role, "state": "invited",
        "invited_by": invited_by, "created_at": now}).scalar_one())


def set_role(conn: Connection, member_id: int, role: str) -> None:
    conn.execute(update(share_members).where(share_members.c.id == member_id).values(role=role))


def activate(conn: Connection, member_id: int, now: float) -> None:
    conn.execute(update(share_members).where(share_members.c.id == member_id)
                 .values(state="active", accepted_at=now))


def remove_member(conn: Connection, member_id: int) -> None:
    conn.execute(delete(share_members).where(share_members.c.id == member_id))


def members(conn: Connection, namespace_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(select(share_members, users.c.username)
                        .join(users, users.c.id == share_members.c.user_id)
                        .where(share_members.c.namespace_id == namespace_id)
                        .order_by(share_members.c.id)).mappings().all()
    return [dict(r) for r in rows]


def count_members(conn: Connection, namespace_id: int) -> int:
    return int(conn.execute(select(func.count()).select_from(share_members).where(
        share_members.c.namespace_id == namespace_id)).scalar_one())


def invites_of(conn: Connection, user_id: int, limit: int) -> list[dict[str, Any]]:
    """Pending invitations to ``user_id``, with the folder's name and owner."""
    rows = conn.execute(
        select(share_members.c.id, share_members.c.role, share_members.c.created_at,
               share_members.c.namespace_id, shared_folders.c.name,
               users.c.username.label("owner_name"))
        .join(shared_folders, shared_folders.c.namespace_id == share_members.c.namespace_id)
        .join(users, users.c.id == shared_folders.c.owner_id)
        .where(share_members.c.user_id == user_id, share_members.c.state == "invited")
        .order_by(share_members.c.id).limit(limit)).mappings().all()
    return [dict(r) for r in rows]


def invite(conn: Connection, member_id: int, user_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(share_members).where(
        share_members.c.id == member_id, share_members.c.user_id == user_id,
        share_members.c.state == "invited")).mappings().first()
    return dict(row) if row else None


# -- mount points ----------------------------------------------------------------------------

def mount_covering(conn: Connection, namespace_id: int, path: str) -> dict[str, Any] | None:
    """The live mount point at ``path`` or at one of its ancestors, in a root namespace."""
    keys = [path_key(path)]
    parent = path
    while parent != "/":
        parent = parent_of(parent)
        keys.append(path_key(parent))
    row = conn.execute(select(entries).where(
        entries.c.namespace_id == namespace_id, entries.c.path_key.in_(keys),
        entries.c.deleted_at.is_(None), entries.c.mount_namespace_id.is_not(None))
    ).mappings().first()
    return dict(row) if row else None


def mounts_under(conn: Connection, namespace_id: int, folder: str) -> list[dict[str, Any]]:
    """Live mount points strictly inside ``folder`` (the root: all), by path key."""
    where = [entries.c.namespace_id == namespace_id, entries.c.deleted_at.is_(None),
             entries.c.mount_namespace_id.is_not(None)]
    if folder != "/":
        where.append(entries.c.path_key.like(_like_prefix(path_key(folder)), escape="\\"))
    rows = conn.execute(select(entries).where(*where).order_by(entries.c.path_key)).mappings()
    return [dict(r) for r in rows]


def mount_of(conn: Connection, member_namespace: int,
             shared_namespace: int) -> dict[str, Any] | None:
    row = conn.execute(select(entries).where(
        entries.c.namespace_id == member_namespace, entries.c.deleted_at.is_(None),
        entries.c.mount_namespace_id == shared_namespace)).mappings().first()
    return dict(row) if row else None


def set_mount(conn: Connection, entry_id: int, shared_namespace: int | None) -> None:
    conn.execute(update(entries).where(entries.c.id == entry_id)
                 .values(mount_namespace_id=shared_namespace))


def drop_mount_of(conn: Connection, member_namespace: int,
                  shared_namespace: int) -> dict[str, Any] | None:
    """Remove a member's mount point of a shared folder for good, a trashed one too (it
    would name a folder they no longer belong to); returns the live one, if any."""
    where = [entries.c.namespace_id == member_namespace,
             entries.c.mount_namespace_id == shared_namespace]
    rows = [dict(r) for r in conn.execute(select(entries).where(*where)).mappings()]
    conn.execute(delete(entries).where(*where))
    return next((r for r in rows if r["deleted_at"] is None), None)


# -- moving entries between namespaces -------------------------------------------------------

def transfer(conn: Connection, from_ns: int, from_path: str, to_ns: int, to_path: str,
             *, contents_only: bool = False, trashed: bool = False) -> list[dict[str, Any]]:
    """Move the entry at ``from_path`` with a folder's contents (``contents_only``: just
    them; ``trashed``: the trash under it too) to ``to_ns`` at ``to_path``. Versions follow
    their entries. Returns the moved live rows as they are now, by path key."""
    old_key = path_key(from_path)
    under = entries.c.path_key.like(_like_prefix(old_key), escape="\\")
    where = [entries.c.namespace_id == from_ns,
             under if contents_only else (entries.c.path_key == old_key) | under]
    if not trashed:
        where.append(entries.c.deleted_at.is_(None))
    rows = conn.execute(select(entries.c.id, entries.c.path).where(*where)).all()
    for entry_id, path in rows:
        tail = path[len(from_path):] if from_path != "/" else path
        new = (to_path if to_path != "/" else "") + tail or "/"
        conn.execute(update(entries).where(entries.c.id == entry_id).values(
            namespace_id=to_ns, path=new, path_key=path_key(new),
            parent_key=path_key(parent_of(new))))
    dav_repo.carry(conn, from_ns, old_key, to_ns, path_key(to_path),
                   contents_only=contents_only)
    ids = [r[0] for r in rows]
    moved: list[dict[str, Any]] = []
    for start in range(0, len(ids), 500):
        moved += [dict(r) for r in conn.execute(select(entries).where(
            entries.c.id.in_(ids[start:start + 500]), entries.c.deleted_at.is_(None)))
            .mappings()]
    return sorted(moved, key=lambda r: r["path_key"])


def current_chunks(conn: Connection, entry_ids: list[int]) -> list[str]:
    """Every chunk the current versions of these entries reference."""
    out: set[str] = set()
    for start in range(0, len(entry_ids), 500):
        batch = entry_ids[start:start + 500]
        rows = conn.execute(
            select(version_chunks.c.chunk_hash).distinct()
            .join(versions, versions.c.id == version_chunks.c.version_id)
            .join(entries, (entries.c.id == versions.c.entry_id)
                  & (entries.c.version == versions.c.number))
            .where(entries.c.id.in_(batch))).all()
        out.update(r[0] for r in rows)
    return sorted(out)


# -- one listing across namespaces -----------------------------------------------------------

def merged_page(conn: Connection, namespace_id: int, folder: str,
                mounted: list[tuple[int, str]], after: str | None,
                limit: int) -> list[tuple[str, int, dict[str, Any]]]:
    """Up to ``limit`` live entries under ``folder`` of a root namespace and, for each
    (shared namespace, mount path key) in ``mounted``, everything in that shared folder, in
    one order: the key each entry has in the caller's tree. Ordered, compared with the
    cursor ``after`` and cut in SQL, so the database's collation decides the order and the
    cursor alike, and no more than ``limit`` rows leave the database, however many shared
    folders are mounted. Returns (merge key, index in ``mounted`` or -1, row)."""
    key = path_key(folder)
    own_where = [entries.c.namespace_id == namespace_id, entries.c.deleted_at.is_(None)]
    if key != "/":
        own_where.append(entries.c.path_key.like(_like_prefix(key), escape="\\"))
    branches = [select(entries, entries.c.path_key.label("merge_key"),
                       literal(-1, Integer).label("source")).where(*own_where)]
    for index, (shared_ns, prefix) in enumerate(mounted):
        branches.append(select(
            entries, (literal(prefix, Text) + entries.c.path_key).label("merge_key"),
            literal(index, Integer).label("source")).where(
            entries.c.namespace_id == shared_ns, entries.c.deleted_at.is_(None)))
    merged = union_all(*branches).subquery()
    stmt = select(merged)
    if after is not None:
        stmt = stmt.where(merged.c.merge_key > after)
    rows = conn.execute(stmt.order_by(merged.c.merge_key).limit(limit)).mappings().all()
    out = []
    for r in rows:
        row = dict(r)
        out.append((row.pop("merge_key"), int(row.pop("source")), row))
    return out


# Both run on every WebDAV request: built once (building costs more than running them).
_MEMBER_ROLES = select(share_members.c.namespace_id, share_members.c.role).where(
    share_members.c.user_id == bindparam("user_id"), share_members.c.state == "active")
_MOUNT_POINTS = select(entries.c.path, entries.c.mount_namespace_id).where(
    entries.c.mount_namespace_id.in_(bindparam("shared", expanding=True)),
    (entries.c.namespace_id + 0) == bindparam("ns"),
    entries.c.deleted_at.is_(None))


def mount_points(conn: Connection, namespace_id: int,
                 user_id: int) -> list[tuple[str, int, str]]:
    """(path, shared namespace, role) of each live mount point in ``namespace_id`` of a shared
    folder ``user_id`` is an active member of: what ``SharedFileService.mounts`` finds, found
    from the memberships (a few rows, indexed by user) and then those mount points by the
    mount index, instead of by walking every live entry of the namespace (which grows with
    the account's file count, and is paid on every request). ``namespace_id + 0``
    keeps SQLite's planner off the namespace's indexes, which it would otherwise prefer."""
    roles = dict(conn.execute(_MEMBER_ROLES, {"user_id": user_id}).all())
    if not roles:
        return []
    rows = conn.execute(_MOUNT_POINTS, {"shared": sorted(roles), "ns": namespace_id})
    return [(r.path, r.mount_namespace_id, roles[r.mount_namespace_id]) for r in rows]
