"""Direct transfers: the API decides, the nodes move the bytes (docs/DESIGN.md, "Direct
transfers"; the tokens are in ``core/grants.py``).

- ``upload_grants``: for each chunk a user must send, the nodes it should go to (rendezvous
  order over writable nodes that report an id, R of them plus spares) and a PUT grant bound to
  the account, the chunk, its size, those nodes and the deletion-fence epoch.
- ``record_receipts``: the nodes' receipts, checked (signature, account, age, a known node,
  the fence epoch unchanged), recorded as replicas and as the account's proof of possession —
  only once R distinct nodes hold the chunk. This is the same write ordering as the proxy
  path: bytes durable on R nodes → replica and ownership rows → a commit may reference them.
- ``read_plan``: a file's chunks (or the ones a byte range needs), each with its holders in
  read order and a GET grant.

Chunks the direct path cannot serve (no node with an id, a bucket, a deletion under way, over
quota) or should not (under ``DIRECT_MIN_BYTES``: R requests to nodes would cost more than the
bytes, which travel in batches through the API) get no grant: the client sends or fetches
those through the API's proxy routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from minidropbox.core.chunking import check_chunk_hash
from minidropbox.core.errors import (
    InvalidInput,
    InvalidReceipt,
    MiniDropboxError,
    QuotaExceeded,
    TooManyRequests,
)
from minidropbox.core.grants import GET, PUT, KeyRing, Receipt, make_grant, open_receipt
from minidropbox.core.ratelimit import SlidingWindow
from minidropbox.metadata import chunks as repo
from minidropbox.metadata import fence, journal
from minidropbox.metadata import replicas as replica_repo
from minidropbox.metadata.db import Database
from minidropbox.service.accounts import Principal
from minidropbox.service.chunks import ChunkService
from minidropbox.service.cluster import StorageCluster
from minidropbox.service.files import FileService
from minidropbox.service.quota import StoreRoom, check_store_room
from minidropbox.storage.base import StoreError

SPARE_TARGETS = 2  # nodes past R a grant names, so a failed node's place goes to the next
MAX_RECEIPTS = 1000  # per request
MAX_PLAN_CHUNKS = 1000  # per read-plan page
REPORTS_PER_MINUTE = 30  # corrupt copies an account may report (each costs the API a read)


@dataclass(frozen=True)
class UploadGrant:
    hash: str
    size: int
    nodes: list[str]  # URLs, in the order to write
    copies: int  # R: how many of them must hold it
    grant: str

    def as_json(self) -> dict[str, Any]:
        return {"hash": self.hash, "size": self.size, "nodes": self.nodes,
                "copies": self.copies, "grant": self.grant}


@dataclass
class ReceiptOutcome:
    recorded: list[str] = field(default_factory=list)
    refused: list[tuple[str, MiniDropboxError]] = field(default_factory=list)


class DirectTransfers:
    def __init__(self, db: Database, cluster: StorageCluster, chunks: ChunkService,
                 keys: tuple[KeyRing, KeyRing], *, grant_ttl: float, receipt_ttl: float,
                 max_chunk_bytes: int, min_bytes: int = 0, enabled: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.cluster = cluster
        self.chunks = chunks
        self.grant_keys, self.receipt_keys = keys
        self.grant_ttl = grant_ttl
        self.receipt_ttl = receipt_ttl
        self.max_chunk_bytes = max_chunk_bytes
        self.min_bytes = min_bytes
        self.enabled = enabled
        self.clock = clock
        self._reports = SlidingWindow(REPORTS_PER_MINUTE)

    @property
    def replicas(self) -> int:
        return self.chunks.replicas

    def _expiry(self) -> int:
        return int(self.clock() + self.grant_ttl)

    # -- uploads ----------------------------------------------------------------------------
    def upload_grants(self, principal: Principal,
                      wanted: list[tuple[str, int]]) -> list[UploadGrant]:
        """Grants to PUT each of ``wanted`` (hash, size) — the chunks ``missing`` named — at
        the nodes; a chunk left out goes through the API instead."""
        if not self.enabled or not wanted:
            return []
        sizes = dict(wanted)
        if any(not 0 <= s <= self.max_chunk_bytes for s in sizes.values()):
            raise InvalidInput(f"A chunk is at most {self.max_chunk_bytes} bytes.")
        with self.db.read() as conn:
            token = fence.writer_token(conn)
            if token is None:
                return []  # a deletion is under way: the proxy path waits for it
            try:
                if principal.quota_bytes is not None:
                    check_store_room(conn, principal, sum(sizes.values()))
            except QuotaExceeded:
                return []  # each chunk is then refused (or not) on its own by the proxy
            bad = replica_repo.bad_holders_of(conn, list(sizes))
        expires = self._expiry()
        out = []
        for chunk_hash, size in sizes.items():
            if size < self.min_bytes:
                continue  # cheaper in a batch through the API than R requests to nodes
            # A node keeps the file it has on PUT: never send a chunk to a known-bad copy.
            targets = [n for n in self.cluster.targets(chunk_hash)
                       if n in self.cluster.node_ids and n not in bad[chunk_hash]]
            if len(targets) < self.replicas:
                continue
            targets = targets[:self.replicas + SPARE_TARGETS]
            grant = make_grant(self.grant_keys, account=principal.user_id, chunk=chunk_hash,
                               max_size=size, nodes=[self.cluster.node_ids[n] for n in targets],
                               method=PUT, expires=expires, fence=token,
                               urls=[self.cluster.urls[n] for n in targets])
            out.append(UploadGrant(chunk_hash, size,
                                   [self.cluster.public_urls[n] for n in targets],
                                   self.replicas, grant))
        return out

    def record_receipts(self, principal: Principal, tokens: list[str]) -> ReceiptOutcome:
        """Record the chunks R nodes signed receipts for, as this account's; the others are
        refused one by one (the client sends those again, through the API)."""
        if len(tokens) > MAX_RECEIPTS:
            raise InvalidInput(f"At most {MAX_RECEIPTS} receipts per request.")
        outcome = ReceiptOutcome()
        by_chunk: dict[str, list[Receipt]] = {}
        now = self.clock()
        for token in tokens:
            # Forged, altered or another account's: the whole request is refused (400).
            receipt = open_receipt(self.receipt_keys, token, account=principal.user_id,
                                   now=now, max_age=float("inf"))
            by_chunk.setdefault(receipt.chunk, []).append(receipt)
        ready: list[tuple[str, int, list[str], list[Receipt]]] = []
        for chunk_hash, receipts in by_chunk.items():
            try:
                ready.append((chunk_hash, *self._holders(chunk_hash, receipts, now), receipts))
            except InvalidReceipt as exc:
                outcome.refused.append((chunk_hash, exc))
        if ready:
            # One transaction and a few statements for the whole request: a big file's
            # thousand chunks cost one commit, not a thousand, nor ten thousand statements.
            with self.db.write() as conn:
                if principal.quota_bytes is not None:
                    journal.lock_namespace(conn, principal.namespace_id)
                epoch = fence.epoch(conn)  # in the recording transaction, as the proxy path
                hashes = [item[0] for item in ready]
                known = repo.sizes(conn, hashes)
                room = StoreRoom(conn, principal, hashes)
                rows: list[repo.NewChunk] = []
                for chunk_hash, size, holders, receipts in ready:
                    try:
                        self._admit(chunk_hash, size, receipts, epoch, known, room)
                    except (InvalidReceipt, QuotaExceeded) as exc:
                        outcome.refused.append((chunk_hash, exc))
                    else:
                        rows.append(repo.NewChunk(chunk_hash, size, holders))
                        outcome.recorded.append(chunk_hash)
                repo.record_chunks(conn, rows, principal.user_id, self.clock())
        return outcome

    def _holders(self, chunk_hash: str, receipts: list[Receipt],
                 now: float) -> tuple[int, list[str]]:
        """The chunk's size and the nodes the receipts name; ``InvalidReceipt`` when they
        are genuine but unusable (stale, from a node this process never saw, fewer than R
        nodes, sizes that disagree): that chunk is sent again, the others are recorded."""
        if any(now - r.issued > self.receipt_ttl for r in receipts):
            raise InvalidReceipt("This receipt is too old; send the chunk again.")
        if any(r.node not in self.cluster.node_names for r in receipts):
            raise InvalidReceipt("This receipt names no known storage node.")
        sizes = {r.size for r in receipts}
        if len(sizes) != 1:
            raise InvalidReceipt(f"The receipts for {chunk_hash} disagree on its size.")
        holders = list(dict.fromkeys(self.cluster.node_names[r.node] for r in receipts))
        if len(holders) < self.replicas:
            raise InvalidReceipt(
                f"{chunk_hash} is on {len(holders)} nodes; {self.replicas} must hold it.")
        return sizes.pop(), holders

    @staticmethod
    def _admit(chunk_hash: str, size: int, receipts: list[Receipt], epoch: int,
               known: dict[str, int], room: StoreRoom) -> None:
        """Whether R nodes' receipts may be recorded now: ``InvalidReceipt`` or
        ``QuotaExceeded`` when not (nothing is taken then)."""
        # A deletion that began after the grant may have removed a copy the node kept (a
        # node keeps an existing file on PUT): then the receipts prove nothing.
        if any(r.fence != epoch or epoch % 2 for r in receipts):
            raise InvalidReceipt(
                f"Storage deleted unused data while {chunk_hash} was sent; send it again.")
        if known.get(chunk_hash, size) != size:
            raise InvalidReceipt(f"The receipts for {chunk_hash} name a wrong size.")
        room.take(chunk_hash, size)  # before any row is written

    # -- corrupt copies ---------------------------------------------------------------------
    async def check_reported_copy(self, principal: Principal, chunk_hash: str,
                                  node_url: str) -> None:
        """A client read a copy of ``chunk_hash`` at ``node_url`` that did not hash to its
        name. The client's word proves nothing (and must not let anyone mark copies bad):
        the API reads that copy itself, through ``StorageCluster.read``, which marks it bad
        and queues its repair only if it is missing or corrupt. The answer is the same
        whatever was found, so reports reveal nothing; each costs the API one chunk read,
        hence ``REPORTS_PER_MINUTE`` per account (and API process)."""
        check_chunk_hash(chunk_hash)
        key, now = str(principal.user_id), self.clock()
        wait = self._reports.blocked_for(key, now)
        if wait:
            raise TooManyRequests("Too many corrupt-copy reports; try again later.",
                                  retry_after=wait)
        self._reports.hit(key, now)
        url = node_url.rstrip("/")
        name = next((n for n, u in self.cluster.public_urls.items() if u == url), None)
        if name is None:
            return
        if name in await asyncio.to_thread(self._holders_of, chunk_hash):
            with contextlib.suppress(StoreError):  # bad or unreachable: noted by the read
                await self.cluster.read(chunk_hash, [name])

    def _holders_of(self, chunk_hash: str) -> list[str]:
        with self.db.read() as conn:
            return replica_repo.replicas_for(conn, [chunk_hash])[chunk_hash]

    # -- downloads --------------------------------------------------------------------------
    def read_plan(self, principal: Principal, files: FileService, path: str,
                  version: int | None, offset: int, limit: int) -> dict[str, Any]:
        """The entry (as of ``version``) and, from the chunk holding byte ``offset``, at most
        ``limit`` chunks with their offsets, holders (URLs, read order) and GET grants;
        ``next_offset`` is where the next page starts (None: the end)."""
        if not 1 <= limit <= MAX_PLAN_CHUNKS:
            raise InvalidInput(f"limit must be between 1 and {MAX_PLAN_CHUNKS}.")
        entry, chunk_list = files.content(principal, path, version)
        if offset < 0 or (offset and offset >= entry["size"]):
            raise InvalidInput("offset is outside the file.")
        page: list[tuple[str, int, int]] = []
        position = 0
        following: int | None = None
        for chunk_hash, size in chunk_list:
            if position + size > offset or (size == 0 and position == offset):
                if len(page) == limit:
                    following = position
                    break
                page.append((chunk_hash, size, position))
            position += size
        with self.db.read() as conn:
            holders = replica_repo.replicas_for(conn, [h for h, _, _ in page])
        expires = self._expiry()
        chunks = []
        for chunk_hash, size, start in page:
            order = [n for n in self.cluster.read_order(chunk_hash, holders[chunk_hash])
                     if n in self.cluster.node_ids] if self.enabled else []
            item: dict[str, Any] = {"hash": chunk_hash, "size": size, "offset": start,
                                    "nodes": [self.cluster.public_urls[n] for n in order],
                                    "grant": None}
            if order:
                item["grant"] = make_grant(
                    self.grant_keys, account=principal.user_id, chunk=chunk_hash,
                    max_size=size, nodes=[self.cluster.node_ids[n] for n in order],
                    method=GET, expires=expires)
            chunks.append(item)
        return {"entry": entry, "chunks": chunks, "next_offset": following}

