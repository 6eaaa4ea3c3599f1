"""Server-side copy: a file or a folder tree copied inside one namespace without moving a
byte.

Each copied file gets a first version whose chunk list is the source's current one, copied
inside the database (``entries.copy_version``): chunks are shared, nothing is uploaded or
read from a storage node, and the copy costs no quota bytes (those chunks are already
counted once for the namespace's owner). It does count against the metadata limits like any
new file: entries per change, entries per account, chunk references, depth. Every new entry
is journaled (``mkdir``, ``commit``) so sync clients and ``watch`` see it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from minidropbox.core.errors import AlreadyExists, InvalidInput, NotFound
from minidropbox.core.paths import check_renamed, depth, is_within, lookup_path, path_key
from minidropbox.metadata import entries as repo
from minidropbox.metadata import journal
from minidropbox.service.accounts import Principal
from minidropbox.service.tree_limits import ChangeBudget

if TYPE_CHECKING:
    from minidropbox.service.files import FileService


def copy_entry(files: FileService, principal: Principal, raw_from: str,
               raw_to: str) -> dict[str, Any]:
    """Copy ``raw_from`` (a file, or a folder with everything in it) to ``raw_to``, which must
    not exist; its parents are made. Returns the new top entry."""
    from minidropbox.service.files import public_entry

    src, dst = lookup_path(raw_from), lookup_path(raw_to)
    if "/" in (src, dst):
        raise InvalidInput("The root folder cannot be copied, nor copied over.")
    ns = principal.namespace_id
    now = files.clock()
    with files._write(ns) as conn:
        top = repo.live(conn, ns, src)
        if top is None:
            raise NotFound(f"{src} does not exist.")
        if top["kind"] == "folder" and is_within(dst, src):
            raise InvalidInput("A folder cannot be copied into itself.")
        if repo.live(conn, ns, dst) is not None:
            raise AlreadyExists(f"{dst} already exists.")
        check_renamed(top["path"], dst)
        below = repo.children(conn, ns, top["path"], recursive=True) \
            if top["kind"] == "folder" else []
        files.limits.check_change(len(below) + 1)  # before reading any version
        deepest = max((depth(e["path"]) for e in below), default=depth(top["path"]))
        files.limits.check_depth(dst, deepest - depth(top["path"]))
        budget = ChangeBudget(files.limits)
        files._ensure_parents(conn, principal, dst, now, budget=budget)
        for entry in [top, *below]:  # ordered by path: a folder before what is in it
            rest = entry["path"][len(top["path"]):]
            target = dst + rest
            if entry["kind"] == "folder":
                files._new_entry(conn, principal, target, "folder", now, budget)
                journal.append(conn, ns, "mkdir", target, "folder", now)
            else:
                _copy_file(files, conn, principal, entry, target, now, budget)
        made = repo.live(conn, ns, dst)
    assert made is not None and path_key(made["path"]) == path_key(dst)
    return public_entry(made)


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
