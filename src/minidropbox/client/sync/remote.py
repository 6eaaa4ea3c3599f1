"""The server side of a reconcile: the remote folder's tree, cursor and generation.

Server paths are mapped to sync-relative paths (``/a/b.txt`` under the remote folder) and
every one is checked before it can name a local file: a path outside the remote folder, or
with a segment that is unsafe on this disk, is skipped with a message, never written.

The tree is listed in full at the first round, after a 410 ``reset``, when the journal cannot
say what changed (``NeedsListing``), and every ``RELIST_EVERY`` seconds; in between, each round
reads only the journal entries after the cursor the tree is at (``journal.CachedTree``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from minidropbox.client.localpaths import UnsafeName, check_names, relative_remote
from minidropbox.client.remote import Remote
from minidropbox.client.sync.errors import SyncRootMissing
from minidropbox.client.sync.ignore import IgnoreRules
from minidropbox.client.sync.journal import CachedTree, NeedsListing
from minidropbox.core import errors
from minidropbox.core.paths import is_within, normalize_path, path_key
from minidropbox.core.reconcile import Item

log = logging.getLogger("minidropbox.sync")
SNAPSHOT_TRIES = 3
RELIST_EVERY = 600.0  # seconds: a full listing now and then, whatever the journal says


@dataclass
class RemoteTree:
    items: dict[str, Item] = field(default_factory=dict)
    modified: dict[str, float] = field(default_factory=dict)  # file mtimes, by key
    cursor: str | None = None  # the journal position the listing is at least as new as
    skipped: list[str] = field(default_factory=list)


class RemoteSide:
    """The remote folder a local folder syncs with."""

    def __init__(self, server: Remote, root: str,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.server = server
        self.monotonic = monotonic
        self.root = normalize_path(root)
        self.has_journal = True
        self.cache: CachedTree | None = None  # None: the next round lists the folder
        self.listed_at = 0.0
        self.listings = 0  # full listings so far (tests and logs)
        # Server names the last listing could not bring here; kept until the next listing,
        # which any journal entry naming one of them forces.
        self.skipped: list[str] = []

    def to_remote(self, rel: str) -> str:
        return rel if self.root == "/" else self.root + rel

    def to_rel(self, path: str) -> str:
        """The sync-relative form of a server path; ``UnsafeName`` if it cannot be one."""
        rel = relative_remote(path, self.root)
        if not rel:
            return "/"
        check_names(rel)
        return normalize_path("/" + rel)

    def root_exists(self) -> bool:
        if self.root == "/":
            return True
        entry = self.server.find(self.root)
        if entry is not None and not entry.is_folder:
            raise errors.AlreadyExists(f"{self.root} is a file on the server, not a folder.")
        return entry is not None

    def create_root(self) -> None:
        self.server.make_folder(self.root)

    def generation(self) -> str | None:
        """The server's generation (it changes when the server is restored from a backup)."""
        try:
            return self.server.server_info().generation
        except errors.NotFound:
            return None

    def latest_cursor(self) -> str | None:
        if not self.has_journal:
            return None
        try:
            return self.server.latest_cursor()
        except errors.NotFound:
            self.has_journal = False  # an older server: listings only
            return None

    # -- the tree, listed or caught up from the journal --------------------------------------
    def needs_listing(self) -> bool:
        """Whether the next ``tree`` must come from a full listing."""
        return (self.cache is None or self.cache.cursor is None
                or self.monotonic() - self.listed_at > RELIST_EVERY)

    def forget_tree(self) -> None:
        """List the folder again next round."""
        self.cache = None

    def catch_up(self) -> int:
        """Apply the journal entries after the cached tree's cursor; how many there were.

        ``CursorReset`` (410) or ``NeedsListing`` leave the tree dropped: list it again."""
        cache = self.cache
        assert cache is not None and cache.cursor is not None
        self.cache = None  # until every entry is applied, the tree is at no cursor
        applied = 0
        for change in self.server.changes_since(cache.cursor):
            cache.apply(change, self._journal_rel)
            cache.cursor = change.cursor
            applied += 1
        self.cache = cache
        return applied

    def _journal_rel(self, path: str) -> str | None:
        if self.root != "/" and is_within(self.root, path):
            if path_key(path) != path_key(self.root):
                raise NeedsListing(f"{path}, which holds the remote folder, changed")
            return "/"
        try:
            rel = relative_remote(path, self.root)
        except UnsafeName:
            return None  # outside the remote folder
        try:
            return self.to_rel(path) if rel else "/"
        except (UnsafeName, errors.InvalidPath) as exc:
            raise NeedsListing(f"{path!r}: {exc}") from exc

    def relist(self) -> RemoteTree:
        """List the whole remote folder into the cache."""
        cache, skipped, consistent = self.listing()
        # A listing the journal moved under cannot be caught up from its cursor: it is used
        # for this round, and the next round lists again.
        self.cache = cache if consistent else CachedTree(cache.items, cache.modified)
        self.listed_at = self.monotonic()
        self.listings += 1
        self.skipped = skipped
        return RemoteTree(cursor=cache.cursor, skipped=skipped)

    def tree(self, rules: IgnoreRules, skipped: list[str] | None = None) -> RemoteTree:
        """The cached tree with ``rules`` applied, as the planner wants it."""
        cache = self.cache
        assert cache is not None
        out = RemoteTree(cursor=cache.cursor,
                         skipped=list(self.skipped if skipped is None else skipped))
        for key, item in cache.items.items():
            if not rules.ignored(item.path, item.kind == "folder"):
                out.items[key] = item
                if key in cache.modified:
                    out.modified[key] = cache.modified[key]
        return out

    def listing(self) -> tuple[CachedTree, list[str], bool]:
        """Everything under the remote folder, the names skipped, and whether the journal
        stood still during the listing. When it moved, the listing is taken again (up to
        ``SNAPSHOT_TRIES`` times), so the tree is one consistent moment at its cursor."""
        for attempt in range(SNAPSHOT_TRIES):
            before = self.latest_cursor()
            tree, skipped = self._list()
            after = self.latest_cursor()
            tree.cursor = before
            if before == after or attempt == SNAPSHOT_TRIES - 1:
                return tree, skipped, before == after
            time.sleep(0.05)
        raise AssertionError("unreachable")

    def _list(self) -> tuple[CachedTree, list[str]]:
        tree = CachedTree()
        skipped: list[str] = []
        try:
            entries = list(self.server.list_folder(self.root, recursive=True))
        except errors.NotFound as exc:
            raise SyncRootMissing(f"The server folder {self.root} is gone; nothing was deleted "
                                  "here. Restore it from the trash, or sync into a new local "
                                  "folder.") from exc
        for entry in entries:
            try:
                rel = self.to_rel(entry.path)
            except (UnsafeName, errors.InvalidPath) as exc:
                skipped.append(f"{entry.path!r} from the server: {exc.message}")
                continue
            if rel == "/":
                continue
            key = path_key(rel)
            if entry.is_folder:
                tree.items[key] = Item(rel, "folder")
            else:
                tree.items[key] = Item(rel, "file", entry.content_hash, entry.version,
                                       entry.size)
                if entry.modified is not None:
                    tree.modified[key] = entry.modified
        return tree, skipped
