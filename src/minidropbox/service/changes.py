"""The change journal as clients see it: cursors, pages of changes, waiting, retention.

``FileService`` appends to the journal inside each change's transaction and calls
``committed`` once it has committed; that publishes the new head to the notification hub and
marks the namespace for trimming. Trimming runs in the background (``trim_forever``) and only
ever removes a prefix, so the journal stays gap-free and a cursor is either fully resumable or
refused with 410 ``reset``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from minidropbox.core.cursors import check_position, decode_cursor, encode_cursor
from minidropbox.metadata import accounts as account_repo
from minidropbox.metadata import journal
from minidropbox.metadata.db import Database
from minidropbox.metadata.server_info import ServerIdentity
from minidropbox.service.accounts import Principal
from minidropbox.service.notify import ChangeHub

log = logging.getLogger("minidropbox.changes")
TRIM_BATCH = 200  # namespaces per trimming transaction, so writers never wait long


class ChangeService:
    def __init__(self, db: Database, identity: ServerIdentity, hub: ChangeHub, *,
                 retention: int, max_page_size: int, trim_interval: float = 60.0) -> None:
        self.db = db
        self.identity = identity
        self.hub = hub
        self.retention = max(1, retention)
        self.max_page_size = max_page_size
        self.trim_interval = trim_interval
        self._dirty: set[int] = set()
        self._dirty_lock = threading.Lock()

    @property
    def generation(self) -> str:
        return self.identity.generation

    # -- cursors ----------------------------------------------------------------------------
    def cursor_for(self, namespace_id: int, seq: int) -> str:
        return encode_cursor(self.identity.cursor_key, self.identity.generation, namespace_id,
                             seq)

    def _decode(self, namespace_id: int, cursor: str) -> int:
        return decode_cursor(self.identity.cursor_key, self.identity.generation, namespace_id,
                             cursor)

    # -- reading ----------------------------------------------------------------------------
    def head(self, namespace_id: int) -> int:
        with self.db.read() as conn:
            return journal.head(conn, namespace_id)

    def latest(self, principal: Principal) -> str:
        """The cursor of the newest change: a client that starts here sees only later ones."""
        return self.cursor_for(principal.namespace_id, self.head(principal.namespace_id))

    def position(self, principal: Principal, cursor: str) -> tuple[int, int]:
        """(the position ``cursor`` names, the current head); ``CursorReset`` if unusable."""
        seq = self._decode(principal.namespace_id, cursor)
        with self.db.read() as conn:
            head = journal.head(conn, principal.namespace_id)
            oldest = journal.oldest(conn, principal.namespace_id)
        check_position(seq, head, oldest, self.retention)
        return seq, head

    def page(self, principal: Principal, cursor: str | None,
             limit: int | None) -> dict[str, Any]:
        """Changes after ``cursor``, oldest first, at most ``limit`` (capped) of them."""
        ns = principal.namespace_id
        if cursor is None:
            return {"entries": [], "cursor": self.latest(principal), "has_more": False}
        seq = self._decode(ns, cursor)
        limit = min(limit or self.max_page_size, self.max_page_size)
        # One snapshot: the retention check and the rows agree even while trimming runs.
        with self.db.read() as conn:
            head = journal.head(conn, ns)
            check_position(seq, head, journal.oldest(conn, ns), self.retention)
            rows = journal.since(conn, ns, seq, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        entries = [self._public(ns, row) for row in rows]
        last = entries[-1]["cursor"] if entries else cursor
        return {"entries": entries, "cursor": last, "has_more": more}

    def _public(self, namespace_id: int, row: dict[str, Any]) -> dict[str, Any]:
        return {"cursor": self.cursor_for(namespace_id, row["seq"]), "op": row["op"],
                "path": row["path"], "from_path": row["from_path"], "type": row["kind"],
                "version": row["version"], "size": row["size"],
                "content_hash": row["content_hash"], "time": row["created_at"]}

    def session_alive(self, principal: Principal) -> bool:
        """Whether the caller's session still stands (long-lived sockets re-check it)."""
        with self.db.read() as conn:
            session = account_repo.session_by_id(conn, principal.session_id)
        return session is not None and session["revoked_at"] is None

    # -- after a change ---------------------------------------------------------------------
    def committed(self, namespace_id: int, seq: int) -> None:
        """A change up to ``seq`` committed: wake its listeners, and trim that journal later.

        Called by ``FileService`` from any thread, after the transaction committed.
        """
        with self._dirty_lock:
            self._dirty.add(namespace_id)
        self.hub.publish(namespace_id, seq)

    # -- retention --------------------------------------------------------------------------
    def trim(self, namespace_ids: list[int]) -> int:
        """Cut the given journals to the retained length; returns rows deleted."""
        deleted = 0
        for start in range(0, len(namespace_ids), TRIM_BATCH):
            with self.db.write() as conn:
                for ns in namespace_ids[start:start + TRIM_BATCH]:
                    deleted += journal.trim(conn, ns, self.retention)
        return deleted

    def trim_all(self) -> int:
        with self.db.read() as conn:
            over = journal.namespaces_longer_than(conn, self.retention)
        return self.trim(over)

    def trim_dirty(self) -> int:
        with self._dirty_lock:
            dirty, self._dirty = sorted(self._dirty), set()
        return self.trim(dirty)

    async def trim_forever(self) -> None:
        """Background job: one full pass at start, then the journals that changed."""
        deleted = await asyncio.to_thread(self.trim_all)
        if deleted:
            log.info("trimmed %d journal rows beyond the last %d per namespace", deleted,
                     self.retention)
        while True:
            await asyncio.sleep(self.trim_interval)
            await asyncio.to_thread(self.trim_dirty)
