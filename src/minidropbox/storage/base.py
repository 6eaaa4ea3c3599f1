"""The chunk-store port. Every adapter (memory, disk, node over HTTP) passes one contract suite
(``tests/contract/``).

A chunk store maps a SHA-256 hex name to the bytes with that hash. Contract:

- ``put(name, data)`` stores ``data`` under ``name`` durably before returning: the bytes are
  hashed while written and a mismatch raises ``HashMismatch`` and keeps nothing. A partial
  chunk is never visible under its final name (temp file, fsync, rename, fsync the directory).
  Putting a chunk that is already present is a cheap no-op that succeeds.
- ``get(name)`` returns the bytes or raises ``ChunkNotFound``; ``open_range`` streams a slice.
  Readers verify: ``get`` raises ``CorruptChunk`` when the stored bytes do not hash to the name.
- ``delete(name)`` removes the chunk (missing is not an error).
- ``list(after, limit)`` yields names in ascending order strictly after ``after``.
- ``stat()`` reports used and free bytes and the chunk count.
- ``StoreFull`` when the disk is full (the node answers 507).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from minidropbox.core.errors import MiniDropboxError


class ChunkNotFound(MiniDropboxError):
    """The chunk is not in this store."""

    status = 404
    code = "not_found"


class CorruptChunk(MiniDropboxError):
    """The stored bytes do not match the chunk's name."""

    status = 500
    code = "corrupt_chunk"


class StoreFull(MiniDropboxError):
    """The store is out of space."""

    status = 507
    code = "store_full"


class StoreUnavailable(MiniDropboxError):
    """The store did not answer (down, hung, or unreachable)."""

    status = 503
    code = "storage_unavailable"


@dataclass(frozen=True)
class StoreStats:
    used_bytes: int
    free_bytes: int
    chunk_count: int


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
