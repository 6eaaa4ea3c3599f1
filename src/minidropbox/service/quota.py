"""The quota: what an account's versions reference, and the rule every upload path and every
commit goes through.

Committed bytes count, nothing else: a chunk counts for a user once a version of theirs
references it (``metadata/chunks.py: usage``), whether current, old or in the trash, each
distinct chunk once. An upload that failed or was abandoned has sent chunks no version
references; they cost nothing against the quota, are free to send again, and GC deletes them
after its grace period. So that nobody can park unbounded bytes on the nodes meanwhile, what
was sent but not committed has an allowance of its own, as large as the quota.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from minidropbox.core.errors import QuotaExceeded
from minidropbox.core.units import human_bytes
from minidropbox.metadata import chunks as repo
from minidropbox.metadata import usage as usage_repo
from minidropbox.metadata.db import Database
from minidropbox.service.accounts import Principal


def check_store_room(conn: Connection, principal: Principal, size: int,
                 chunk_hash: str | None = None) -> None:
    """``QuotaExceeded`` unless ``size`` more bytes may be sent (a chunk the user has is free).

    The quota counts committed bytes only (``repo.usage``): what an upload that never
    committed (it failed, or was abandoned) sent costs nothing. What was sent but not
    committed has an allowance of its own, as large as the quota, so nobody can park
    unbounded bytes on the nodes between GC passes. A commit checks the quota again
    (``CommitQuota``). Callers storing a chunk hold the namespace lock, so two uploads
    cannot both take the last free bytes.
    """
    if principal.quota_bytes is None or (
            chunk_hash is not None and repo.user_owns(conn, principal.user_id, chunk_hash)):
        return
    _judge(principal.quota_bytes, repo.usage(conn, principal.user_id), size)


def _judge(quota: int, used: repo.ChunkUsage, size: int) -> None:
    if used.committed + size > quota:
        raise QuotaExceeded(
            f"This upload needs {human_bytes(size)} but only "
            f"{human_bytes(max(0, quota - used.committed))} of your quota are left.")
    if used.staged + size > quota:
        raise QuotaExceeded(
            f"Uploads not committed yet already hold {human_bytes(used.staged)} (at most "
            f"{human_bytes(quota)}); finish them, or wait until unused data is cleaned up.")


class StoreRoom:
    """``check_store_room`` for many chunks recorded in one transaction (under the namespace
    lock): the account's usage and which of the chunks it owns are read once, and each chunk
    taken counts against what is left for the next."""

    def __init__(self, conn: Connection, principal: Principal, hashes: list[str]) -> None:
        self.quota = principal.quota_bytes
        self.owned: set[str] = set()
        self.used = repo.ChunkUsage(0, 0)
        if self.quota is not None:
            self.owned = repo.owned_among(conn, principal.user_id, hashes)
            self.used = repo.usage(conn, principal.user_id)

    def take(self, chunk_hash: str, size: int) -> None:
        """``QuotaExceeded`` (nothing taken) unless ``chunk_hash`` may be stored."""
        if self.quota is None or chunk_hash in self.owned:
            return
        _judge(self.quota, self.used, size)
        self.used = repo.ChunkUsage(self.used.committed, self.used.staged + size)
        self.owned.add(chunk_hash)


class CommitQuota:
    """The quota check of the commits in one write transaction: a version may add only the
    bytes that fit. Used bytes are read once per transaction (a batch of a thousand small
    files does not sum the account's chunks a thousand times)."""

    def __init__(self, conn: Connection, principal: Principal) -> None:
        self.conn = conn
        self.principal = principal
        self.used: int | None = None
        self.counted: set[str] = set()
        self.known: set[str] = set()  # hashes already asked about: committed_among is done
        self.owned: dict[str, int] | None = None

    def prime(self, chunk_hashes: list[str], owned: dict[str, int]) -> None:
        """Ask once for a whole batch which chunks already count, and take its owned sizes
        (read in the same transaction), so that each commit's ``charge`` asks nothing."""
        if self.principal.quota_bytes is None:
            return
        self.counted |= repo.committed_among(self.conn, self.principal.user_id,
                                             sorted(set(chunk_hashes)))
        self.known |= set(chunk_hashes)
        self.owned = owned

    def charge(self, chunk_hashes: list[str]) -> None:
        """``QuotaExceeded`` (nothing charged) unless a version of ``chunk_hashes`` fits."""
        quota = self.principal.quota_bytes
        if quota is None:
            return
        user = self.principal.user_id
        wanted = set(chunk_hashes) - self.counted
        unasked = wanted - self.known
        if unasked:
            self.counted |= repo.committed_among(self.conn, user, sorted(unasked))
        if self.owned is not None and wanted <= self.owned.keys() | self.counted:
            sizes = {h: self.owned[h] for h in wanted - self.counted}
        else:
            sizes = repo.owned_sizes(self.conn, user, sorted(wanted - self.counted))
        new = sum(sizes.values())
        if new == 0:
            return
        if self.used is None:
            self.used = repo.used_bytes(self.conn, user)
        if self.used + new > quota:
            raise QuotaExceeded(
                f"This file needs {human_bytes(new)} more but only "
                f"{human_bytes(max(0, quota - self.used))} of your quota are left; nothing "
                "was committed. Free some space (see `minidropbox du`) and try again.")
        self.used += new
        self.counted |= set(sizes)




@dataclass(frozen=True)
class UsageReport:
    """What ``GET /api/v1/usage`` and ``minidropbox du`` show."""

    quota_bytes: int | None
    used_bytes: int  # what the quota counts: distinct stored chunks of committed versions
    free_bytes: int | None
    staged_bytes: int  # sent, not committed: free of quota, deleted by GC if never committed
    files: int
    current_bytes: int  # live files at their full size
    versions_bytes: int  # older versions of live files
    trash_bytes: int  # every version of what is in the trash


def usage_report(db: Database, principal: Principal) -> UsageReport:
    with db.read() as conn:
        chunk_usage = repo.usage(conn, principal.user_id)
        sums = usage_repo.byte_sums(conn, principal.user_id)
    quota = principal.quota_bytes
    return UsageReport(
        quota_bytes=quota, used_bytes=chunk_usage.committed,
        free_bytes=None if quota is None else max(0, quota - chunk_usage.committed),
        staged_bytes=chunk_usage.staged, files=sums.files, current_bytes=sums.current,
        versions_bytes=sums.versions, trash_bytes=sums.trash)
