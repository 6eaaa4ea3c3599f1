"""The server, seen from the client: one method per API endpoint, one retry policy.

Layers (docs/DESIGN.md, "Client layers"):

    ApiClient   (api.py)     HTTP, token refresh, error answers -> exception classes
    Remote      (this)       endpoints -> frozen typed values (values.py)
    upload / download / plans, the sync engine: what to send and fetch, never a URL

Everything the client asks the API goes through here, so a URL appears in one module and a
failure crosses the client as a ``MiniDropboxError`` subclass, never as a code string.

Retries (``RetryPolicy``): a 429 means the server did nothing, so any call may wait it out
(``Retry-After``, up to ``patience`` seconds in all). Unreachable or 503 is retried only for
calls that are safe to repeat (reads, chunk uploads, creating a folder), never for a commit,
move, delete or restore, whose first attempt may have happened.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from minidropbox.client.admin_values import (
    CheckResult,
    GcResult,
    OrphanSweep,
    RepairSummary,
    StorageNode,
    StorageStatus,
    UserInfo,
)
from minidropbox.client.api import API_ROOT, ApiClient, ServerUnreachable, error_from_body
from minidropbox.client.bandwidth import Bandwidth
from minidropbox.client.nodes import (
    NodeLink,
    PlannedChunk,
    UploadGrant,
    replication_is_chain,
    shared_node_link,
)
from minidropbox.client.values import (
    ROOT_ENTRY,
    Account,
    AppPassword,
    Change,
    CommitRequest,
    CommitResult,
    ContentInfo,
    Deleted,
    Entry,
    FileContent,
    FolderInvite,
    Membership,
    ServerInfo,
    SharedFolder,
    ShareLink,
    TrashEntry,
    Usage,
    VersionInfo,
)
from minidropbox.core import errors
from minidropbox.core.paths import lookup_path

T = TypeVar("T")
MISSING_BATCH = 10_000  # hashes per /chunks/missing: the server's limit
MAX_RECEIPTS = 1_000  # receipts per request: the server's limit
DOWNLOAD_BLOCK = 1024 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    """How long a call may wait out rate limits, and how often a brief outage is retried."""

    attempts: int = 4  # for calls safe to repeat, when the server is unreachable or 503
    patience: float = 300.0  # seconds a call may spend waiting out 429s
    base_delay: float = 0.5
    sleep: Callable[[float], None] = time.sleep  # a simulation waits on its own clock

    def call(self, fn: Callable[[], T], *, idempotent: bool) -> T:
        waited = 0.0
        attempt = 0
        while True:
            try:
                return fn()
            except errors.TooManyRequests as exc:
                pause = float(min(max(exc.retry_after, 1), 30))
                if waited + pause > self.patience:
                    raise
                self.sleep(pause)
                waited += pause
            except (ServerUnreachable, errors.StorageUnavailable):
                attempt += 1
                if not idempotent or attempt >= self.attempts:
                    raise
                self.sleep(self.base_delay * 2**attempt)


def _url(path: str) -> str:
    return f"{API_ROOT}{path}"


class Remote:
    """One account on one server. Thread-safe as ``ApiClient`` is (transfers share one)."""

    def __init__(self, api: ApiClient, retry: RetryPolicy | None = None, *,
                 direct: bool = True, nodes: NodeLink | None = None,
                 bandwidth: Bandwidth | None = None, chain: bool | None = None) -> None:
        """``direct``: send and fetch chunk bytes at the storage nodes when the server hands
        out grants (else, and whenever a node cannot be reached, through the API).
        ``nodes``: the connections to the nodes (default: the process's shared pool).
        ``bandwidth``: ``--bwlimit``, file bytes up and down, all threads together.
        ``chain``: send each chunk once, to its first node, which passes it on (chain
        replication), rather than to each of its R nodes (fan-out); by default as
        ``MINIDROPBOX_REPLICATION`` (``chain`` or ``fanout``) says, else
        ``nodes.DEFAULT_CHAIN``."""
        self.api = api
        self.chain = chain if chain is not None else replication_is_chain(
            os.environ.get("MINIDROPBOX_REPLICATION"))
        self.retry = retry or RetryPolicy()
        self.direct = direct
        self.bandwidth = bandwidth
        self._own_nodes: NodeLink | None = None
        if nodes is None and bandwidth is not None:
            # Paced, so not the process's shared (unpaced) pool; closed with this Remote.
            nodes = self._own_nodes = NodeLink(bandwidth=bandwidth)
        self._nodes = nodes

    @property
    def server(self) -> str:
        return self.api.server

    @property
    def nodes(self) -> NodeLink:
        """Keep-alive connections to the storage nodes, shared by every ``Remote`` of the
        process (made on first use): a transfer per file reuses them."""
        return self._nodes if self._nodes is not None else shared_node_link()

    def close(self) -> None:
        if self._own_nodes is not None:
            self._own_nodes.close()
        self.api.close()

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _json(self, method: str, path: str, *, idempotent: bool, **kwargs: Any) -> Any:
        return self.retry.call(lambda: self.api.request_json(method, _url(path), **kwargs),
                               idempotent=idempotent)

    # -- accounts ---------------------------------------------------------------------------
    def signup(self, username: str, password: str, invite: str | None = None) -> Account:
        body = self._json("POST", "/auth/signup", idempotent=False, auth=False,
                          json={"username": username, "password": password,
                                **({"invite": invite} if invite else {})})
        return Account.from_json(body)

    def logout(self) -> None:
        self._json("POST", "/auth/logout", idempotent=False)

    def me(self) -> Account:
        return Account.from_json(self._json("GET", "/auth/me", idempotent=True))

    def usage(self) -> Usage:
        return Usage.from_json(self._json("GET", "/usage", idempotent=True))

    def change_password(self, old: str, new: str) -> None:
        self._json("POST", "/auth/password", idempotent=False,
                   json={"old_password": old, "new_password": new})

    def create_app_password(self, name: str) -> AppPassword:
        """A new WebDAV password for one device; its ``password`` is shown only now."""
        return AppPassword.from_json(self._json("POST", "/app-passwords", idempotent=False,
                                                json={"name": name}))

    def app_passwords(self) -> list[AppPassword]:
        body = self._json("GET", "/app-passwords", idempotent=True)
        return [AppPassword.from_json(row) for row in body["app_passwords"]]

    def revoke_app_password(self, name: str) -> None:
        self._json("DELETE", f"/app-passwords/{quote(name, safe='')}", idempotent=False)

    # -- share links ------------------------------------------------------------------------
    def create_link(self, path: str, *, password: str | None = None,
                    expires_in: float | None = None, max_downloads: int | None = None,
                    upload_only: bool = False, show_owner: bool = False) -> ShareLink:
        """A link to ``path``; its ``share_url`` is in this answer only."""
        body: dict[str, Any] = {"path": path, "max_downloads": max_downloads,
                                "upload_only": upload_only, "show_owner": show_owner}
        if expires_in is not None:
            body["expires_in"] = expires_in
        if password is not None:
            body["password"] = password
        return ShareLink.from_json(self._json("POST", "/shares/links", idempotent=False,
                                              json=body))

    def links(self, path: str | None = None) -> list[ShareLink]:
        """The links in force (to ``path`` only, if given)."""
        params = {"path": path} if path is not None else {}
        body = self._json("GET", "/shares/links", idempotent=True, params=params)
        return [ShareLink.from_json(item) for item in body["links"]]

    def revoke_link(self, link_id: str) -> None:
        self._json("DELETE", f"/shares/links/{quote(link_id, safe='')}", idempotent=False)

    # -- shared folders ---------------------------------------------------------------------
    def share_folder(self, path: str, username: str, role: str) -> Membership:
        """Invite ``username`` to the folder (or change their role)."""
        return Membership.from_json(self._json(
            "POST", "/shares/folders", idempotent=False,
            json={"path": path, "username": username, "role": role}))

    def folder_members(self, path: str) -> SharedFolder:
        return SharedFolder.from_json(self._json("GET", "/shares/folders/members",
                                                 idempotent=True, params={"path": path}))

    def remove_member(self, path: str, username: str) -> None:
        self._json("DELETE", "/shares/folders/members", idempotent=False,
                   params={"path": path, "username": username})

    def leave_folder(self, path: str) -> None:
        self._json("POST", "/shares/folders/leave", idempotent=False, json={"path": path})

    def unshare_folder(self, path: str) -> None:
        self._json("POST", "/shares/folders/unshare", idempotent=False, json={"path": path})

    def shared_folders(self) -> list[SharedFolder]:
        body = self._json("GET", "/shares/folders", idempotent=True)
        return [SharedFolder.from_json(item) for item in body["folders"]]

    def invites(self) -> list[FolderInvite]:
        body = self._json("GET", "/shares/invites", idempotent=True)
        return [FolderInvite.from_json(item) for item in body["invites"]]

    def accept_invite(self, invite_id: int, as_path: str | None) -> SharedFolder:
        """Mount the invited folder at ``as_path`` (default: its name, at the root)."""
        return SharedFolder.from_json(self._json(
            "POST", f"/shares/invites/{invite_id}/accept", idempotent=False,
            json={"as_path": as_path}))

    def decline_invite(self, invite_id: int) -> None:
        self._json("DELETE", f"/shares/invites/{invite_id}", idempotent=False)

    # -- entries ----------------------------------------------------------------------------
    def metadata(self, path: str) -> Entry:
        """The entry at ``path``; the root is always a folder. ``NotFound`` if none."""
        path = lookup_path(path)
        if path == "/":
            return ROOT_ENTRY
        return Entry.from_json(self._json("GET", "/files/metadata", idempotent=True,
                                          params={"path": path}))

    def find(self, path: str) -> Entry | None:
        """The entry at ``path``, or None."""
        try:
            return self.metadata(path)
        except errors.NotFound:
            return None

    def list_folder(self, path: str, recursive: bool = False) -> Iterator[Entry]:
        """Every entry in a folder, following the server's pages."""
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"path": lookup_path(path),
                                      "recursive": "true" if recursive else "false"}
            if cursor:
                params["cursor"] = cursor
            page = self._json("GET", "/files/list", idempotent=True, params=params)
            yield from (Entry.from_json(e) for e in page["entries"])
            cursor = page.get("cursor")
            if not cursor:
                return

    def make_folder(self, path: str) -> Entry:
        """Create a folder and its missing parents (``Conflict`` if a file is in the way)."""
        return Entry.from_json(self._json("POST", "/files/folder", idempotent=True,
                                          json={"path": path}))

    def move(self, source: str, dest: str) -> Entry:
        return Entry.from_json(self._json("POST", "/files/move", idempotent=False,
                                          json={"from": source, "to": dest}))

    def copy(self, source: str, dest: str) -> Entry:
        """Copy on the server (chunks shared, no byte moves); ``dest`` must not exist."""
        return Entry.from_json(self._json("POST", "/files/copy", idempotent=False,
                                          json={"from": source, "to": dest}))

    def delete(self, path: str, if_version: int | None = None) -> Deleted:
        """Move ``path`` (with a folder's contents) to the trash. With ``if_version``, a file
        only while that version is current, else ``VersionConflict``."""
        headers = {"If-Match": str(if_version)} if if_version is not None else None
        body = self._json("DELETE", "/files", idempotent=False, params={"path": path},
                          headers=headers)
        return Deleted(path=str(body.get("path", path)), deleted=int(body.get("deleted", 1)),
                       unshared=int(body.get("unshared", 0)))

    def versions(self, path: str) -> list[VersionInfo]:
        body = self._json("GET", "/files/versions", idempotent=True, params={"path": path})
        return [VersionInfo.from_json(v) for v in body["versions"]]

    def restore(self, path: str, version: int) -> Entry:
        """A new version of ``path`` with the content of ``version``."""
        return Entry.from_json(self._json("POST", "/files/restore", idempotent=False,
                                          json={"path": path, "version": version}))

    # -- trash ------------------------------------------------------------------------------
    def trash(self) -> list[TrashEntry]:
        body = self._json("GET", "/trash", idempotent=True)
        return [TrashEntry.from_json(e) for e in body["entries"]]

    def undelete(self, path: str) -> Entry:
        return Entry.from_json(self._json("POST", "/trash/restore", idempotent=False,
                                          json={"path": path}))

    def purge_trash(self, path: str | None = None) -> int:
        """Delete ``path`` (or everything) from the trash for good; how many entries."""
        params = {"path": path} if path is not None else {}
        return int(self._json("DELETE", "/trash", idempotent=False, params=params)["purged"])

    # -- chunks and commits -----------------------------------------------------------------
    def missing_chunks(self, hashes: Sequence[str]) -> tuple[set[str], int]:
        """The subset of ``hashes`` this user still has to send, and the requests it took."""
        wanted = set(hashes)
        missing: set[str] = set()
        requests = 0
        for start in range(0, len(hashes), MISSING_BATCH):
            part = list(hashes[start : start + MISSING_BATCH])
            body = self._json("POST", "/chunks/missing", idempotent=True, json={"hashes": part})
            requests += 1
            missing.update(h for h in body["missing"] if h in wanted)
        return missing, requests

    def missing_with_grants(self, chunks: Sequence[tuple[str, int]],
                            ) -> tuple[set[str], dict[str, UploadGrant], int]:
        """Like ``missing_chunks`` for (hash, size) pairs, with the grants to send the
        missing ones straight to the storage nodes (those without go through the API)."""
        wanted = {h for h, _ in chunks}
        missing: set[str] = set()
        grants: dict[str, UploadGrant] = {}
        requests = 0
        for start in range(0, len(chunks), MISSING_BATCH):
            part = chunks[start : start + MISSING_BATCH]
            body = self._json("POST", "/chunks/missing", idempotent=True,
                              json={"hashes": [h for h, _ in part],
                                    "sizes": [n for _, n in part]})
            requests += 1
            missing.update(h for h in body["missing"] if h in wanted)
            for item in body.get("uploads") or ():
                grant = UploadGrant.from_json(item)
                if grant.hash in missing:
                    grants[grant.hash] = grant
        return missing, grants, requests

    def present_receipts(self, receipts: Sequence[str]) -> tuple[set[str], int]:
        """Hand the nodes' receipts to the API: the chunks now this account's, and the
        requests it took. A chunk left out (its receipts refused) must be sent again."""
        recorded: set[str] = set()
        requests = 0
        for start in range(0, len(receipts), MAX_RECEIPTS):
            body = self._json("POST", "/chunks/receipts", idempotent=True,
                              json={"receipts": list(receipts[start : start + MAX_RECEIPTS])})
            requests += 1
            recorded.update(str(h) for h in body["recorded"])
        return recorded, requests

    def report_corrupt_copy(self, chunk_hash: str, node_url: str) -> None:
        """Tell the API the copy of ``chunk_hash`` at ``node_url`` did not hash to its name:
        the API checks it and has it repaired."""
        self._json("POST", f"/chunks/{chunk_hash}/corrupt", idempotent=True,
                   json={"node": node_url})

    def read_plan(self, path: str, version: int | None = None, offset: int = 0,
                  ) -> tuple[Entry, list[PlannedChunk], int | None]:
        """Where a file's bytes are, from the chunk holding byte ``offset``: its entry (as
        of ``version``), a page of chunks with holders and read grants, and the offset of the
        next page (None: the last)."""
        params: dict[str, Any] = {"path": path, "offset": offset}
        if version is not None:
            params["version"] = version
        body = self._json("GET", "/files/chunks", idempotent=True, params=params)
        return (Entry.from_json(body["entry"]),
                [PlannedChunk.from_json(c) for c in body["chunks"]],
                _opt_offset(body.get("next_offset")))

    def read_range(self, path: str, version: int, start: int, length: int) -> bytes:
        """``length`` bytes of a file from ``start``, through the API (the fallback when no
        storage node serves a chunk directly). The caller verifies them."""
        headers = {"Range": f"bytes={start}-{start + length - 1}"} if length else {}
        if not length:
            return b""
        response = self.retry.call(lambda: self.api.request(
            "GET", _url("/files/content"), params={"path": path, "version": version},
            headers=headers), idempotent=True)
        return response.content

    def put_chunk(self, chunk_hash: str, data: bytes) -> None:
        if self.bandwidth is not None:
            self.bandwidth.take(len(data))
        self._json("PUT", f"/chunks/{chunk_hash}", idempotent=True, content=data,
                   headers={"Content-Type": "application/octet-stream"})

    def put_chunks(self, chunks: Iterable[tuple[str, bytes]]) -> None:
        """Several small chunks in one multipart request (8 MiB at most in all)."""
        files = [(h, (h, data, "application/octet-stream")) for h, data in chunks]
        if self.bandwidth is not None:
            self.bandwidth.take(sum(len(f[1][1]) for f in files))
        self._json("POST", "/chunks/batch", idempotent=True, files=files)

    def commit(self, request: CommitRequest, receipts: Sequence[str] = ()) -> Entry:
        """``VersionConflict`` if the parent is not current; ``MissingChunk`` if a chunk is
        not (or no longer) there: send it again. ``receipts`` (at most 1,000) from the
        storage nodes are recorded first."""
        body = request.as_json()
        if receipts:
            body["receipts"] = list(receipts)
        return Entry.from_json(self._json("POST", "/files/commit", idempotent=False,
                                          json=body))

    def commit_batch(self, requests: Sequence[CommitRequest],
                     receipts: Sequence[str] = ()) -> list[CommitResult]:
        """Up to 1,000 commits in one request, each judged alone: an entry or its error.
        ``receipts`` (at most 1,000) from the storage nodes are recorded first."""
        payload: dict[str, Any] = {"commits": [r.as_json() for r in requests]}
        if receipts:
            payload["receipts"] = list(receipts)
        body = self._json("POST", "/files/commit_batch", idempotent=False, json=payload)
        out: list[CommitResult] = []
        for answer in body["results"]:
            if answer.get("ok"):
                out.append(Entry.from_json(answer["entry"]))
            else:
                out.append(error_from_body(500, {"error": answer.get("error") or {}}))
        return out

    @contextmanager
    def open_content(self, path: str, version: int | None = None,
                     ) -> Iterator[tuple[ContentInfo, Iterator[bytes]]]:
        """Stream a file's bytes (its current version, or ``version``): what the headers
        say, and the blocks. Not retried here: the caller restarts a whole download."""
        params: dict[str, Any] = {"path": path}
        if version is not None:
            params["version"] = version
        with self.api.stream("GET", _url("/files/content"), params=params) as response:
            headers = response.headers
            length = headers.get("content-length")
            etag = headers.get("etag", "").removeprefix("W/").strip('"')
            info = ContentInfo(length=int(length) if length is not None else None,
                               content_hash=etag or None,
                               last_modified=_http_date(headers.get("last-modified")))
            blocks = response.iter_bytes(DOWNLOAD_BLOCK)
            yield info, blocks if self.bandwidth is None else self.bandwidth.paced(blocks)

    def read_contents(self, files: Sequence[tuple[str, int]],
                      ) -> list[FileContent | errors.MiniDropboxError]:
        """Several small files (path, version) in one request (``POST /files/contents``):
        per file, in order, its bytes with what the server says of them, or its error (gone,
        a folder). The caller verifies the bytes. The server's bounds (256 files, 1 MiB each,
        16 MiB in all) are the caller's to keep; the whole request is retried as a read."""
        body = {"files": [{"path": p, "version": v} for p, v in files]}

        def once() -> bytes:
            with self.api.stream("POST", _url("/files/contents"), json=body) as response:
                return b"".join(response.iter_bytes(DOWNLOAD_BLOCK))

        raw = memoryview(self.retry.call(once, idempotent=True))
        out: list[FileContent | errors.MiniDropboxError] = []
        pos = 0
        for _ in files:
            end = bytes(raw[pos : pos + 64 * 1024]).find(b"\n")
            if end < 0:
                raise errors.MiniDropboxError("The server's answer ended early.")
            head = json.loads(bytes(raw[pos : pos + end]))
            pos += end + 1
            if "error" in head:
                out.append(error_from_body(400, head))
                continue
            size = int(head["size"])
            data = bytes(raw[pos : pos + size])
            if len(data) != size:
                raise errors.MiniDropboxError("The server's answer ended early.")
            pos += size
            out.append(FileContent(str(head["path"]), int(head["version"]), size,
                                   str(head["content_hash"]), float(head["modified"]), data))
        return out

    # -- changes ----------------------------------------------------------------------------
    def server_info(self) -> ServerInfo:
        return ServerInfo.from_json(self._json("GET", "/server", idempotent=True, auth=False))

    def latest_cursor(self) -> str:
        """The cursor of the newest change: start here to hear only of later ones."""
        return str(self._json("GET", "/changes", idempotent=True)["cursor"])

    def changes_since(self, cursor: str, limit: int | None = None) -> Iterator[Change]:
        """Every change after ``cursor``, oldest first, paging until the last one.

        Each change carries its own ``cursor``: save it as each is applied, and a restart
        resumes exactly after the last one. ``CursorReset`` (410) means list in full.
        """
        while True:
            params: dict[str, Any] = {"cursor": cursor}
            if limit:
                params["limit"] = limit
            page = self._json("GET", "/changes", idempotent=True, params=params)
            yield from (Change.from_json(e) for e in page["entries"])
            cursor = str(page["cursor"])
            if not page["has_more"]:
                return

    def wait_for_change(self, cursor: str, timeout: float = 30.0) -> tuple[bool, str]:
        """Long-poll: (True, newest cursor) once something changed after ``cursor``, else
        (False, cursor) after ``timeout`` seconds. ``CursorReset`` if it is unusable."""
        body = self._json("GET", "/changes/wait", idempotent=True,
                          params={"cursor": cursor, "timeout": timeout},
                          timeout=httpx.Timeout(timeout + 30.0, connect=10.0))
        return bool(body["changes"]), str(body["cursor"])

    def notifications_url(self) -> str:
        """The WebSocket that pushes the newest cursor as the journal moves."""
        return self.api.websocket_url("/notifications")

    # -- the cluster (administrators only) ----------------------------------------------------
    # Only reads are retried: a drain, repair, collection or sweep may have started already.
    def storage_nodes(self) -> list[StorageNode]:
        body = self._json("GET", "/admin/nodes", idempotent=True)
        return [StorageNode.from_json(n) for n in body["nodes"]]

    def storage_status(self) -> StorageStatus:
        return StorageStatus.from_json(self._json("GET", "/admin/status", idempotent=True))

    def drain_node(self, name: str, *, cancel: bool = False) -> StorageNode:
        """Start moving every replica off node ``name`` (or, ``cancel``, stop)."""
        return StorageNode.from_json(self._json(
            "POST", f"/admin/nodes/{quote(name, safe='')}/drain", idempotent=False,
            json={"cancel": cancel}))

    def rebalance(self) -> bool:
        """Start moving replicas to their rendezvous places; whether it started."""
        return bool(self._json("POST", "/admin/rebalance", idempotent=False)["started"])

    def repair(self) -> RepairSummary:
        return RepairSummary.from_json(self._json("POST", "/admin/repair", idempotent=False))

    def collect_garbage(self, *, dry_run: bool = False) -> GcResult:
        return GcResult.from_json(self._json("POST", "/admin/gc", idempotent=False,
                                             json={"dry_run": dry_run}, timeout=600))

    def sweep_orphans(self, *, dry_run: bool = False) -> OrphanSweep:
        return OrphanSweep.from_json(self._json("POST", "/admin/orphans", idempotent=False,
                                                json={"dry_run": dry_run}, timeout=600))

    def users(self, after: str = "") -> list[UserInfo]:
        body = self._json("GET", "/admin/users", idempotent=True, params={"after": after})
        return [UserInfo.from_json(u) for u in body["users"]]

    def create_user(self, username: str, password: str) -> UserInfo:
        return UserInfo.from_json(self._json("POST", "/admin/users", idempotent=False,
                                             json={"username": username,
                                                   "password": password}))

    def set_user_disabled(self, username: str, disabled: bool) -> UserInfo:
        what = "disable" if disabled else "enable"
        return UserInfo.from_json(self._json(
            "POST", f"/admin/users/{quote(username, safe='')}/{what}", idempotent=True))

    def delete_user(self, username: str) -> None:
        self._json("DELETE", f"/admin/users/{quote(username, safe='')}", idempotent=False)

    def reset_password(self, username: str, password: str) -> None:
        self._json("POST", f"/admin/users/{quote(username, safe='')}/password",
                   idempotent=False, json={"new_password": password})

    def set_user_quota(self, username: str, quota_bytes: int | None) -> UserInfo:
        return UserInfo.from_json(self._json(
            "PUT", f"/admin/users/{quote(username, safe='')}/quota", idempotent=True,
            json={"quota_bytes": quota_bytes}))

    def create_invite(self, expires_in: float) -> tuple[str, float]:
        """A sign-up code (shown once) and when it expires."""
        body = self._json("POST", "/admin/invites", idempotent=False,
                          json={"expires_in": expires_in})
        return str(body["code"]), float(body["expires_at"])

    def check_invariants(self, *, nodes: bool = False) -> CheckResult:
        """Every invariant of docs/DESIGN.md; ``nodes`` also HEADs every recorded copy
        (paced by the server: this may take an hour on a big cluster)."""
        return CheckResult.from_json(self._json("POST", "/admin/check", idempotent=False,
                                                json={"nodes": nodes}, timeout=3600))


def _opt_offset(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def _http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
