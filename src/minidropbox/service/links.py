"""Share links: a URL anyone can open that shows one file or folder as it is now.

A link names an entry of a namespace by path, so it follows new versions, answers 404 while
the entry is moved or deleted, and works again once it is back. It never shows anything
outside its entry: paths are relative to the shared root (``/`` is the root itself), and no
version, trash or owner name (unless the owner chose to show it) leaves through it.

Tokens carry 192 random bits and only their SHA-256 is stored, so the lookup costs the same
whatever the token and a copy of the database opens no link. Passwords are hashed like
account passwords; wrong guesses are throttled per link and per client address.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from minidropbox.core.accounts import check_password
from minidropbox.core.errors import (
    AlreadyExists,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyRequests,
    Unauthorized,
    VersionConflict,
)
from minidropbox.core.paths import join, name_of, normalize_path
from minidropbox.core.ratelimit import SlidingWindow
from minidropbox.metadata import links as repo
from minidropbox.metadata.db import Database
from minidropbox.service.accounts import PASSWORD_HASHER, Principal
from minidropbox.service.files import CommitRequest
from minidropbox.service.mounts import SharedFileService
from minidropbox.settings import Settings

TOKEN_BYTES = 24  # 192 bits
MAX_EXPIRY = 10 * 365 * 24 * 3600
DROP_RENAME_TRIES = 100  # "name (1).ext" ... before a file drop gives up on a name
MODES = ("view", "upload")


class LinkPasswordRequired(Unauthorized):
    """This link needs a password (send it as the HTTP Basic password)."""

    code = "password_required"


@dataclass(frozen=True)
class LinkOptions:
    password: str | None = None
    expires_in: float | None = None  # seconds from now
    max_downloads: int | None = None
    upload_only: bool = False
    show_owner: bool = False


@dataclass(frozen=True)
class OpenLink:
    """A link that was found, is in force, and whose password (if any) was given."""

    id: int
    kind: str  # "file" | "folder"
    mode: str  # "view" | "upload"
    root: str  # the shared entry's path in the owner's namespace
    name: str
    owner_name: str | None  # only when the owner chose to show it
    limited: bool  # a download limit: the page shows no preview, which would spend one
    acting: Principal  # reads and drops run as the owner, inside ``root`` only

    def inner(self, rel: str | None) -> str:
        """The owner-side path of ``rel`` (relative to the shared root); nothing above it
        can be named, since ``normalize_path`` refuses ``..`` and every path is re-rooted."""
        clean = normalize_path(rel or "/")
        if clean == "/":
            return self.root
        if self.kind == "file":
            raise NotFound("No such file in this link.")
        return self.root + clean


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class LinkService:
    def __init__(self, db: Database, files: SharedFileService, settings: Settings,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.files = files
        self.settings = settings
        self.clock = clock
        self._link_failures = SlidingWindow(settings.link_password_failures_per_link)
        self._address_failures = SlidingWindow(settings.link_password_failures_per_address)

    # -- the owner's side -------------------------------------------------------------------
    def create(self, principal: Principal, raw_path: str,
               options: LinkOptions) -> dict[str, Any]:
        path = normalize_path(raw_path)
        if path == "/":
            raise InvalidInput("Share a file or folder, not your whole root folder.")
        entry = self.files.metadata(principal, path)
        if self.files.role_at(principal, path) not in (None, "owner"):
            raise Forbidden("Only the owner of a shared folder can make links into it.")
        if options.upload_only and entry["type"] != "folder":
            raise InvalidInput("An upload-only link needs a folder to drop files into.")
        if options.expires_in is not None and not 0 < options.expires_in <= MAX_EXPIRY:
            raise InvalidInput("The expiry must be between now and ten years from now.")
        if options.max_downloads is not None and options.max_downloads < 1:
            raise InvalidInput("max_downloads must be at least 1.")
        password_hash = None
        if options.password is not None:
            check_password(options.password)
            password_hash = PASSWORD_HASHER.hash(options.password)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = self.clock()
        values = dict(token_hash=token_hash(token), public_id=secrets.token_hex(8),
                      owner_id=principal.user_id,
                      namespace_id=principal.namespace_id, path=entry["path"],
                      kind=entry["type"], mode="upload" if options.upload_only else "view",
                      password_hash=password_hash, show_owner=options.show_owner,
                      expires_at=now + options.expires_in if options.expires_in else None,
                      max_downloads=options.max_downloads, downloads=0, created_at=now)
        with self.db.write() as conn:
            if repo.count_of_owner(conn, principal.user_id) >= self.settings.max_links_per_user:
                raise Forbidden(f"An account can have at most "
                                f"{self.settings.max_links_per_user} links; revoke some first.")
            repo.create(conn, **values)
        return {**self._public(values), "token": token,
                "share_url": f"/s/{token}"}

    def of_owner(self, principal: Principal,
                 raw_path: str | None = None) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = repo.of_owner(conn, principal.user_id, self.settings.max_links_per_user)
        if raw_path is not None:
            key = normalize_path(raw_path).casefold()
            rows = [r for r in rows if r["path"].casefold() == key]
        return [self._public(r) for r in rows]

    def revoke(self, principal: Principal, link_id: str) -> None:
        with self.db.write() as conn:
            if not repo.revoke(conn, principal.user_id, link_id[:16], self.clock()):
                raise NotFound(f"You have no link {link_id[:16]}.")

    def _public(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"link_id": row["public_id"], "path": row["path"], "type": row["kind"],
                "mode": row["mode"],
                "password_protected": row["password_hash"] is not None,
                "show_owner": bool(row["show_owner"]), "expires_at": row["expires_at"],
                "max_downloads": row["max_downloads"], "downloads": row["downloads"],
                "last_used_at": row.get("last_used_at"), "created_at": row["created_at"]}

    # -- the visitor's side -----------------------------------------------------------------
    def open(self, token: str, password: str | None, address: str) -> OpenLink:
        """The link behind ``token``, checked; ``NotFound`` for anything unknown, revoked,
        expired, used up, or whose entry is gone (one answer, so guessing learns nothing)."""
        now = self.clock()
        with self.db.read() as conn:
            row = repo.by_token_hash(conn, token_hash(token))
        if row is None:
            raise NotFound("No such link.")
        if row["expires_at"] is not None and row["expires_at"] <= now:
            raise NotFound("This link has expired.")
        if row["mode"] == "view" and row["max_downloads"] is not None \
                and row["downloads"] >= row["max_downloads"]:
            raise NotFound("This link has reached its download limit.")
        if row["password_hash"] is not None:
            self._check_password(row, password, address, now)
        acting = Principal(user_id=row["owner_id"], username=row["owner_name"], session_id="",
                           namespace_id=row["namespace_id"], is_admin=False,
                           quota_bytes=row["owner_quota"])
        link = OpenLink(id=row["id"], kind=row["kind"], mode=row["mode"], root=row["path"],
                        name=name_of(row["path"]),
                        owner_name=row["owner_name"] if row["show_owner"] else None,
                        limited=row["max_downloads"] is not None,
                        acting=acting)
        try:
            entry = self.files.metadata(acting, link.root)
        except NotFound:
            raise NotFound("The file or folder behind this link is no longer there.") from None
        if entry["type"] != link.kind:
            raise NotFound("The file or folder behind this link is no longer there.")
        with self.db.write() as conn:
            repo.touch(conn, link.id, now)
        return link

    def _check_password(self, row: dict[str, Any], password: str | None, address: str,
                        now: float) -> None:
        key = str(row["id"])
        wait = max(self._link_failures.blocked_for(key, now),
                   self._address_failures.blocked_for(address, now))
        if wait:
            raise TooManyRequests("Too many wrong passwords; try again later.",
                                  retry_after=wait)
        if password is None:
            raise LinkPasswordRequired()
        ok: bool
        try:
            ok = PASSWORD_HASHER.verify(row["password_hash"], password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        if not ok:
            self._link_failures.hit(key, now)
            self._address_failures.hit(address, now)
            raise LinkPasswordRequired("Wrong password for this link.")

    def _readable(self, link: OpenLink) -> None:
        if link.mode != "view":
            raise Forbidden("This link only takes uploads; its folder cannot be read.")

    def describe(self, link: OpenLink, rel: str | None) -> dict[str, Any]:
        """The entry at ``rel`` and, for a folder, its children (one page), all relative."""
        shown: dict[str, Any] = {"name": link.name, "type": link.kind, "mode": link.mode,
                 "owner": link.owner_name}
        if link.mode == "upload":
            return {**shown, "path": "/", "entries": []}
        inner = link.inner(rel)
        entry = self.files.metadata(link.acting, inner)
        out: dict[str, Any] = {**shown, "path": self._relative(link, entry["path"]),
                               "entry": self._entry(link, entry)}
        if entry["type"] == "folder":
            page = self.files.listing(link.acting, inner, False, None, None)
            out["entries"] = [self._entry(link, e) for e in page["entries"]]
        return out

    def file(self, link: OpenLink, rel: str | None) -> tuple[dict[str, Any],
                                                             list[tuple[str, int]]]:
        """A file's current content (entry relative to the link, with an ``etag`` that
        changes with the content, chunk list)."""
        self._readable(link)
        entry, chunk_list = self.files.content(link.acting, link.inner(rel), None)
        # Not the content hash itself: what identifies chunks stays with their owner.
        etag = hashlib.sha256(f"{link.id}:{entry['content_hash']}".encode()).hexdigest()[:32]
        return {**self._entry(link, entry), "etag": etag}, chunk_list

    def folder_files(self, link: OpenLink, rel: str | None) -> tuple[str, list[tuple[
            str, dict[str, Any], list[tuple[str, int]]]]]:
        """Every file under a folder of the link, for a zip: (zip name, [(path inside the
        zip, entry, chunk list)]). Bounded by ``max_zip_entries``."""
        self._readable(link)
        inner = link.inner(rel)
        folder = self.files.metadata(link.acting, inner)
        if folder["type"] != "folder":
            raise InvalidInput("That is a file; download it without a zip.")
        limit = self.settings.max_zip_entries
        page = self.files.listing(link.acting, inner, True, limit + 1, None)
        if len(page["entries"]) > limit or page["cursor"]:
            raise InvalidInput(f"The folder holds more than {limit} entries; download "
                               "its sub-folders one by one.")
        base = len(inner) if inner != "/" else 0
        members: list[tuple[str, dict[str, Any], list[tuple[str, int]]]] = []
        for entry in page["entries"]:
            inside = entry["path"][base + 1:]
            if entry["type"] == "folder":
                members.append((inside + "/", entry, []))
            else:
                _, chunk_list = self.files.content(link.acting, entry["path"], entry["version"])
                members.append((inside, entry, chunk_list))
        return (name_of(inner) or link.name), members

    def count_download(self, link: OpenLink) -> None:
        with self.db.write() as conn:
            if not repo.count_download(conn, link.id, self.clock()):
                raise NotFound("This link has reached its download limit.")

    def require_drop(self, link: OpenLink) -> None:
        if link.mode != "upload":
            raise Forbidden("This link does not take uploads.")

    def drop(self, link: OpenLink, raw_name: str, size: int, chunks: list[str],
             mtime: float | None) -> None:
        """File drop: add a file to the link's folder under a name nobody used; an existing
        name is never replaced, nor revealed (``name (1).ext`` is tried next)."""
        self.require_drop(link)
        if not raw_name or "/" in raw_name:
            raise InvalidInput("Give a file name, without folders.")
        name = normalize_path(raw_name)[1:]
        stem, dot, ext = name.rpartition(".") if "." in name.lstrip(".") else (name, "", "")
        for attempt in range(DROP_RENAME_TRIES):
            candidate = name if attempt == 0 else f"{stem} ({attempt}){dot}{ext}"
            try:
                self.files.commit(link.acting, CommitRequest(
                    path=join(link.root, candidate), size=size, chunks=chunks,
                    parent_version=None, mtime=mtime, device="file drop"))
                return
            except (VersionConflict, AlreadyExists):
                continue
        raise AlreadyExists("Too many files with that name here; rename it and try again.")

    def _relative(self, link: OpenLink, path: str) -> str:
        if path.casefold() == link.root.casefold():
            return "/"
        return path[len(link.root):]

    def _entry(self, link: OpenLink, entry: dict[str, Any]) -> dict[str, Any]:
        return {"path": self._relative(link, entry["path"]), "name": entry["name"],
                "type": entry["type"], "size": entry["size"], "modified": entry["modified"]}
