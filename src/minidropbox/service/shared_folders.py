"""Shared folders: invite, accept, change roles, remove, leave, unshare.

Sharing a folder turns it into a namespace of its own: its entries (trash included) move
there with their versions, and the owner's folder becomes their mount point, at the same path
with the same content, so nothing changes in the owner's tree or journal. Each member who
accepts gets a mount point of their own (an ``add`` in their journal), which they may move or
rename freely. Roles: ``owner`` (one), ``editor`` (reads and writes), ``viewer`` (reads).

What a removed member keeps: nothing on the server, as when a Dropbox owner removes someone
without letting them keep a copy. The mount point goes (a ``delete`` in their journal); their
sync clients then remove the local copy like any other deletion, file by file, only where the
local content is what the server had (an edit not yet uploaded is kept and reported). The
same holds for leaving, and a member deleting their mount point (through the API, the web
app or WebDAV) leaves, as in Dropbox. The owner deleting it (or a folder holding it) unshares
it into their trash (``SharedFileService.delete``): restorable, as a plain folder.
Versions they made stay in the folder's history, under their name.

Writers lock the shared namespace before any member's root namespace (``journal.append``
copies each change into the members' journals), so two writers never wait on each other.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from minidropbox.core.accounts import normalize_username
from minidropbox.core.errors import AlreadyExists, Forbidden, InvalidInput, NotFound
from minidropbox.core.paths import name_of, normalize_path
from minidropbox.metadata import accounts as account_repo
from minidropbox.metadata import entries as repo
from minidropbox.metadata import journal, shares
from minidropbox.metadata.db import Database
from minidropbox.service.accounts import Principal
from minidropbox.service.mounts import Mount, SharedFileService, Target
from minidropbox.settings import Settings

ROLES = ("editor", "viewer")
MAX_MOUNTS = 1000  # shared folders one account can have mounted
MAX_INVITES_SHOWN = 1000


class SharedFolderService:
    def __init__(self, db: Database, files: SharedFileService, settings: Settings,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.files = files
        self.settings = settings
        self.clock = clock

    # -- the owner --------------------------------------------------------------------------
    def invite(self, principal: Principal, raw_path: str, username: str,
               role: str) -> dict[str, Any]:
        """Share a folder with ``username`` as ``role`` (making it a shared folder first),
        or change the role of someone already in it."""
        if role not in ROLES:
            raise InvalidInput("The role is editor or viewer.")
        target = self.files.resolve(principal, raw_path)
        if target.path == "/" and target.mount is None:
            raise InvalidInput("Share a folder, not your whole root folder.")
        now = self.clock()
        with self.db.write() as conn:
            invitee = account_repo.user_by_name(conn, normalize_username(username))
            if invitee is None:
                raise NotFound(f"There is no user {username}.")
            if invitee["id"] == principal.user_id:
                raise InvalidInput("You cannot invite yourself.")
            ns = self._shared_namespace(conn, principal, target, now)
            member = shares.membership(conn, ns, invitee["id"])
            if member is not None:
                if member["role"] == "owner":
                    raise InvalidInput(f"{invitee['username']} owns this folder.")
                shares.set_role(conn, member["id"], role)
                state = member["state"]
            else:
                if shares.count_members(conn, ns) >= self.settings.max_share_members:
                    raise Forbidden(f"A shared folder can have at most "
                                    f"{self.settings.max_share_members} members.")
                shares.add_member(conn, ns, invitee["id"], role, principal.user_id, now)
                state = "invited"
        return {"path": target.outer("/") if target.mount else target.path,
                "username": invitee["username"], "role": role, "state": state}

    def _shared_namespace(self, conn: Connection, principal: Principal, target: Target,
                          now: float) -> int:
        """The shared folder ``target`` names, made one now if it is a plain folder."""
        if target.mount is not None:
            if not target.at_mount_point:
                raise InvalidInput(f"{target.outer(target.path)} is inside a shared folder; "
                                   "share that folder itself.")
            if target.mount.role != "owner":
                raise Forbidden(f"Only the owner of {target.mount.path} can invite people.")
            return target.mount.namespace_id
        own = principal.namespace_id
        journal.lock_namespace(conn, own)
        entry = repo.live(conn, own, target.path)
        if entry is None:
            raise NotFound(f"{target.path} does not exist.")
        if entry["kind"] != "folder":
            raise InvalidInput(f"{target.path} is a file: share it with a link instead.")
        if shares.mounts_under(conn, own, target.path):
            raise InvalidInput(f"{target.path} holds a shared folder; folders cannot be "
                               "shared inside each other.")
        ns = shares.create_folder(conn, principal.user_id, name_of(entry["path"]), now)
        shares.transfer(conn, own, entry["path"], ns, "/", contents_only=True, trashed=True)
        shares.set_mount(conn, entry["id"], ns)
        return ns

    def remove(self, principal: Principal, raw_path: str, username: str) -> None:
        """Take someone out of a shared folder (or withdraw their invitation), at once."""
        mount = self._owned(principal, raw_path)
        with self.db.write() as conn:
            journal.moved_heads(conn)
            journal.lock_namespace(conn, mount.namespace_id)
            user = account_repo.user_by_name(conn, username.strip().lower())
            member = shares.membership(conn, mount.namespace_id, user["id"]) if user else None
            if member is None or user is None:
                raise NotFound(f"{username} is not in {mount.path}.")
            if member["role"] == "owner":
                raise InvalidInput("The owner cannot be removed; unshare the folder instead.")
            self._unmount(conn, user["id"], mount.namespace_id)
            shares.remove_member(conn, member["id"])
            heads = journal.moved_heads(conn)
        self.files.announce(heads)

    def unshare(self, principal: Principal, raw_path: str) -> None:
        """Stop sharing: every other member loses it; the owner keeps it as a plain folder."""
        mount = self._owned(principal, raw_path)
        ns = mount.namespace_id
        with self.db.write() as conn:
            journal.moved_heads(conn)
            journal.lock_namespace(conn, ns)
            self.files.unshare_in(conn, principal, ns)
            heads = journal.moved_heads(conn)
        self.files.announce(heads)

    def _owned(self, principal: Principal, raw_path: str) -> Mount:
        mount = self._mount(principal, raw_path)
        if mount.role != "owner":
            raise Forbidden(f"Only the owner of {mount.path} can do that.")
        return mount

    def _mount(self, principal: Principal, raw_path: str) -> Mount:
        target = self.files.resolve(principal, raw_path)
        if target.mount is None:
            raise NotFound(f"{target.path} is not a shared folder.")
        return target.mount

    def _unmount(self, conn: Connection, user_id: int, ns: int) -> None:
        self.files.unmount(conn, user_id, ns)

    # -- members ----------------------------------------------------------------------------
    def members(self, principal: Principal, raw_path: str) -> dict[str, Any]:
        mount = self._mount(principal, raw_path)
        with self.db.read() as conn:
            folder = shares.folder(conn, mount.namespace_id)
            rows = shares.members(conn, mount.namespace_id)
        assert folder is not None
        return {"path": mount.path, "name": folder["name"], "owner": folder["owner_name"],
                "role": mount.role,
                "members": [{"username": r["username"], "role": r["role"], "state": r["state"]}
                            for r in rows]}

    def leave(self, principal: Principal, raw_path: str) -> None:
        self.files.leave(principal, self._mount(principal, raw_path))

    def folders(self, principal: Principal) -> list[dict[str, Any]]:
        """The shared folders in the caller's tree."""
        out = []
        with self.db.read() as conn:
            for mount in self.files.mounts(principal, conn):
                folder = shares.folder(conn, mount.namespace_id)
                if folder is not None:
                    out.append({"path": mount.path, "name": folder["name"],
                                "owner": folder["owner_name"], "role": mount.role,
                                "members": shares.count_members(conn, mount.namespace_id)})
        return sorted(out, key=lambda f: f["path"].casefold())

    # -- the invitee ------------------------------------------------------------------------
    def invites(self, principal: Principal) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = shares.invites_of(conn, principal.user_id, MAX_INVITES_SHOWN)
        return [{"invite_id": r["id"], "name": r["name"], "owner": r["owner_name"],
                 "role": r["role"], "created_at": r["created_at"]} for r in rows]

    def decline(self, principal: Principal, invite_id: int) -> None:
        with self.db.write() as conn:
            invite = shares.invite(conn, invite_id, principal.user_id)
            if invite is None:
                raise NotFound(f"You have no invitation {invite_id}.")
            shares.remove_member(conn, invite["id"])

    def accept(self, principal: Principal, invite_id: int,
               as_path: str | None = None) -> dict[str, Any]:
        """Mount the folder at ``as_path`` (default: its name at the root)."""
        now = self.clock()
        with self.db.read() as conn:
            invite = shares.invite(conn, invite_id, principal.user_id)
            folder = shares.folder(conn, invite["namespace_id"]) if invite else None
        if invite is None or folder is None:
            raise NotFound(f"You have no invitation {invite_id}.")
        path = normalize_path(as_path if as_path is not None else "/" + folder["name"])
        if path == "/":
            raise InvalidInput("Choose a folder to put it in, not the root itself.")
        own = principal.namespace_id
        with self.db.write() as conn:
            journal.moved_heads(conn)
            journal.lock_namespace(conn, invite["namespace_id"])
            journal.lock_namespace(conn, own)
            if shares.invite(conn, invite_id, principal.user_id) is None:
                raise NotFound(f"You have no invitation {invite_id}.")
            if repo.live(conn, own, path) is not None:
                raise AlreadyExists(f"{path} already exists; choose another place (--as).")
            if shares.mount_covering(conn, own, path) is not None:
                raise InvalidInput(f"{path} is inside a shared folder; choose another place.")
            if len(shares.mounts_under(conn, own, "/")) >= MAX_MOUNTS:
                raise Forbidden(f"An account can hold at most {MAX_MOUNTS} shared folders.")
            self.files.ensure_parents(conn, principal, path, now)
            entry = repo.insert_entry(conn, own, path, "folder", now)
            shares.set_mount(conn, entry["id"], invite["namespace_id"])
            journal.append(conn, own, "add", path, "folder", now)
            shares.activate(conn, invite["id"], now)
            heads = journal.moved_heads(conn)
        self.files.announce(heads)
        return {"path": path, "name": folder["name"], "owner": folder["owner_name"],
                "role": invite["role"]}
