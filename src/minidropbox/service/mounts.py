"""Files and folders as each user sees them: their own tree with shared folders mounted in it.

``SharedFileService`` is the ``FileService`` the API uses. Every path a caller names is first
resolved: under one of their mount points it means a path inside that shared folder's
namespace, and the call runs there, as the caller (so chunk ownership stays theirs: being a
member lets nobody claim a chunk they never uploaded), with their role checked for writes.
Answers are translated back to the caller's paths. The mount point itself is an ordinary
folder entry of the caller's tree, so renaming or moving it, or a folder holding it, is an
ordinary move that touches nobody else.

Changes inside a shared folder reach every member's journal through ``journal.append``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, select

from minidropbox.core.errors import (
    AlreadyExists,
    InvalidInput,
    MiniDropboxError,
    NotFound,
    ReadOnly,
)
from minidropbox.core.paths import check_renamed, lookup_path, name_of, path_key
from minidropbox.metadata import accounts as account_repo
from minidropbox.metadata import chunks as chunk_repo
from minidropbox.metadata import entries as repo
from minidropbox.metadata import journal, shares
from minidropbox.metadata.tables import namespaces
from minidropbox.service.accounts import Principal
from minidropbox.service.files import (
    AfterCommit,
    CommitRequest,
    Content,
    FileService,
    failed_commit,
    public_entry,
)
from minidropbox.service.quota import OwnerQuota
from minidropbox.service.tree_limits import ChangeBudget


@dataclass(frozen=True)
class Mount:
    path: str  # in the member's tree
    namespace_id: int
    role: str  # "owner" | "editor" | "viewer"


@dataclass(frozen=True)
class Target:
    """Where a caller's path lives: a namespace, the path there, and the mount it came
    through (None: the caller's own tree)."""

    principal: Principal  # the caller, with ``namespace_id`` where the entry lives
    path: str
    mount: Mount | None = None

    @property
    def at_mount_point(self) -> bool:
        return self.mount is not None and self.path == "/"

    def outer(self, path: str) -> str:
        """A path of the target's namespace, as the caller names it."""
        if self.mount is None:
            return path
        return self.mount.path if path == "/" else self.mount.path + path

    def shown(self, entry: dict[str, Any]) -> dict[str, Any]:
        if self.mount is None:
            return entry
        path = self.outer(entry["path"])
        return {**entry, "path": path, "name": name_of(path)}

    def writable(self) -> Target:
        if self.mount is not None and self.mount.role == "viewer":
            raise ReadOnly(f"{self.mount.path} is shared with you read-only.")
        return self


def mounts_in(conn: Connection, principal: Principal) -> list[Mount]:
    """The caller's live mount points with their role in each, deepest paths first (ties by
    path key): read on every request, from the caller's memberships, never by walking their
    tree (``shares.mount_points``)."""
    found = [Mount(path, ns, role) for path, ns, role in
             shares.mount_points(conn, principal.namespace_id, principal.user_id)]
    return sorted(found, key=lambda m: (-len(m.path), path_key(m.path)))


class SharedFileService(FileService):
    # -- resolution -------------------------------------------------------------------------
    def mounts(self, principal: Principal, conn: Connection | None = None) -> list[Mount]:
        """The caller's live mount points with their role in each (deepest paths first)."""
        if conn is None:
            with self.db.read() as own:
                return self.mounts(principal, own)
        return mounts_in(conn, principal)

    def resolve(self, principal: Principal, raw_path: str,
                mounts: list[Mount] | None = None) -> Target:
        path = lookup_path(raw_path)
        for mount in self.mounts(principal) if mounts is None else mounts:
            key, mkey = path_key(path), path_key(mount.path)
            if key == mkey or key.startswith(mkey + "/"):
                depth = mount.path.count("/")
                inner = "/" + "/".join(path.split("/")[depth + 1:])
                return Target(replace(principal, namespace_id=mount.namespace_id),
                              lookup_path(inner), mount)
        return Target(principal, path)

    def role_at(self, principal: Principal, raw_path: str) -> str | None:
        """The caller's role in the shared folder ``raw_path`` is in (None: their own)."""
        mount = self.resolve(principal, raw_path).mount
        return mount.role if mount else None

    # -- reads ------------------------------------------------------------------------------
    # ``mounts``: the caller's mount points if already read for this request (WebDAV reads
    # them once per request), else they are read here.
    def metadata(self, principal: Principal, raw_path: str,
                 mounts: list[Mount] | None = None) -> dict[str, Any]:
        t = self.resolve(principal, raw_path, mounts)
        if t.at_mount_point:
            return super().metadata(principal, raw_path)
        return t.shown(super().metadata(t.principal, t.path))

    def content(self, principal: Principal, raw_path: str,
                version: int | None) -> tuple[dict[str, Any], list[tuple[str, int]]]:
        t = self.resolve(principal, raw_path)
        entry, chunk_list = super().content(t.principal, t.path, version)
        return t.shown(entry), chunk_list

    def contents(self, principal: Principal, items: list[tuple[str, int | None]],
                 ) -> list[Content | InvalidInput | NotFound]:
        """As ``content`` for each pair, with the caller's mount points read once for all and
        every file read in one transaction (``contents_in``)."""
        mounts = self.mounts(principal)
        resolved: list[Target | InvalidInput | NotFound] = []
        for raw_path, _ in items:
            try:
                resolved.append(self.resolve(principal, raw_path, mounts))
            except (InvalidInput, NotFound) as exc:
                resolved.append(exc)
        targets = [(t, version) for t, (_, version) in zip(resolved, items, strict=True)
                   if isinstance(t, Target)]
        answers = iter(self.contents_in([(t.principal.namespace_id, t.path, version)
                                         for t, version in targets]))
        out: list[Content | InvalidInput | NotFound] = []
        for t in resolved:
            if not isinstance(t, Target):
                out.append(t)
                continue
            answer = next(answers)
            out.append(answer if isinstance(answer, (InvalidInput, NotFound))
                       else (t.shown(answer[0]), answer[1]))
        return out

    def versions(self, principal: Principal, raw_path: str) -> list[dict[str, Any]]:
        t = self.resolve(principal, raw_path)
        return super().versions(t.principal, t.path)

    def trash(self, principal: Principal, limit: int | None = None) -> list[dict[str, Any]]:
        """The caller's trash and that of every shared folder in their tree, newest first."""
        rows = super().trash(principal, limit)
        for mount in self.mounts(principal):
            t = Target(replace(principal, namespace_id=mount.namespace_id), "/", mount)
            rows += [t.shown(e) for e in super().trash(t.principal, limit)]
        rows.sort(key=lambda e: (-e["deleted_at"], path_key(e["path"])))
        return rows[:min(limit or self.max_page_size, self.max_page_size)]

    def listing(self, principal: Principal, raw_path: str, recursive: bool, limit: int | None,
                cursor: str | None) -> dict[str, Any]:
        mounts = self.mounts(principal)
        t = self.resolve(principal, raw_path, mounts)
        if t.mount is not None:
            page = super().listing(t.principal, t.path, recursive, limit, cursor)
            return {**page, "entries": [t.shown(e) for e in page["entries"]]}
        inside = [m for m in mounts if t.path == "/" or
                  path_key(m.path).startswith(path_key(t.path) + "/")]
        if not recursive or not inside:
            return super().listing(principal, raw_path, recursive, limit, cursor)
        return self._merged_listing(principal, t.path, inside, limit, cursor)

    def _merged_listing(self, principal: Principal, folder: str, inside: list[Mount],
                        limit: int | None, cursor: str | None) -> dict[str, Any]:
        """Everything under ``folder``: the caller's own entries and those of every shared
        folder mounted below it, in one path-key order, paged by one cursor (merged, sorted
        and cut by the database: see ``shares.merged_page``)."""
        limit = min(limit or self.max_page_size, self.max_page_size)
        targets = [Target(replace(principal, namespace_id=m.namespace_id), "/", m)
                   for m in inside]
        with self.db.read() as conn:
            if folder != "/" and repo.live(conn, principal.namespace_id, folder) is None:
                raise NotFound(f"{folder} does not exist.")
            rows = shares.merged_page(
                conn, principal.namespace_id, folder,
                [(m.namespace_id, path_key(m.path)) for m in inside], cursor, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        entries = [public_entry(row) if source < 0 else targets[source].shown(public_entry(row))
                   for _, source, row in rows]
        return {"entries": entries, "cursor": rows[-1][0] if more else None}

    # -- writes -----------------------------------------------------------------------------
    def commit(self, principal: Principal, req: CommitRequest,
               then: AfterCommit | None = None,
               mounts: list[Mount] | None = None) -> dict[str, Any]:
        t = self.resolve(principal, req.path, mounts)
        if t.mount is None or t.at_mount_point:
            return super().commit(principal, req, then)
        t.writable()
        with self._write(t.principal.namespace_id) as conn:
            # The owner's quota check and the version are one transaction, under the owner's
            # namespace lock: no upload of theirs can take the room between the two, and a
            # failed commit charges nobody.
            payer = self._owner_pays(conn, t)
            if payer is not None:
                payer.charge(req.chunks)
            entry = self._commit(conn, t.principal, replace(req, path=t.path))
            if payer is not None:
                payer.owe(req.chunks)
                payer.settle(self.clock())
            if then is not None:
                then(conn, entry)
        return t.shown(entry)

    def commit_batch(self, principal: Principal,
                     reqs: list[CommitRequest]) -> list[dict[str, Any]]:
        """Each commit judged as ``commit`` judges it alone, in one write transaction per
        namespace the batch lands in (the caller's tree, each shared folder) with a savepoint
        per commit, not one transaction per commit. Answers come in the order asked.

        Namespaces share nothing a commit is judged on but quotas (the caller's, and a
        folder owner's when a batch reaches two folders of theirs): those are charged in
        the order the namespaces are committed, that of their first commit in the batch."""
        mounts = self.mounts(principal)
        results: list[dict[str, Any] | None] = [None] * len(reqs)
        groups: dict[int, list[int]] = {}  # namespace → its requests, first come first
        targets: dict[int, Target] = {}
        for i, req in enumerate(reqs):
            try:
                t = self.resolve(principal, req.path, mounts)
                if t.mount is not None and not t.at_mount_point:
                    targets[i] = t.writable()  # a viewer's commit is refused, alone
            except MiniDropboxError as exc:
                results[i] = failed_commit(req.path, exc)
                continue
            # A mount point's own path is an entry of the caller's tree, as in ``commit``.
            ns = targets[i].principal.namespace_id if i in targets else principal.namespace_id
            groups.setdefault(ns, []).append(i)
        budget = ChangeBudget(self.limits)  # entries the whole batch may create
        for ns, asked in groups.items():
            if ns == principal.namespace_id:
                answers = self._commit_batch_in(principal, [reqs[i] for i in asked], budget)
            else:
                answers = self._commit_batch_shared(
                    [(reqs[i], targets[i]) for i in asked], budget)
            for i, answer in zip(asked, answers, strict=True):
                results[i] = answer
        assert all(r is not None for r in results)  # every commit answered, in order
        return [r for r in results if r is not None]

    def _commit_batch_shared(self, asked: list[tuple[CommitRequest, Target]],
                             budget: ChangeBudget) -> list[dict[str, Any]]:
        """A batch's commits into one shared folder (all through the same mount point), in
        one write transaction: each judged as ``commit`` judges it, the owner's quota read
        once and charged commit by commit (``OwnerQuota``). Answers in the caller's paths."""
        t = asked[0][1]
        inner = [replace(req, path=target.path) for req, target in asked]
        # Every commit's fan-out to the members' journals reads their mount points again
        # (not ``mounts_fixed``): a member renames their mount point under their own lock,
        # not this namespace's, and their journal must name the path it has then.
        with self._write(t.principal.namespace_id) as conn:
            try:
                payer = self._owner_pays(conn, t)
            except NotFound as exc:  # the folder went: so does every commit into it
                return [failed_commit(req.path, exc) for req, _ in asked]
            answers = self._commit_each(conn, t.principal, inner, budget, payer)
        return [{"ok": True, "entry": target.shown(answer["entry"])} if answer["ok"]
                else {**answer, "path": req.path}
                for (req, target), answer in zip(asked, answers, strict=True)]

    def mkdir(self, principal: Principal, raw_path: str) -> dict[str, Any]:
        t = self.resolve(principal, raw_path)
        if t.mount is None or t.at_mount_point:
            return super().mkdir(principal, raw_path)
        return t.shown(super().mkdir(t.writable().principal, t.path))

    def delete(self, principal: Principal, raw_path: str,
               if_version: int | None = None) -> dict[str, Any]:
        mounts = self.mounts(principal)
        t = self.resolve(principal, raw_path, mounts)
        if t.at_mount_point:
            assert t.mount is not None
            if t.mount.role != "owner":
                # A member deleting their mount point leaves the folder, as in Dropbox: it
                # goes from their tree only; the folder and its other members are untouched.
                self.leave(principal, t.mount)
                return {"path": t.mount.path, "deleted": 1, "unshared": 0}
        elif t.mount is not None:
            done = super().delete(t.writable().principal, t.path, if_version)
            return {**done, "path": t.outer(done["path"]), "unshared": 0}
        return self._delete_own(principal, t.outer(t.path), mounts, if_version)

    def _delete_own(self, principal: Principal, path: str, mounts: list[Mount],
                    if_version: int | None) -> dict[str, Any]:
        """Delete an entry of the caller's own tree. A shared folder at or under it goes
        too, as the owner's other folders do: one the caller owns is unshared (its members
        lose it at once, and its contents, history and trash go to the caller's trash with
        it, restorable as a plain folder); one they are a member of is left, as deleting
        that mount point alone would. All in one transaction, so nobody ever sees half."""
        if path == "/":
            raise InvalidInput("The root folder cannot be deleted.")
        key = path_key(path)
        inside = [m for m in mounts
                  if path_key(m.path) == key or path_key(m.path).startswith(key + "/")]
        if not inside:
            return {**super().delete(principal, path, if_version), "unshared": 0}
        lost = 0
        with self.db.write() as conn:
            journal.moved_heads(conn)
            # Shared namespaces first, then root ones (members', then the caller's, as a
            # plain unshare takes them): the order every writer keeps.
            for mount in sorted(inside, key=lambda m: m.namespace_id):
                journal.lock_namespace(conn, mount.namespace_id)
            for mount in inside:
                if mount.role == "owner":
                    lost += self.unshare_in(conn, principal, mount.namespace_id)
                else:
                    member = shares.membership(conn, mount.namespace_id, principal.user_id)
                    self.unmount(conn, principal.user_id, mount.namespace_id)
                    if member is not None:
                        shares.remove_member(conn, member["id"])
            journal.lock_namespace(conn, principal.namespace_id)  # held already: made sure
            done = self._delete(conn, principal, path, if_version)
            heads = journal.moved_heads(conn)
        self.announce(heads)
        return {**done, "unshared": lost}

    def unshare_in(self, conn: Connection, principal: Principal, ns: int) -> int:
        """Turn the shared folder ``ns`` back into its owner's plain folder, at their mount
        point, with its contents, history and trash; every other member loses it at once
        (the delete of their mount point is in their journal). The caller holds the shared
        namespace's lock. Returns how many members lost it."""
        lost = 0
        for member in shares.members(conn, ns):
            if member["role"] != "owner":
                self.unmount(conn, member["user_id"], ns)
                lost += member["state"] == "active"
        journal.lock_namespace(conn, principal.namespace_id)
        own = shares.mount_of(conn, principal.namespace_id, ns)
        if own is None:
            raise NotFound("That shared folder is not in your files.")
        shares.set_mount(conn, own["id"], None)
        shares.transfer(conn, ns, "/", principal.namespace_id, own["path"],
                        contents_only=True, trashed=True)
        shares.delete_folder(conn, ns)
        return lost

    # -- membership ending ------------------------------------------------------------------
    def leave(self, principal: Principal, mount: Mount) -> None:
        """Take a shared folder out of a member's tree and end their membership, at once."""
        if mount.role == "owner":
            raise InvalidInput(f"You own {mount.path}: unshare it instead of leaving.")
        with self.db.write() as conn:
            journal.moved_heads(conn)
            journal.lock_namespace(conn, mount.namespace_id)
            member = shares.membership(conn, mount.namespace_id, principal.user_id)
            if member is not None:
                self.unmount(conn, principal.user_id, mount.namespace_id)
                shares.remove_member(conn, member["id"])
            heads = journal.moved_heads(conn)
        self.announce(heads)

    def unmount(self, conn: Connection, user_id: int, ns: int) -> None:
        """Take the folder out of a member's tree (caller holds the shared namespace lock)."""
        member_ns = account_repo.root_namespace(conn, user_id)
        journal.lock_namespace(conn, member_ns)
        mount = shares.drop_mount_of(conn, member_ns, ns)
        if mount is not None:
            journal.append(conn, member_ns, "delete", mount["path"], "folder", self.clock())

    def restore(self, principal: Principal, raw_path: str, number: int,
                device: str = "") -> dict[str, Any]:
        t = self.resolve(principal, raw_path)
        return t.shown(super().restore(t.writable().principal, t.path, number, device))

    def undelete(self, principal: Principal, raw_path: str) -> dict[str, Any]:
        t = self.resolve(principal, raw_path)
        return t.shown(super().undelete(t.writable().principal, t.path))

    def move(self, principal: Principal, raw_from: str, raw_to: str) -> dict[str, Any]:
        mounts = self.mounts(principal)
        src = self.resolve(principal, raw_from, mounts)
        dst = self.resolve(principal, raw_to, mounts)
        if src.at_mount_point:
            # Renaming or moving one's own mount point: nobody else sees it.
            if dst.mount is not None:
                raise InvalidInput("A shared folder cannot go inside a shared folder.")
            return super().move(principal, raw_from, raw_to)
        if src.principal.namespace_id == dst.principal.namespace_id:
            src.writable()
            return src.shown(super().move(src.principal, src.path, dst.path))
        return self._move_across(principal, src.writable(), dst.writable())

    def copy(self, principal: Principal, raw_from: str, raw_to: str) -> dict[str, Any]:
        """A server-side copy anywhere in the caller's tree (``service/copies.py``): inside
        their own files or one shared folder, or between them. The source needs any role
        (a viewer may copy out), the destination a writer's; between namespaces the bytes
        new to the destination's owner count against their quota, in the copy's
        transaction."""
        from minidropbox.service.copies import copy_entry

        mounts = self.mounts(principal)
        src = self.resolve(principal, raw_from, mounts)
        dst = self.resolve(principal, raw_to, mounts)
        if dst.at_mount_point:
            raise AlreadyExists(f"{dst.outer('/')} already exists.")
        dst.writable()
        same = src.principal.namespace_id == dst.principal.namespace_id
        if src.mount is None and dst.mount is None:
            return super().copy(principal, raw_from, raw_to)
        entry = copy_entry(self, src.principal, src.path, dst.path,
                           dst=None if same else dst.principal,
                           show_src=src.outer, show_dst=dst.outer)
        return dst.shown(entry)

    def _move_across(self, principal: Principal, src: Target, dst: Target) -> dict[str, Any]:
        """A move between the caller's tree and a shared folder (or two shared folders): the
        rows change namespace, versions and all; the bytes now count for the owner of the
        destination."""
        if dst.at_mount_point:
            raise AlreadyExists(f"{dst.outer('/')} already exists.")
        now = self.clock()
        src_ns, dst_ns = src.principal.namespace_id, dst.principal.namespace_id
        # Shared namespaces are locked before root ones, the order every writer keeps (a
        # shared folder's change then bumps its members' journals).
        order = sorted({src_ns, dst_ns}, key=lambda ns: (ns == principal.namespace_id, ns))
        with self.db.write() as conn:
            journal.moved_heads(conn)
            for ns in order:
                journal.lock_namespace(conn, ns)
            entry = repo.live(conn, src_ns, src.path)
            if entry is None:
                raise NotFound(f"{src.outer(src.path)} does not exist.")
            if entry["kind"] == "folder" and shares.mounts_under(conn, src_ns, src.path):
                raise InvalidInput("A folder holding a shared folder cannot go inside a "
                                   "shared folder.")
            if repo.live(conn, dst_ns, dst.path) is not None:
                raise AlreadyExists(f"{dst.outer(dst.path)} already exists.")
            check_renamed(entry["path"], dst.path)
            self._ensure_parents(conn, dst.principal, dst.path, now)
            moved = shares.transfer(conn, src_ns, src.path, dst_ns, dst.path)
            journal.append(conn, src_ns, "delete", entry["path"], entry["kind"], now,
                           version=entry["version"])
            top = moved[0]
            journal.append(conn, dst_ns, "add", top["path"], top["kind"], now,
                           version=top["version"], size=top["size"],
                           content_hash=top["content_hash"])
            owner = conn.execute(select(namespaces.c.owner_id).where(
                namespaces.c.id == dst_ns)).scalar_one()
            for chunk_hash in shares.current_chunks(conn, [r["id"] for r in moved]):
                chunk_repo.grant(conn, owner, chunk_hash, now)
            heads = journal.moved_heads(conn)
        self.announce(heads)
        return dst.shown(public_entry(top))

    def ensure_parents(self, conn: Connection, principal: Principal, path: str,
                       now: float) -> None:
        """The folders above ``path`` in the caller's own tree, made (and journaled) where
        missing; for a mount point being created."""
        self._ensure_parents(conn, principal, path, now)

    # -- a shared folder's bytes count against its owner's quota ------------------------
    def _owner_pays(self, conn: Connection, t: Target) -> OwnerQuota | None:
        """Who pays for a member's commits into ``t``: its owner's quota ledger (None: the
        owner committed, and owns the chunks already). Takes the owner's namespace lock when
        they have a quota, the one their own uploads take for the same rule, so neither can
        take the other's last free bytes; the shared namespace is locked first, the order
        every writer keeps."""
        assert t.mount is not None
        if t.mount.role == "owner":
            return None
        folder = shares.folder(conn, t.principal.namespace_id)
        if folder is None:
            raise NotFound("That shared folder no longer exists.")
        owner_id: int = folder["owner_id"]
        if folder["owner_quota"] is not None:
            journal.lock_namespace(conn, account_repo.root_namespace(conn, owner_id))
        return OwnerQuota(conn, owner_id, folder["owner_quota"], t.principal.user_id,
                          f"The owner of {t.mount.path} has no room left for this file.")
