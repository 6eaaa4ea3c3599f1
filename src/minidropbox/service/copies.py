"""Server-side copy: a file or a folder tree copied without moving a byte, inside one
namespace or between two (the caller's own tree and a shared folder, or two shared folders).

Each copied file gets a first version whose chunk list is the source's current one, copied
inside the database (``entries.copy_version``): chunks are shared, nothing is uploaded or
read from a storage node. It counts against the metadata limits like any new file: entries
per change (checked on a count before any row is read), entries per account, chunk
references, depth. Every new entry is journaled (``mkdir``, ``commit``) so sync clients and
``watch`` see it.

Quota: inside one namespace a copy adds no bytes (its chunks already count once for the
namespace's owner). Into another namespace the chunks new to that namespace's owner are
charged to them, checked and granted in the copy's own transaction, under their root
namespace's lock (the lock their own uploads take for the same rule): the copy is refused
whole (507) if it does not fit, and a refused copy charges nobody. Granting the chunks to the
destination's owner reveals nothing: the caller could read every byte of the source, and
the owner can read every byte put in their namespace.

Locks: the destination namespace, then (for a shared folder) its owner's root: shared
namespaces before root ones, the order every writer keeps. The source is only read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from minidropbox.core.errors import AlreadyExists, InvalidInput, NotFound, QuotaExceeded
from minidropbox.core.paths import check_renamed, depth, is_within, lookup_path, path_key
from minidropbox.core.units import human_bytes
from minidropbox.metadata import accounts as account_repo
from minidropbox.metadata import chunks as chunk_repo
from minidropbox.metadata import entries as repo
from minidropbox.metadata import journal, shares
from minidropbox.service.accounts import Principal
from minidropbox.service.tree_limits import ChangeBudget

if TYPE_CHECKING:
    from minidropbox.service.files import FileService

Shown = Callable[[str], str]  # a namespace's path as the caller names it


def _same(path: str) -> str:
    return path


def copy_entry(files: FileService, principal: Principal, raw_from: str, raw_to: str, *,
               dst: Principal | None = None, show_src: Shown = _same,
               show_dst: Shown = _same) -> dict[str, Any]:
    """Copy ``raw_from`` (a file, or a folder with everything in it) of ``principal``'s
    namespace to ``raw_to`` of ``dst``'s (default: the same namespace), which must not
    exist; its parents are made. The root of another namespace (a whole shared folder) may
    be copied. ``show_src``/``show_dst`` name paths in messages as the caller knows them.
    Returns the new top entry, at its path in ``dst``'s namespace."""
    from minidropbox.service.files import ROOT, public_entry

    dst = dst or principal
    src_ns, dst_ns = principal.namespace_id, dst.namespace_id
    across = src_ns != dst_ns
    src, target_top = lookup_path(raw_from), lookup_path(raw_to)
    if target_top == "/" or (src == "/" and not across):
        raise InvalidInput("The root folder cannot be copied, nor copied over.")
    now = files.clock()
    with files.db.write() as conn:
        journal.moved_heads(conn)
        journal.lock_namespace(conn, dst_ns)
        top: dict[str, Any] | None = dict(ROOT) if src == "/" else repo.live(conn, src_ns, src)
        if top is None:
            raise NotFound(f"{show_src(src)} does not exist.")
        if not across and top["kind"] == "folder" and is_within(target_top, src):
            raise InvalidInput("A folder cannot be copied into itself.")
        if top["kind"] == "folder" and src != "/" and shares.mounts_under(conn, src_ns, src):
            raise InvalidInput(f"{show_src(src)} holds a shared folder; copy that one on its "
                               "own.")
        if repo.live(conn, dst_ns, target_top) is not None:
            raise AlreadyExists(f"{show_dst(target_top)} already exists.")
        if src != "/":
            check_renamed(top["path"], target_top)
        below: list[dict[str, Any]] = []
        if top["kind"] == "folder":
            # Counted before any row is read: the request names the folder, not its size.
            files.limits.check_change(repo.count_below(conn, src_ns, path_key(src)) + 1)
            below = repo.children(conn, src_ns, top["path"], recursive=True)
        files.limits.check_change(len(below) + 1)
        deepest = max((depth(e["path"]) for e in below), default=depth(top["path"]))
        files.limits.check_depth(target_top, deepest - depth(top["path"]))
        grants = _charge(conn, dst, [e["id"] for e in [top, *below] if e["kind"] == "file"]) \
            if across else None
        budget = ChangeBudget(files.limits)
        files._ensure_parents(conn, dst, target_top, now, budget=budget)
        for entry in [top, *below]:  # ordered by path: a folder before what is in it
            rest = entry["path"][len(top["path"]):] if src != "/" else \
                ("" if entry is top else entry["path"])
            target = target_top + rest
            if entry["kind"] == "folder":
                files._new_entry(conn, dst, target, "folder", now, budget)
                journal.append(conn, dst_ns, "mkdir", target, "folder", now)
            else:
                _copy_file(files, conn, dst, entry, target, now, budget)
        if grants is not None:
            owner, hashes = grants
            for chunk_hash in hashes:
                chunk_repo.grant(conn, owner, chunk_hash, now)
        made = repo.live(conn, dst_ns, target_top)
        heads = journal.moved_heads(conn)
    files.announce(heads)
    assert made is not None and path_key(made["path"]) == path_key(target_top)
    return public_entry(made)


def _charge(conn: Connection, dst: Principal, file_ids: list[int]) -> tuple[int, list[str]]:
    """Check that the chunks of these files' current versions fit the quota of the
    destination namespace's owner (``QuotaExceeded`` if not); the owner and the chunks to
    grant them once the copy is made."""
    folder = shares.folder(conn, dst.namespace_id)
    if folder is None:  # the caller's own tree
        owner, quota = dst.user_id, dst.quota_bytes
    else:
        owner, quota = folder["owner_id"], folder["owner_quota"]
        journal.lock_namespace(conn, account_repo.root_namespace(conn, owner))
    hashes = shares.current_chunks(conn, file_ids)
    if quota is not None:
        counted = chunk_repo.committed_among(conn, owner, hashes)
        new = sum(size for h, size in chunk_repo.sizes(conn, hashes).items()
                  if h not in counted)
        used = chunk_repo.used_bytes(conn, owner)
        if new and used + new > quota:
            whose = "your" if owner == dst.user_id else "the shared folder owner's"
            raise QuotaExceeded(
                f"This copy needs {human_bytes(new)} more but only "
                f"{human_bytes(max(0, quota - used))} of {whose} quota are left; nothing "
                "was copied.")
    return owner, hashes


def _copy_file(files: FileService, conn: Any, principal: Principal, entry: dict[str, Any],
               target: str, now: float, budget: ChangeBudget) -> None:
    ns = principal.namespace_id
    current = repo.get_version(conn, entry["id"], entry["version"])
    if current is None:  # a live file always has its current version
        raise NotFound(f"{entry['path']} has no current version.")
    files.limits.check_chunk_refs(conn, ns, repo.count_chunks(conn, current["id"]),
                                  current["size"])
    new = files._new_entry(conn, principal, target, "file", now, budget)
    repo.copy_version(conn, ns, new["id"], 1, current, current["mtime"], "", now,
                      author_id=principal.user_id)
    repo.set_current(conn, new["id"], 1, current["size"], current["content_hash"],
                     current["mtime"])
    journal.append(conn, ns, "commit", target, "file", now, version=1,
                   size=current["size"], content_hash=current["content_hash"])
