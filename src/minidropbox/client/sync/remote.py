"""The server side of a reconcile: the remote folder's tree, cursor and generation.

Server paths are mapped to sync-relative paths (``/a/b.txt`` under the remote folder) and
every one is checked before it can name a local file: a path outside the remote folder, or
with a segment that is unsafe on this disk, is skipped with a message, never written.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from minidropbox.client.api import ApiClient
from minidropbox.client.sync.errors import SyncRootMissing
from minidropbox.client.sync.ignore import IgnoreRules
from minidropbox.client.transfer import (
    UnsafeName,
    check_name,
    find_entry,
    list_folder,
    relative_remote,
)
from minidropbox.core import errors
from minidropbox.core.paths import normalize_path, path_key
from minidropbox.core.reconcile import Item

log = logging.getLogger("minidropbox.sync")
SNAPSHOT_TRIES = 3


class SyncApiClient(ApiClient):
    """The client the sync engine shares between threads (``ApiClient`` serialises token
    refreshes itself, so a refresh token is spent only once)."""


@dataclass
class RemoteTree:
    items: dict[str, Item] = field(default_factory=dict)
    modified: dict[str, float] = field(default_factory=dict)  # file mtimes, by key
    cursor: str | None = None  # the journal position the listing is at least as new as
    skipped: list[str] = field(default_factory=list)


class RemoteSide:
    """The remote folder a local folder syncs with."""

    def __init__(self, api: ApiClient, root: str) -> None:
        self.api = api
        self.root = normalize_path(root)
        self.has_journal = True

    def to_remote(self, rel: str) -> str:
        return rel if self.root == "/" else self.root + rel

    def to_rel(self, path: str) -> str:
        """The sync-relative form of a server path; ``UnsafeName`` if it cannot be one."""
        rel = relative_remote(path, self.root)
        if not rel:
            return "/"
        for part in rel.split("/"):
            check_name(part)
        return normalize_path("/" + rel)

    def root_exists(self) -> bool:
        if self.root == "/":
            return True
        entry = find_entry(self.api, self.root)
        if entry is not None and entry["type"] != "folder":
            raise errors.AlreadyExists(f"{self.root} is a file on the server, not a folder.")
        return entry is not None

    def create_root(self) -> None:
        self.api.request_json("POST", "/api/v1/files/folder", json={"path": self.root})

    def generation(self) -> str | None:
        """The server's generation (it changes when the server is restored from a backup)."""
        try:
            body = self.api.request_json("GET", "/api/v1/server", auth=False)
        except errors.NotFound:
            return None
        value = body.get("generation") if isinstance(body, dict) else None
        return str(value) if value is not None else None

    def latest_cursor(self) -> str | None:
        if not self.has_journal:
            return None
        try:
            body = self.api.request_json("GET", "/api/v1/changes")
        except errors.NotFound:
            self.has_journal = False  # an older server: listings only
            return None
        return str(body["cursor"])

    def listing(self, rules: IgnoreRules) -> RemoteTree:
        """Everything under the remote folder. When the journal moved during a paged listing
        the listing is taken again, so the tree is one consistent moment."""
        for attempt in range(SNAPSHOT_TRIES):
            before = self.latest_cursor()
            tree = self._list(rules)
            after = self.latest_cursor()
            tree.cursor = before
            if before == after or attempt == SNAPSHOT_TRIES - 1:
                return tree
            time.sleep(0.05)
        raise AssertionError("unreachable")

    def _list(self, rules: IgnoreRules) -> RemoteTree:
        tree = RemoteTree()
        try:
            entries = list(list_folder(self.api, self.root, recursive=True))
        except errors.NotFound as exc:
            raise SyncRootMissing(f"The server folder {self.root} is gone; nothing was deleted "
                                  "here. Restore it from the trash, or sync into a new local "
                                  "folder.") from exc
        for entry in entries:
            try:
                rel = self.to_rel(entry["path"])
            except (UnsafeName, errors.InvalidPath) as exc:
                tree.skipped.append(f"{entry.get('path')!r} from the server: {exc.message}")
                continue
            if rel == "/":
                continue
            kind = "folder" if entry["type"] == "folder" else "file"
            if rules.ignored(rel, kind == "folder"):
                continue
            key = path_key(rel)
            if kind == "folder":
                tree.items[key] = Item(rel, "folder")
            else:
                tree.items[key] = Item(rel, "file", entry["content_hash"], entry["version"],
                                       entry["size"])
                if entry.get("modified") is not None:
                    tree.modified[key] = float(entry["modified"])
        return tree
