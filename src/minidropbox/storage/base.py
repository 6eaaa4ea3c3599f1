"""The chunk-store port. Every adapter (memory, disk, node over HTTP sync and async) passes one
contract suite (``tests/contract/``).

A chunk store maps a SHA-256 hex name to the bytes with that hash. Contract:

- ``put(name, data)`` stores ``data`` under ``name`` durably before returning: the bytes are
  hashed while written and a mismatch raises ``HashMismatch`` and keeps nothing. A partial
  chunk is never visible under its final name (temp file, fsync, rename, fsync the directory).
  Putting a chunk that is already present is a cheap no-op that succeeds.
- ``get(name)`` returns the bytes or raises ``ChunkNotFound``; ``iter_range`` (``stream`` in the
  async port) yields a slice. Readers verify: ``get`` raises ``CorruptChunk`` when the stored
  bytes do not hash to the name.
- ``delete(name)`` removes the chunk (missing is not an error).
- ``list(after, limit)`` yields names in ascending order strictly after ``after``.
- ``stat()`` reports used and free bytes and the chunk count.

Faults of the store itself are one family, so callers on the data path catch exactly that and
let a programming error surface as one:

    StoreError                  the store could not do it (callers fall over to another copy)
    ├── ChunkNotFound     404   this store has no such chunk
    ├── CorruptChunk      500   the stored bytes do not hash to the name
    ├── StoreFull         507   out of space
    └── StoreUnavailable  503   down, hung, unreachable, refused the secret, answered garbage
        ├── NoIntactCopy          every holder of a chunk failed (a cluster read)
        └── DiskFault             the disk is read-only (DiskReadOnly) or fails (DiskIOError)

What the caller did wrong is not a ``StoreError``: ``InvalidInput`` (not a chunk name),
``HashMismatch`` (the bytes given do not hash to the name), ``RangeNotSatisfiable``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from minidropbox.core.errors import HashMismatch, MiniDropboxError


class StoreError(MiniDropboxError):
    """The chunk store could not do what was asked."""

    status = 503
    code = "storage_unavailable"
    exit_code = 7


class ChunkNotFound(StoreError):
    """The chunk is not in this store."""

    status = 404
    code = "not_found"


class CorruptChunk(StoreError):
    """The stored bytes do not match the chunk's name."""

    status = 500
    code = "corrupt_chunk"


class StoreFull(StoreError):
    """The store is out of space."""

    status = 507
    code = "store_full"


class StoreUnavailable(StoreError):
    """The store did not answer (down, hung, or unreachable)."""

    status = 503
    code = "storage_unavailable"


class DiskFault(StoreUnavailable):
    """The store's disk is read-only or returns I/O errors: it takes no writes until fixed."""

    code = "disk_fault"
    fault = "io_error"  # what ``StoreStats.fault`` and the admin views call it


class DiskReadOnly(DiskFault):
    """The store's disk is read-only."""

    code = "disk_read_only"
    fault = "read_only"


class DiskIOError(DiskFault):
    """The store's disk returns I/O errors."""

    code = "disk_io_error"
    fault = "io_error"


class DeleteTooLate(StoreError):
    """A delete reached the store after the time its sender gave it: it was not done."""

    status = 412
    code = "delete_too_late"


# A delete's deadline, wall-clock epoch seconds: a node that reads the request later (it was
# paused, or slow) refuses it, so no delete outlives the deletion fence its sender holds.
DELETE_BEFORE_HEADER = "minidropbox-delete-before"


class NoIntactCopy(StoreUnavailable):
    """No holder served an intact copy of the chunk."""

    def __init__(self, chunk_hash: str, failures: list[tuple[str, StoreError]]) -> None:
        super().__init__(f"No intact replica of chunk {chunk_hash[:12]} is reachable.")
        self.chunk_hash = chunk_hash
        self.failures = failures  # (store name, what it raised), in the order tried


def copy_fault(exc: StoreError) -> str | None:
    """Why a copy is bad ("missing" or "corrupt"), or None when the store, not the copy, failed."""
    if isinstance(exc, ChunkNotFound):
        return "missing"
    if isinstance(exc, CorruptChunk):
        return "corrupt"
    return None


@dataclass(frozen=True)
class StoreStats:
    used_bytes: int
    free_bytes: int
    chunk_count: int
    fault: str | None = None  # "read_only" / "io_error": the disk takes no writes (DiskFault)
    # A storage node's identity (the id grants name) and the URL clients should use for it
    # (``MINIDROPBOX_NODE_PUBLIC_URL``; None: the URL the API knows it by). Other stores: None.
    node_id: str | None = None
    public_url: str | None = None


class ChunkStore(Protocol):
    """Content-addressed chunk storage (see the module docstring for the contract)."""

    def put(self, name: str, data: bytes) -> None: ...

    def get(self, name: str) -> bytes: ...

    def has(self, name: str) -> bool: ...

    def delete(self, name: str) -> None: ...

    def list(self, after: str = "", limit: int = 1000) -> list[str]: ...

    def stat(self) -> StoreStats: ...

    def iter_range(self, name: str, start: int = 0, end: int | None = None,
                   block: int = 1 << 20) -> Iterator[bytes]: ...


class AsyncChunkStore(Protocol):
    """The same contract on an event loop: what the API holds for each storage node."""

    async def put(self, name: str, data: bytes) -> None: ...

    async def get(self, name: str) -> bytes | bytearray: ...

    async def has(self, name: str) -> bool: ...

    async def delete(self, name: str, before: float | None = None) -> None:
        """Delete a copy. With ``before`` (epoch seconds) a remote store refuses the delete if
        it reads it later than that (``DeleteTooLate``), and a failed call returns no sooner
        than that, so a delete its caller gave up on cannot happen after the call."""

    async def list(self, after: str = "", limit: int = 1000) -> list[str]: ...

    async def stat(self) -> StoreStats: ...

    def stream(self, name: str, start: int = 0,
               end: int | None = None) -> AsyncIterator[bytes]: ...


@runtime_checkable
class BatchChunkStore(Protocol):
    """An async store that also takes many chunks in one call (a storage node's batch write,
    ``POST /chunks/batch``). Per chunk, in order: True (created), False (it was there), or the
    ``HashMismatch`` of one whose bytes do not hash to its name (the others are stored all the
    same). A fault of the store fails the whole call, raised as ``put`` raises it."""

    async def put_many(self, items: Sequence[tuple[str, bytes]]
                       ) -> list[bool | HashMismatch]: ...


@runtime_checkable
class BatchReadStore(Protocol):
    """An async store that also reads many chunks in one call (a storage node's batch read,
    ``POST /chunks/read``): the bytes of those it has, by name, unverified (the caller
    checks each); a chunk it lacks is left out. A fault fails the whole call."""

    async def get_many(self, names: Sequence[str]) -> dict[str, bytes]: ...


def read_first_intact(name: str, holders: Sequence[tuple[str, ChunkStore]]) -> bytes:
    """The chunk's bytes from the first of ``holders`` (label, store) that serves them intact
    (every store verifies on ``get``): the blocking counterpart of ``StorageCluster.read`` for
    tools that run outside the API (backup). ``NoIntactCopy`` names each store's fault."""
    failures: list[tuple[str, StoreError]] = []
    for label, store in holders:
        try:
            return store.get(name)
        except StoreError as exc:
            failures.append((label, exc))
    raise NoIntactCopy(name, failures)
