"""Bounds on what one account's tree may hold and what one change may touch.

Without them a few kilobytes of request become thousands of rows: a path nested 2,048 deep
makes 2,047 folders and journal rows, a move or delete updates every entry below a folder,
and a restore copies the chunk list of a version whatever its length (dedup lets one tiny
chunk be listed 100,000 times at no cost in bytes). So:

- ``max_depth``: names in a path (a commit, folder, move or undelete past it is refused);
- ``max_entries_per_change``: entries one request may create, move, delete or bring back;
- ``max_entries`` and ``max_chunk_refs``: the metadata quota of an account, entries (live
  and in the trash) and chunk references of all versions, as S3 and Dropbox bound objects
  per bucket or account (the journal is bounded by ``journal_retention``);
- ``max_chunks_per_file``: chunk references of one version, and ``min_average_chunk``:
  bytes per reference on average (the last chunk may be smaller). The chunker never cuts
  below 256 KiB but at the end, so this refuses only lists made to amplify: one 1-byte chunk
  listed 10,000 times made a 10 KB download cost 10,000 chunk lookups.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection

from minidropbox.core.errors import InvalidInput, InvalidPath, QuotaExceeded, TooManyEntries
from minidropbox.core.paths import depth
from minidropbox.metadata import usage


@dataclass(frozen=True)
class TreeLimits:
    max_depth: int = 64
    max_entries_per_change: int = 10_000
    max_entries: int = 1_000_000
    max_chunk_refs: int = 10_000_000
    max_chunks_per_file: int = 100_000
    min_average_chunk: int = 64 * 1024

    def check_depth(self, path: str, extra: int = 0) -> None:
        """``InvalidPath`` if ``path`` (with ``extra`` levels below it) nests too deep."""
        if depth(path) + extra > self.max_depth:
            raise InvalidPath(f"Folders nest at most {self.max_depth} levels deep.")

    def check_change(self, count: int) -> None:
        if count > self.max_entries_per_change:
            raise TooManyEntries(
                f"This change touches {count} files and folders; at most "
                f"{self.max_entries_per_change} can change at once. Work on part of it.")

    def check_chunk_refs(self, conn: Connection, namespace_id: int, count: int,
                         size: int, used: usage.Usage | None = None) -> usage.Usage:
        """Refuse a version of ``count`` chunks for ``size`` bytes past the limits; returns
        the namespace's usage (``used``, if the caller read it in this transaction with
        nothing written since; else read here): a commit that changes nothing before its
        entry is made checks that entry against it, not a second read."""
        if count > self.max_chunks_per_file:
            raise InvalidInput(f"A file has at most {self.max_chunks_per_file} chunks.")
        if count > 1 + size // self.min_average_chunk:
            raise InvalidInput(f"A file's chunks average at least {self.min_average_chunk} "
                               f"bytes (all but the last); {count} chunks for {size} bytes.")
        used = used or usage.of(conn, namespace_id)
        if used.chunk_refs + count > self.max_chunk_refs:
            raise QuotaExceeded(f"This account's versions reference {self.max_chunk_refs} "
                                "chunks, the most it may; delete old files to make room.")
        return used

    def check_new_entry(self, conn: Connection, namespace_id: int,
                        used: usage.Usage | None = None) -> None:
        """``used``: the namespace's usage as the caller read it in this transaction, with
        nothing written since (else it is read here)."""
        if (used or usage.of(conn, namespace_id)).entries >= self.max_entries:
            raise QuotaExceeded(f"This account has {self.max_entries} files and folders, the "
                                "most it may; empty the trash or delete some to make room.")


@dataclass
class ChangeBudget:
    """Entries one request may still create (``max_entries_per_change`` in all)."""

    limits: TreeLimits
    used: int = field(default=0)

    def spend(self, count: int = 1) -> None:
        self.used += count
        self.limits.check_change(self.used)
