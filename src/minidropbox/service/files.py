"""Files and folders: commits, browsing, moves, deletes, versions, rollback, trash.

Every change runs in one transaction that also appends to the namespace's journal, so the
journal is exactly the list of committed changes. Writers to one namespace serialise on its
row (``journal.lock_namespace``), which keeps version numbers and cursors consecutive on
PostgreSQL as on SQLite.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from minidropbox.core.chunking import HASH_RE, check_chunk_hash, content_hash
from minidropbox.core.errors import (
    AlreadyExists,
    InvalidInput,
    MiniDropboxError,
    MissingChunk,
    NotFound,
    VersionConflict,
)
from minidropbox.core.paths import (
    ancestors,
    check_characters,
    check_renamed,
    depth,
    is_within,
    lookup_path,
    name_of,
    path_key,
)
from minidropbox.core.timestamps import check_timestamp
from minidropbox.metadata import chunks as chunk_repo
from minidropbox.metadata import dav as dav_repo
from minidropbox.metadata import entries as repo
from minidropbox.metadata import journal
from minidropbox.metadata.db import Database, savepoint
from minidropbox.metadata.usage import Usage
from minidropbox.service.accounts import Principal
from minidropbox.service.quota import CommitQuota, OwnerQuota
from minidropbox.service.tree_limits import ChangeBudget, TreeLimits

AfterCommit = Callable[[Connection, dict[str, Any]], None]
Content = tuple[dict[str, Any], list[tuple[str, int]]]  # an entry and its (chunk, size) list
log = logging.getLogger("minidropbox.files")


@dataclass(frozen=True)
class CommitRequest:
    path: str
    size: int
    chunks: list[str]
    parent_version: int | None
    mtime: float | None = None
    device: str = ""
    overwrite: bool = False  # replace whatever version is current (plain PUT without If-Match)


def public_entry(row: dict[str, Any]) -> dict[str, Any]:
    """What a client sees of an entry (no internal ids)."""
    is_file = row["kind"] == "file"
    return {"path": row["path"], "name": name_of(row["path"]), "type": row["kind"],
            "size": row["size"] if is_file else None,
            "version": row["version"] if is_file else None,
            "modified": row["modified"],
            "content_hash": row["content_hash"] if is_file else None}


def failed_commit(path: str, exc: MiniDropboxError) -> dict[str, Any]:
    """One refused commit of a batch, as ``commit_batch`` answers it."""
    error: dict[str, Any] = {"code": exc.code, "message": exc.message}
    error.update({k: v for k, v in exc.details.items() if isinstance(v, int | str | None)})
    return {"ok": False, "path": path, "error": error}


ROOT = {"path": "/", "kind": "folder", "size": None, "version": None, "modified": 0.0,
        "content_hash": None}


class FileService:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time,
                 max_page_size: int = 10_000,
                 on_change: Callable[[int, int], None] | None = None,
                 limits: TreeLimits | None = None) -> None:
        self.db = db
        self.limits = limits or TreeLimits()
        self.clock = clock
        self.max_page_size = max_page_size
        # Told (namespace id, journal head) after each change commits: push notifications.
        self.on_change = on_change

    @contextmanager
    def _write(self, namespace_id: int) -> Iterator[Connection]:
        """A write transaction holding the namespace's lock (so version numbers and cursors
        stay consecutive); ``on_change`` hears of it only once it has committed."""
        with self.db.write() as conn:
            journal.moved_heads(conn)  # nothing left over from a rolled-back transaction
            journal.lock_namespace(conn, namespace_id)
            yield conn
            heads = journal.moved_heads(conn)  # a shared folder's members' journals too
        self.announce(heads)

    def announce(self, heads: dict[int, int]) -> None:
        """Tell ``on_change`` of journals that moved, once their transaction committed."""
        for ns, head in heads.items():
            if self.on_change is None:
                return
            try:
                self.on_change(ns, head)
            except Exception:  # the change is committed; a failed notification must not undo it
                log.exception("change notification failed")

    # -- commits ----------------------------------------------------------------------------
    def commit(self, principal: Principal, req: CommitRequest,
               then: AfterCommit | None = None) -> dict[str, Any]:
        """``then(conn, entry)`` runs in the commit's own transaction (a WebDAV PUT records
        its checksums there: one write transaction instead of two)."""
        with self._write(principal.namespace_id) as conn:
            entry = self._commit(conn, principal, req, budget=ChangeBudget(self.limits),
                                 quota=CommitQuota(conn, principal))
            if then is not None:
                then(conn, entry)
            return entry

    def commit_batch(self, principal: Principal, reqs: list[CommitRequest]) -> list[dict[str, Any]]:
        """Each commit judged on its own, all in one transaction (savepoint per commit)."""
        return self._commit_batch_in(principal, reqs, ChangeBudget(self.limits))

    def _commit_batch_in(self, principal: Principal, reqs: list[CommitRequest],
                         budget: ChangeBudget) -> list[dict[str, Any]]:
        """``commit_batch`` in the caller's namespace, within ``budget`` (the entries the
        whole batch may create, shared with its commits in other namespaces)."""
        with self._write(principal.namespace_id) as conn, \
                journal.mounts_fixed(conn, principal.namespace_id):
            return self._commit_each(conn, principal, reqs, budget)

    def _commit_each(self, conn: Connection, principal: Principal, reqs: list[CommitRequest],
                     budget: ChangeBudget, payer: OwnerQuota | None = None,
                     ) -> list[dict[str, Any]]:
        """The commits of a batch into ``principal``'s namespace, inside the caller's write
        transaction (which holds the namespace's lock), each in a savepoint of its own: one
        that fails leaves the others as they were, and is answered in its place. They share
        what each would otherwise ask on its own: one ownership query, the quota ledger
        (``CommitQuota``; ``payer``, the owner of a shared folder, too), the folders known to
        exist, and ``budget``."""
        hashes = [h for req in reqs for h in req.chunks if HASH_RE.fullmatch(h)]
        sizes = chunk_repo.owned_sizes(conn, principal.user_id, hashes)
        quota = CommitQuota(conn, principal)  # bytes the whole batch may add
        quota.prime(hashes, sizes)
        if payer is not None:
            payer.prime(hashes, sizes)
        folders: set[str] = set()
        results: list[dict[str, Any]] = []
        for req in reqs:
            # Folders made by a commit that then fails are rolled back with it, so each
            # commit works on a copy of the known set and only success merges it.
            trial = set(folders)
            try:
                with ExitStack() as attempt:
                    attempt.enter_context(savepoint(conn))
                    attempt.enter_context(quota.undone_on_failure())
                    if payer is not None:
                        attempt.enter_context(payer.undone_on_failure())
                        payer.charge(req.chunks)  # first, as a lone commit checks it
                    entry = self._commit(conn, principal, req, sizes, trial, budget, quota)
                    if payer is not None:
                        payer.owe(req.chunks)
                folders = trial
                results.append({"ok": True, "entry": entry})
            except MiniDropboxError as exc:
                results.append(failed_commit(req.path, exc))
        if payer is not None:
            payer.settle(self.clock())
        return results

    def _commit(self, conn: Connection, principal: Principal, req: CommitRequest,
                sizes: dict[str, int] | None = None,
                folders: set[str] | None = None,
                budget: ChangeBudget | None = None,
                quota: CommitQuota | None = None) -> dict[str, Any]:
        """One commit inside the caller's transaction. ``sizes`` (owned chunk sizes),
        ``folders`` (folder keys known to exist), ``budget`` (entries it may still
        create) and ``quota`` (bytes it may add) let a batch share work and limits between
        commits."""
        path = lookup_path(req.path)
        if path == "/":
            raise InvalidInput("Cannot write a file at the root folder itself.")
        if req.size < 0:
            raise InvalidInput("size must not be negative.")
        for h in req.chunks:
            check_chunk_hash(h)
        if sizes is None:
            sizes = chunk_repo.owned_sizes(conn, principal.user_id, req.chunks)
        for h in req.chunks:
            if h not in sizes:
                raise MissingChunk(f"Chunk {h} has not been uploaded; upload it first.",
                                   chunk=h)
        total = sum(sizes[h] for h in req.chunks)
        if total != req.size:
            raise InvalidInput(f"The chunks add up to {total} bytes, not {req.size}.")
        now = self.clock()
        entry, used = repo.live_and_usage(conn, principal.namespace_id, path)
        digest = content_hash(req.chunks)
        if entry is not None and entry["kind"] == "folder":
            raise AlreadyExists(f"{entry['path']} is a folder.")
        current = entry["version"] if entry else None
        if not req.overwrite and req.parent_version != current:
            raise VersionConflict(
                f"{path} is at version {current}, not {req.parent_version}."
                if current is not None else f"{path} no longer exists.",
                current_version=current)
        if entry is not None and entry["content_hash"] == digest and entry["size"] == req.size:
            return public_entry(entry)  # same bytes: nothing changed, no new version
        used = self.limits.check_chunk_refs(conn, principal.namespace_id, len(req.chunks),
                                            req.size, used)
        (quota or CommitQuota(conn, principal)).charge(req.chunks)
        number = (current or 0) + 1
        added = (0, 0)  # usage: entries, chunk references (moved with the journal head)
        if entry is None:
            budget = budget or ChangeBudget(self.limits)
            made = self._ensure_parents(conn, principal, path, now, folders, budget)
            # The usage read above still holds unless folders were made since.
            self._check_new_entry(conn, principal, path, budget, None if made else used)
            mtime = check_timestamp(req.mtime) if req.mtime is not None else now
            entry = repo.insert_file(conn, principal.namespace_id, path, now, number=number,
                                     size=req.size, content_hash=digest,
                                     chunk_hashes=req.chunks, mtime=mtime,
                                     device=req.device[:128], author_id=principal.user_id)
            added = (1, len(req.chunks))
        else:
            mtime = check_timestamp(req.mtime) if req.mtime is not None else now
            repo.insert_version(conn, principal.namespace_id, entry["id"], number, req.size,
                                digest, req.chunks, mtime, req.device[:128], now,
                                author_id=principal.user_id)
            repo.set_current(conn, entry["id"], number, req.size, digest, mtime)
        journal.append(conn, principal.namespace_id, "commit", entry["path"], "file", now,
                       version=number, size=req.size, content_hash=digest,
                       entries=added[0], chunk_refs=added[1])
        entry.update(version=number, size=req.size, content_hash=digest, modified=mtime)
        return public_entry(entry)

    def _new_entry(self, conn: Connection, principal: Principal, path: str, kind: str,
                   now: float, budget: ChangeBudget) -> dict[str, Any]:
        """Insert an entry within the request's budget and the account's metadata quota."""
        self._check_new_entry(conn, principal, path, budget)
        return repo.insert_entry(conn, principal.namespace_id, path, kind, now)

    def _check_new_entry(self, conn: Connection, principal: Principal, path: str,
                         budget: ChangeBudget, used: Usage | None = None) -> None:
        """What an entry about to be made at ``path`` must pass (``used``: the namespace's
        usage, if the caller read it with nothing written since)."""
        # Paths are looked up leniently (lookup_path) so names stored before the character
        # rules stay reachable; every name being made is checked here.
        check_characters(name_of(path))
        self.limits.check_depth(path)
        budget.spend()
        self.limits.check_new_entry(conn, principal.namespace_id, used)

    def _ensure_parents(self, conn: Connection, principal: Principal, path: str,
                        now: float, known: set[str] | None = None,
                        budget: ChangeBudget | None = None) -> int:
        """Make the missing folders above ``path``; returns how many were made."""
        # The deepest name first: a path nested too deep is refused before any folder is made.
        self.limits.check_depth(path)
        budget = budget or ChangeBudget(self.limits)
        made = 0
        for folder in ancestors(path):
            if known is not None and path_key(folder) in known:
                continue
            existing = repo.live(conn, principal.namespace_id, folder)
            if existing is None:
                self._new_entry(conn, principal, folder, "folder", now, budget)
                journal.append(conn, principal.namespace_id, "mkdir", folder, "folder", now)
                made += 1
            elif existing["kind"] != "folder":
                raise AlreadyExists(f"{existing['path']} is a file, not a folder.")
            if known is not None:
                known.add(path_key(folder))
        return made

    # -- browsing ---------------------------------------------------------------------------
    def metadata(self, principal: Principal, raw_path: str) -> dict[str, Any]:
        path = lookup_path(raw_path)
        if path == "/":
            return public_entry(ROOT)
        with self.db.read() as conn:
            entry = repo.live(conn, principal.namespace_id, path)
        if entry is None:
            raise NotFound(f"{path} does not exist.")
        return public_entry(entry)

    def listing(self, principal: Principal, raw_path: str, recursive: bool, limit: int | None,
             cursor: str | None) -> dict[str, Any]:
        path = lookup_path(raw_path)
        limit = min(limit or self.max_page_size, self.max_page_size)
        with self.db.read() as conn:
            if path != "/":
                folder = repo.live(conn, principal.namespace_id, path)
                if folder is None:
                    raise NotFound(f"{path} does not exist.")
                if folder["kind"] != "folder":
                    return {"entries": [public_entry(folder)], "cursor": None}
            rows = repo.listed_children(conn, principal.namespace_id, path,
                                        recursive=recursive, after=cursor, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return {"entries": [public_entry(r) for r in rows],
                "cursor": rows[-1]["path_key"] if more else None}

    def content(self, principal: Principal, raw_path: str,
                version: int | None) -> Content:
        """The entry (as of ``version``) and its ordered (chunk, size) list."""
        (answer,) = self.contents_in([(principal.namespace_id, raw_path, version)])
        if isinstance(answer, (InvalidInput, NotFound)):
            raise answer
        return answer

    def contents(self, principal: Principal, items: list[tuple[str, int | None]],
                 ) -> list[Content | InvalidInput | NotFound]:
        """``content`` of several (path, version) pairs; per pair, its answer or the error
        that names why it cannot be had (gone, a folder, no such version)."""
        return self.contents_in([(principal.namespace_id, raw, v) for raw, v in items])

    def contents_in(self, items: list[tuple[int, str, int | None]],
                    ) -> list[Content | InvalidInput | NotFound]:
        """``content`` of several (namespace, path, version) triples, each answered as
        ``content`` would, all read in one transaction with a query per kind of row, not a
        transaction and three queries per file."""
        out: list[Content | InvalidInput | NotFound | None] = [None] * len(items)
        asked: list[tuple[int, int, str, int | None]] = []
        for i, (namespace_id, raw_path, version) in enumerate(items):
            try:
                asked.append((i, namespace_id, lookup_path(raw_path), version))
            except InvalidInput as exc:
                out[i] = exc
        files: list[tuple[int, str, dict[str, Any], int]] = []
        with self.db.read() as conn:
            found: dict[int, dict[str, dict[str, Any]]] = {}
            for namespace_id in {ns for _, ns, _, _ in asked}:
                keys = [path_key(p) for _, ns, p, _ in asked if ns == namespace_id]
                found[namespace_id] = repo.live_many(conn, namespace_id, keys)
            for i, namespace_id, path, version in asked:
                entry = found[namespace_id].get(path_key(path))
                if entry is None:
                    out[i] = NotFound(f"{path} does not exist.")
                elif entry["kind"] != "file":
                    out[i] = InvalidInput(f"{path} is a folder; download its files one by one.")
                else:
                    files.append((i, path, entry,
                                  version if version is not None else entry["version"]))
            rows = repo.versions_many(conn, [(entry["id"], n) for _, _, entry, n in files])
            lists = repo.chunk_lists(conn, [row["id"] for row in rows.values()])
        for i, path, entry, number in files:
            row = rows.get((entry["id"], number))
            if row is None:
                out[i] = NotFound(f"{path} has no version {number}.")
                continue
            public = public_entry(entry)
            public.update(version=row["number"], size=row["size"],
                          content_hash=row["content_hash"], modified=row["mtime"])
            out[i] = (public, lists[row["id"]])
        answers = [answer for answer in out if answer is not None]
        assert len(answers) == len(items)  # every item answered, in order
        return answers

    # -- changes ----------------------------------------------------------------------------
    def mkdir(self, principal: Principal, raw_path: str) -> dict[str, Any]:
        path = lookup_path(raw_path)
        if path == "/":
            raise AlreadyExists("The root folder always exists.")
        now = self.clock()
        with self._write(principal.namespace_id) as conn:
            existing = repo.live(conn, principal.namespace_id, path)
            if existing is not None:
                if existing["kind"] == "folder":
                    return public_entry(existing)
                raise AlreadyExists(f"{existing['path']} is a file.")
            budget = ChangeBudget(self.limits)
            self._ensure_parents(conn, principal, path, now, budget=budget)
            entry = self._new_entry(conn, principal, path, "folder", now, budget)
            journal.append(conn, principal.namespace_id, "mkdir", path, "folder", now)
        return public_entry(entry)

    def move(self, principal: Principal, raw_from: str, raw_to: str) -> dict[str, Any]:
        src, dst = lookup_path(raw_from), lookup_path(raw_to)
        if "/" in (src, dst):
            raise InvalidInput("The root folder cannot be moved or replaced.")
        now = self.clock()
        with self._write(principal.namespace_id) as conn:
            entry = repo.live(conn, principal.namespace_id, src)
            if entry is None:
                raise NotFound(f"{src} does not exist.")
            same_entry = path_key(src) == path_key(dst)
            if entry["kind"] == "folder" and is_within(dst, src) and not same_entry:
                raise InvalidInput("A folder cannot be moved into itself.")
            if not same_entry and repo.live(conn, principal.namespace_id, dst) is not None:
                raise AlreadyExists(f"{dst} already exists.")
            if same_entry and entry["path"] == dst:
                return public_entry(entry)
            check_renamed(entry["path"], dst)
            below = 0
            if entry["kind"] == "folder":
                ns, key = principal.namespace_id, entry["path_key"]
                self.limits.check_change(repo.count_below(conn, ns, key) + 1)
                below = max(0, repo.depth_below(conn, ns, key) - depth(entry["path"]))
            self.limits.check_depth(dst, below)
            self._ensure_parents(conn, principal, dst, now)
            repo.move_entry(conn, entry, dst)
            ns = principal.namespace_id
            dav_repo.carry(conn, ns, entry["path_key"], ns, path_key(dst))
            journal.append(conn, principal.namespace_id, "move", dst, entry["kind"], now,
                           from_path=entry["path"], version=entry["version"],
                           size=entry["size"], content_hash=entry["content_hash"])
            moved = repo.live(conn, principal.namespace_id, dst)
        assert moved is not None
        return public_entry(moved)

    def copy(self, principal: Principal, raw_from: str, raw_to: str) -> dict[str, Any]:
        """Copy a file or folder; chunks are shared, no byte moves (``service/copies.py``)."""
        from minidropbox.service.copies import copy_entry

        return copy_entry(self, principal, raw_from, raw_to)

    def delete(self, principal: Principal, raw_path: str,
               if_version: int | None = None) -> dict[str, Any]:
        """Move an entry to the trash; with ``if_version``, only while that file version is
        current (a sync client deleting what it saw must not delete a newer edit)."""
        path = lookup_path(raw_path)
        if path == "/":
            raise InvalidInput("The root folder cannot be deleted.")
        with self._write(principal.namespace_id) as conn:
            return self._delete(conn, principal, path, if_version)

    def _delete(self, conn: Connection, principal: Principal, path: str,
                if_version: int | None = None) -> dict[str, Any]:
        """``delete`` inside the caller's transaction (which holds the namespace lock)."""
        now = self.clock()
        entry = repo.live(conn, principal.namespace_id, path)
        if entry is None:
            raise NotFound(f"{path} does not exist.")
        if if_version is not None and entry["version"] != if_version:
            raise VersionConflict(
                f"{path} is at version {entry['version']}, not {if_version}; not deleted.",
                current_version=entry["version"])
        if entry["kind"] == "folder":
            self.limits.check_change(
                repo.count_below(conn, principal.namespace_id, entry["path_key"]) + 1)
        count = repo.delete_entry(conn, entry, now)
        # WebDAV dead properties belong to the live entry: a file made later at this
        # path, or this one back from the trash, starts without them (as a DAV DELETE).
        dav_repo.remove_subtree(conn, principal.namespace_id, entry["path_key"])
        journal.append(conn, principal.namespace_id, "delete", entry["path"], entry["kind"],
                       now, version=entry["version"])
        return {"path": entry["path"], "deleted": count}

    # -- versions ---------------------------------------------------------------------------
    def versions(self, principal: Principal, raw_path: str) -> list[dict[str, Any]]:
        path = lookup_path(raw_path)
        with self.db.read() as conn:
            entry = repo.live(conn, principal.namespace_id, path)
            if entry is None or entry["kind"] != "file":
                raise NotFound(f"{path} is not a file.")
            rows = repo.list_versions(conn, entry["id"])
        return [{"version": r["number"], "size": r["size"], "content_hash": r["content_hash"],
                 "modified": r["mtime"], "created_at": r["created_at"], "device": r["device"],
                 "author": r["author"]}
                for r in rows]

    def restore(self, principal: Principal, raw_path: str, number: int,
                device: str = "") -> dict[str, Any]:
        """A new version with an old version's content; history is never rewritten."""
        path = lookup_path(raw_path)
        now = self.clock()
        with self._write(principal.namespace_id) as conn:
            entry = repo.live(conn, principal.namespace_id, path)
            if entry is None or entry["kind"] != "file":
                raise NotFound(f"{path} is not a file.")
            old = repo.get_version(conn, entry["id"], number)
            if old is None:
                raise NotFound(f"{path} has no version {number}.")
            # A restore copies the old version's chunk list: it counts like a new commit.
            self.limits.check_chunk_refs(conn, principal.namespace_id,
                                         repo.count_chunks(conn, old["id"]), old["size"])
            new_number = entry["version"] + 1
            repo.copy_version(conn, principal.namespace_id, entry["id"], new_number, old,
                              now, device, now, author_id=principal.user_id)
            repo.set_current(conn, entry["id"], new_number, old["size"], old["content_hash"],
                             now)
            journal.append(conn, principal.namespace_id, "restore", entry["path"], "file", now,
                           version=new_number, size=old["size"],
                           content_hash=old["content_hash"])
            entry.update(version=new_number, size=old["size"], content_hash=old["content_hash"],
                         modified=now)
        return public_entry(entry)

    def set_mtime(self, principal: Principal, raw_path: str, mtime: float) -> dict[str, Any]:
        """Set a file's modification time (WebDAV clients do, after an upload); content and
        version stay as they are, so nothing is journalled: sync compares content."""
        path = lookup_path(raw_path)
        with self._write(principal.namespace_id) as conn:
            entry = repo.live(conn, principal.namespace_id, path)
            if entry is None or entry["kind"] != "file":
                raise NotFound(f"{path} is not a file.")
            repo.set_mtime(conn, entry["id"], entry["version"], check_timestamp(mtime))
            entry["modified"] = mtime
        return public_entry(entry)

    # -- trash ------------------------------------------------------------------------------
    def trash(self, principal: Principal, limit: int | None = None) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = repo.trashed(conn, principal.namespace_id,
                                min(limit or self.max_page_size, self.max_page_size))
        return [{**public_entry(r), "deleted_at": r["deleted_at"]} for r in rows]

    def undelete(self, principal: Principal, raw_path: str) -> dict[str, Any]:
        path = lookup_path(raw_path)
        now = self.clock()
        with self._write(principal.namespace_id) as conn:
            entry = repo.latest_trashed(conn, principal.namespace_id, path)
            if entry is None:
                raise NotFound(f"{path} is not in the trash.")
            if repo.live(conn, principal.namespace_id, path) is not None:
                raise AlreadyExists(f"{path} exists again; move it away first.")
            self.limits.check_change(repo.count_deleted_with(conn, entry) + 1)
            self._ensure_parents(conn, principal, entry["path"], now)
            restored = repo.undelete(conn, entry)
            for row in sorted(restored, key=lambda r: r["path_key"]):
                journal.append(conn, principal.namespace_id, "undelete", row["path"],
                               row["kind"], now, version=row["version"], size=row["size"],
                               content_hash=row["content_hash"])
        entry["deleted_at"] = None
        return public_entry(entry)

    def purge(self, principal: Principal, raw_path: str | None) -> int:
        path = lookup_path(raw_path) if raw_path is not None else None
        with self.db.write() as conn:
            return repo.purge_trash(conn, principal.namespace_id, path)
