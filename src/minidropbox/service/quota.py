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

from collections.abc import Iterator
from contextlib import contextmanager
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


class _CommitLedger:
    """Bytes charged to one user by the commits of one write transaction, read once and kept
    up to date by each charge. Each commit of a batch runs in a savepoint; one that fails
    after its charge rolls back, and so must its charge (``undone_on_failure``): else a
    later commit naming the same chunks would find them counted and add their bytes free,
    and the batch could pass the quota."""

    def __init__(self) -> None:
        self.used: int | None = None  # bytes counted, once read
        self.counted: set[str] = set()  # chunks that count already: read, or charged here
        self._charges: list[tuple[int, set[str]]] = []  # of the commit under way

    def _take(self, new: int, hashes: set[str]) -> None:
        assert self.used is not None
        self.used += new
        self.counted |= hashes
        self._charges.append((new, hashes))

    @contextmanager
    def undone_on_failure(self) -> Iterator[None]:
        """Take back what the block charged if it raises (its savepoint rolled back)."""
        self._charges = []
        try:
            yield
        except BaseException:
            for new, hashes in self._charges:
                assert self.used is not None
                self.used -= new
                self.counted -= hashes  # charged only if not counted before: disjoint
            raise
        finally:
            self._charges = []


class CommitQuota(_CommitLedger):
    """The quota check of the commits in one write transaction: a version may add only the
    bytes that fit. Used bytes are read once per transaction (a batch of a thousand small
    files does not sum the account's chunks a thousand times)."""

    def __init__(self, conn: Connection, principal: Principal) -> None:
        super().__init__()
        self.conn = conn
        self.principal = principal
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
        owned = self.owned
        # Item by item: the union of the batch's sets, built for each commit, made a batch
        # of n commits cost n² in set copies.
        if owned is not None and all(h in owned or h in self.counted for h in wanted):
            sizes = {h: owned[h] for h in wanted - self.counted}
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
        self._take(new, set(sizes))


class OwnerQuota(_CommitLedger):
    """A member's commits into a shared folder, in one write transaction, charged to the
    folder's owner: the owner pays for the folder. A commit is refused when the chunks new
    to the owner do not fit their quota, and once it is in, the owner holds its chunks
    (``owe``, then ``settle``) as if they had sent them, so the bytes count for them.

    The caller holds the shared namespace's lock and then the owner's root namespace lock
    (the one their own uploads take for the same rule), so neither can take the other's
    last free bytes. Unlike ``CommitQuota``, an owner already past their quota (it was
    lowered) gets nothing more, not even a commit of chunks they already have."""

    def __init__(self, conn: Connection, owner_id: int, quota_bytes: int | None,
                 member_id: int, refusal: str) -> None:
        super().__init__()
        self.conn = conn
        self.owner_id = owner_id
        self.quota = quota_bytes
        self.member_id = member_id
        self.refusal = refusal  # the message of QuotaExceeded
        self.sized: set[str] = set()  # hashes whose member sizes are in ``sizes``
        self.sizes: dict[str, int] = {}  # the member's chunks among them, with sizes
        self.held: set[str] = set()  # chunks the owner is known to hold
        self.owed: set[str] = set()  # chunks of commits made, to grant the owner (``settle``)

    def prime(self, chunk_hashes: list[str], member_sizes: dict[str, int]) -> None:
        """Read once for a batch what each ``charge`` and ``owe`` would ask: which chunks
        already count for the owner, which they hold, and the member's sizes (read in the
        same transaction)."""
        hashes = sorted(set(chunk_hashes))
        self.held = repo.owned_among(self.conn, self.owner_id, hashes)
        if self.quota is None:
            return
        self.counted |= repo.committed_among(self.conn, self.owner_id, hashes)
        self.sized = set(hashes)
        self.sizes = member_sizes

    def charge(self, chunk_hashes: list[str]) -> None:
        """``QuotaExceeded`` (nothing charged) unless the owner has room for the member's
        chunks of ``chunk_hashes`` that do not count for them yet."""
        if self.quota is None:
            return
        wanted = set(chunk_hashes)
        if not wanted <= self.sized:  # not primed for these: ask as a lone commit does
            self.counted |= repo.committed_among(self.conn, self.owner_id, sorted(wanted))
            self.sizes = {**self.sizes, **repo.owned_sizes(self.conn, self.member_id,
                                                           sorted(wanted))}
            self.sized |= wanted
        new_hashes = {h for h in wanted if h in self.sizes and h not in self.counted}
        new = sum(self.sizes[h] for h in new_hashes)
        if self.used is None:
            self.used = repo.used_bytes(self.conn, self.owner_id)
        if self.used + new > self.quota:
            raise QuotaExceeded(self.refusal)
        self._take(new, new_hashes)

    def owe(self, chunk_hashes: list[str]) -> None:
        """The commit naming ``chunk_hashes`` is in: the owner is to hold them too (the last
        step of its savepoint, so nothing after it can roll the commit back)."""
        self.owed |= set(chunk_hashes) - self.held

    def settle(self, now: float) -> None:
        """Grant the owner every chunk owed, in one statement at the end of the transaction
        (nothing in it reads the owner's chunks after the first ``charge``)."""
        repo.grant_many(self.conn, self.owner_id, sorted(self.owed), now)
        self.held |= self.owed
        self.owed = set()


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
