"""Reconcile rounds and the safety rails around them.

A round: check the sync root is really there, scan the local tree, bring the server tree up
to date (the journal entries since the last round, or a full listing: see ``remote``), plan
with ``core.reconcile`` against the state DB, refuse mass deletions, execute. ``sync``
repeats rounds until a plan is empty (moves and conflicts need a second round) or a bound is
hit. ``minidropbox sync --once`` is ``open`` + ``sync``; the daemon (``run``) calls ``sync``
whenever the local watcher or the server's notifications say something moved.

Rails:
- the root must exist, and the state DB in it must be the one opened at start (a folder that
  was unmounted, replaced or emptied underneath us stops the sync; nothing is deleted);
- a folder already synced with another account, server or remote folder is refused;
- a new server generation (restored from a backup) makes the next round untrusting: it
  merges both sides without deleting anything. The generation is read with every full
  listing; a restored server answers the old cursor with 410, which forces one;
- deletions beyond ``DeleteLimits`` stop the sync until ``--allow-mass-delete``.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from minidropbox.client.localfolder import LocalFolder, join, parent_of
from minidropbox.client.localpaths import ASIDE_PREFIX
from minidropbox.client.remote import Remote
from minidropbox.client.sync.errors import (
    MassDeleteRefused,
    SyncFolderMismatch,
    SyncRootMissing,
)
from minidropbox.client.sync.executor import TRANSFER_WORKERS, Executor, Outcome
from minidropbox.client.sync.ignore import IGNORE_FILE, IgnoreRules
from minidropbox.client.sync.journal import NeedsListing
from minidropbox.client.sync.localfs import (
    Leftovers,
    finish_respells,
    leftovers,
    put_back,
    remove_temps,
    set_aside_files,
    sweep_temp_dir,
)
from minidropbox.client.sync.refusals import Refusals
from minidropbox.client.sync.remote import RemoteSide, RemoteTree
from minidropbox.client.sync.scanner import (
    SETTLE_SECONDS,
    ClosedCheck,
    LocalScan,
    hash_file,
    moved_during,
    scan,
    trusted_stat,
)
from minidropbox.client.sync.state import STATE_FILE, UNKNOWN_STAT, BaseRow, Pending, StateDB
from minidropbox.client.sync.status import Status
from minidropbox.core import errors
from minidropbox.core.paths import path_key
from minidropbox.core.reconcile import Item, Op, Plan, reconcile
from minidropbox.core.sync_names import DeleteLimits

log = logging.getLogger("minidropbox.sync")


def one_line(text: str) -> str:
    """``text`` with control characters escaped (``\\n``), so a file name holding a newline
    is still one line of output."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


IGNORE_KEY = path_key("/" + IGNORE_FILE)
MAX_ROUNDS = 12  # per sync(): a plan that keeps producing actions is retried later instead
# How long a delete waits for a new local file that may be the deleted one, renamed, to
# settle (``Plan.held``): a renamed file settles within the settle time of its mtime; one
# still being written after several settle times is something else, and must not hold a
# delete back for ever.
RENAME_HOLD_SETTLES = 5


@dataclass
class SyncOptions:
    root: Path
    remote_root: str = "/"
    device: str = "device"
    allow_mass_delete: bool = False
    settle: float = SETTLE_SECONDS
    limits: DeleteLimits = field(default_factory=DeleteLimits)
    transfer_workers: int = TRANSFER_WORKERS  # 1: one at a time, in order (simulation)
    dry_run: bool = False  # plan only: change nothing on either side, nor in the state DB
    bwlimit: int | None = None  # bytes/s of file data, up and down together


@dataclass
class SyncResult:
    done: bool  # both sides agree
    recheck: float | None = None  # look again after this many seconds (files settling)
    failed: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # cannot be synced at all, and why


@dataclass
class Round:
    plan: Plan
    outcome: Outcome
    scan: LocalScan
    tree: RemoteTree

    held: list[str] = field(default_factory=list)  # refused as read-only (``refusals.py``)

    @property
    def skipped(self) -> list[str]:
        """What this round could not sync, on either side, with the reason."""
        return [*self.scan.skipped, *self.tree.skipped, *self.held]


@contextlib.contextmanager
def cyclic_gc_held() -> Iterator[None]:
    """Hold Python's cyclic garbage collector off for a block, as while a round plans: it
    makes several objects per name in the tree (tens of thousands, none in a cycle), and
    each counts toward collections that walk every object the process holds, the trees
    and rows of a large folder among them (a fifth of a round's CPU at 100,000 files).
    Reference counting frees everything as usual; a cycle made meanwhile is collected
    after. Left off if something else turned it off."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class SyncEngine:
    """Reconcile rounds between ``folder`` and the server, with the state DB at
    ``state_path``. Built by ``SyncClient`` (``client/sync/client.py``), or directly by tests.

    ``closed`` is the local watcher's "did its writer close it" (None without a watcher);
    ``clock`` is the local time for conflicted-copy names; ``now_ns`` the epoch time that
    says how long ago a file was written; ``monotonic`` paces state commits and full
    listings (a simulation passes its own clocks, and gives its ``FakeFolder`` the same).
    """

    def __init__(self, server: Remote, folder: LocalFolder, state_path: Path,
                 options: SyncOptions, status: Status, *, closed: ClosedCheck | None = None,
                 clock: Callable[[], datetime] = datetime.now,
                 now_ns: Callable[[], int] = time.time_ns,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.server = server
        self.folder = folder
        self.state_path = state_path
        self.opts = options
        self.root = options.root
        self.status = status
        self.clock = clock
        self.now_ns = now_ns
        self.monotonic = monotonic
        self.closed = closed
        self.remote = RemoteSide(server, options.remote_root, monotonic)
        self.state: StateDB | None = None
        self.state_ino = 0
        self.base_trusted = True
        self.generation: str | None = None
        self.cursor: str | None = None  # read by the notification thread: no DB access there
        self.reported: set[str] = set()  # skipped files already told to the user
        self.refusals = Refusals()  # local changes refused as read-only, held back
        self.holds: dict[str, float] = {}  # key in Plan.held -> monotonic time first held

    # -- start and stop ---------------------------------------------------------------------
    def open(self) -> None:
        root = self.root
        try:
            is_folder = self.folder.info("").kind == "folder"
        except FileNotFoundError:
            is_folder = False
        if not is_folder:
            raise SyncRootMissing(f"{root} does not exist or is not a folder (is its disk "
                                  "mounted?). Nothing was synced; create the folder to "
                                  "start syncing into it.")
        # One walk finds what interrupted syncs left: temp files, and (recovered below, once
        # the state DB is open) half-done respells and files set aside.
        found = None if self.opts.dry_run else leftovers(self.folder)
        removed = 0 if found is None else remove_temps(self.folder, found.temps)
        if removed:
            self.status.action(f"removed {removed} temp file(s) left by an interrupted sync")
        self.state = StateDB(self.state_path)
        self.state_ino = self._state_ino()
        self._check_identity()
        if found is not None:
            self.recover_set_aside(found)
        if not self.remote.root_exists():
            if self.state.rows():
                raise SyncRootMissing(f"The server folder {self.remote.root} is gone; nothing "
                                      "was deleted here. Restore it from the trash, or sync "
                                      "into a new local folder.")
            if self.opts.dry_run:
                raise SyncRootMissing(f"The server folder {self.remote.root} does not exist "
                                      f"yet: a sync would create it and upload everything in "
                                      f"{self.root}.")
            self.remote.create_root()

    def recover_set_aside(self, found: Leftovers | None = None) -> None:
        """Items a step left halfway when the process died (or the step failed): a case-only
        rename is finished; a file set aside to be deleted or replaced that holds exactly
        its base content is on the server, and goes; anything else gets its name back (or a
        free one beside it), to be synced as the user's. ``found``: the folder's leftovers,
        if just walked."""
        assert self.state is not None
        found = leftovers(self.folder) if found is None else found
        asides = found.asides
        if finish_respells(self.folder, found.respells):
            asides = set_aside_files(self.folder)  # some may have been in a renamed folder
        rows: dict[str, BaseRow] | None = None  # read only if something was set aside
        for aside in asides:
            folder, leaf = parent_of(aside), aside.rsplit("/", 1)[-1]
            name = join(folder, leaf[len(ASIDE_PREFIX):])
            if rows is None:
                rows = self.state.rows()
            row = rows.get(path_key("/" + name))
            try:
                hashed = hash_file(self.folder, aside)
            except OSError:
                hashed = None
            if row is not None and hashed is not None and hashed[0] == row.item.hash:
                self.folder.unlink(aside)
            else:
                kept = put_back(self.folder, aside, name)
                self.status.action(f"kept {kept}: it changed while sync was replacing it")

    def close(self) -> None:
        if self.state is not None:
            self.state.close()
            self.state = None

    def _check_identity(self) -> None:
        assert self.state is not None
        creds = self.server.api.credentials
        want = {"server": self.server.server, "username": creds.username if creds else "",
                "remote_root": self.remote.root}
        have = {k: self.state.get_meta(k) for k in want}
        if any(v is not None for v in have.values()) and have != want:
            raise SyncFolderMismatch(
                f"{self.root} is synced with {have['username']}@{have['server']}:"
                f"{have['remote_root']}, not {want['username']}@{want['server']}:"
                f"{want['remote_root']}. Use another local folder.")
        if self.opts.dry_run:
            return
        for k, v in want.items():
            self.state.set_meta(k, v)

    def _state_ino(self) -> int:
        """The inode of the state DB in the folder: the folder's identity (-1 if there is
        none, which a folder whose state lives elsewhere keeps being)."""
        try:
            return self.folder.info(STATE_FILE).ino
        except FileNotFoundError:
            return -1

    def _check_root(self) -> None:
        """Stop, before planning anything, if the folder is not the one we opened."""
        if self._state_ino() != self.state_ino:
            raise SyncRootMissing(f"{self.root} was removed, replaced or unmounted while "
                                  "syncing; stopped without deleting anything.")

    def _check_generation(self) -> None:
        assert self.state is not None
        gen = self.remote.generation()
        stored = self.state.get_meta("generation")
        self.generation = gen
        if gen is not None and stored is not None and gen != stored:
            if self.base_trusted:
                self.status.action("the server was restored from a backup: merging both "
                                   "sides without deleting anything")
            self.base_trusted = False
        elif gen is not None and stored is None and not self.opts.dry_run:
            self.state.set_meta("generation", gen)

    # -- rounds -----------------------------------------------------------------------------
    def _plan(self) -> tuple[Plan, LocalScan, RemoteTree, IgnoreRules, dict[str, BaseRow]]:
        """Scan, bring the server tree up to date, and plan (the rails checked)."""
        with cyclic_gc_held():
            return self._plan_now()

    def _plan_now(self) -> tuple[Plan, LocalScan, RemoteTree, IgnoreRules,
                                 dict[str, BaseRow]]:
        state = self.state
        assert state is not None, "open() first"
        self._check_root()
        rules = IgnoreRules.load(self.folder)
        rows = state.rows()
        local = scan(self.folder, rules, self.refusals.known_stats(rows), self.opts.settle,
                     self.closed,
                     clock=self.now_ns, rename_case_clashes=not self.opts.dry_run)
        for message in local.case_conflicts:
            self.status.action(message)
        tree = self._remote_tree(rules)
        self._check_root()  # an unmount during the scan looks like an empty folder
        self.refusals.prune(local.items)
        self._report_skipped([*local.skipped, *tree.skipped, *self.refusals.lines()])
        if not self.opts.dry_run and self._settle_pending(rows, local, tree):
            rows = state.rows()
        base = {k: r.item for k, r in rows.items()
                if not rules.ignored(r.item.path, r.item.kind == "folder")}
        now = self.monotonic()
        limit = RENAME_HOLD_SETTLES * self.opts.settle
        expired = frozenset(k for k, since in self.holds.items() if now - since >= limit)
        plan = reconcile(local.items, base, tree.items, device=self.opts.device,
                         now=self.clock(), allow_mass_delete=self.opts.allow_mass_delete,
                         limits=self.opts.limits, base_trusted=self.base_trusted,
                         hold_expired=expired)
        plan = self._hold_deletes_if_moved(plan, local, expired)
        self.holds = {k: self.holds.get(k, now) for k in plan.held}
        if plan.refused:
            raise MassDeleteRefused(plan.refused)
        return self.refusals.hold_back(plan), local, tree, rules, rows

    def _hold_deletes_if_moved(self, plan: Plan, local: LocalScan,
                               expired: frozenset[str]) -> Plan:
        """Deletes on the server wait a round if a folder changed while the scan walked the
        tree: what looks deleted may have been moved where the scan had been already (the
        next scan, shortly, sees it and makes it a move). Bounded like any held delete."""
        deletes = [a for a in plan.actions
                   if a.op is Op.DELETE_REMOTE and path_key(a.path) not in expired]
        if not deletes or not moved_during(self.folder, local):
            return plan
        kept = [a for a in plan.actions if a not in deletes]
        held = [*plan.held, *(path_key(a.path) for a in deletes)]
        files = sum(1 for a in deletes if a.kind == "file")
        return replace(plan, actions=kept, held=held,
                       remote_deletes=max(0, plan.remote_deletes - files))

    def preview(self, max_waits: int = 10) -> Plan:
        """What the next round would do (``--dry-run``): nothing is changed on either side,
        and the state DB is not written. Files still being written are waited for (as a
        round's rescan would), a bounded number of times, so a file saved just before the
        dry run is listed rather than left out."""
        plan, local, *_ = self._plan()
        for _ in range(max_waits):
            if not local.unsettled or local.recheck is None:
                break
            time.sleep(local.recheck)
            plan, local, *_ = self._plan()
        return plan

    def round(self) -> Round:
        state = self.state
        assert state is not None, "open() first"
        plan, local, tree, rules, rows = self._plan()
        rules_first = [a for a in plan.actions
                       if a.op is Op.DOWNLOAD and path_key(a.path) == IGNORE_KEY]
        if rules_first and len(plan.actions) > 1:
            # New ignore rules from the server apply before anything else is downloaded.
            plan = Plan(actions=rules_first)
        if plan.actions:
            self.status.syncing(len(plan.actions))
        else:
            self._record_restats(rows, local)
        executor = Executor(self.folder, self.server, self.remote, state, self.opts.device, rules,
                            self.status.action, transfer_workers=self.opts.transfer_workers,
                            monotonic=self.monotonic, now_ns=self.now_ns,
                            refusals=self.refusals)
        outcome = executor.run(plan, local, tree)
        held = self.refusals.lines()
        self._report_skipped([*local.skipped, *tree.skipped, *held])  # refused just now
        sweep_temp_dir(self.folder)  # whatever a failed step left there, every round
        if outcome.failed or outcome.skipped:
            self.recover_set_aside()
        if not self.base_trusted and not outcome.failed and self.generation is not None:
            state.set_meta("generation", self.generation)
            self.base_trusted = True
        if tree.cursor is not None:
            state.set_meta("cursor", tree.cursor)
            self.cursor = tree.cursor
        return Round(plan, outcome, local, tree, held)

    def _settle_pending(self, rows: Mapping[str, BaseRow], local: LocalScan,
                        tree: RemoteTree) -> bool:
        """Transfers the last round started but may not have recorded (it died, or the
        answer to a commit was lost): one that happened is recorded now, as both sides
        held it then, so what changed since is a change here or there — not a conflict.
        A download happened if the file at its path is the temp file it renamed (same
        inode); an upload if the server holds its content at that path. Whether the rows
        changed."""
        state = self.state
        assert state is not None
        pending = state.pending()
        if not pending:
            return False
        changed = False
        state.begin()
        for p in pending:
            key = path_key(p.item.path)
            row = rows.get(key)
            if p.side in ("move-local", "move-remote"):
                changed |= self._settle_move(p, rows, local.items if p.side == "move-local"
                                             else tree.items)
                continue
            if p.side == "local":
                name = local.paths.get(key)
                try:
                    info = self.folder.info(name) if name is not None else None
                except FileNotFoundError:
                    info = None
                if info is None or info.kind != "file" or info.ino != p.stat.ino:
                    continue  # never renamed into place (or replaced since)
                item = p.item
                stat = None  # read again: it may have been edited in place since
            else:
                rem = tree.items.get(key)
                if rem is None or rem.kind != "file" or rem.hash != p.item.hash:
                    continue  # the commit did not happen (or was overwritten since)
                # The stat was judged when it was seen, before the upload (it is unknown
                # if it could hide a write then): judged now, a write in the same clock
                # tick just after it was seen would pass for the committed content.
                item, stat = rem, None if p.stat.mtime_ns == UNKNOWN_STAT.mtime_ns else p.stat
            if row is not None and (row.item.version, row.item.hash) == (item.version,
                                                                         item.hash):
                continue  # recorded already
            state.put(item, stat)
            changed = True
        state.clear_pending()
        state.commit()
        return changed

    def _report_skipped(self, skipped: list[str]) -> None:
        """One line per file sync cannot handle, when it first shows (again after it was
        fixed and came back), and the full list for ``minidropbox status``."""
        for line in skipped:
            if line not in self.reported:
                self.status.action(f"skipped {one_line(line)}")
        self.reported = set(skipped)
        self.status.set_skipped([one_line(line) for line in skipped])

    def _settle_move(self, p: Pending, rows: Mapping[str, BaseRow],
                     side: Mapping[str, Item]) -> bool:
        """A move that happened (the item is at its new path there, and gone from the old
        one) has its rows renamed, if that was not done yet."""
        assert self.state is not None and p.source is not None
        src, dst = p.source, p.item.path
        found = side.get(path_key(dst))
        row = rows.get(path_key(src))
        if (found is None or found.path != dst or found.kind != p.item.kind or row is None
                or row.item.path == dst):
            return False
        if path_key(src) != path_key(dst) and path_key(src) in side:
            return False
        self.state.rename(src, dst)
        return True

    def _record_restats(self, rows: Mapping[str, BaseRow], local: LocalScan) -> None:
        """Files whose stat moved but whose content is still the base's (a rename changes the
        ctime, ``touch`` the mtime) were just read whole to learn that: record the new stat,
        so they are not read again every round. Only in a round that changes nothing, when
        the rows are exactly those the scan was compared with."""
        assert self.state is not None
        stats = local.stats  # a file the scan did not read holds its row's own stat
        restat = [(row.item, st) for key, row in rows.items()
                  if row.item.kind == "file" and (st := stats.get(key)) is not None
                  and st is not row.stat and st != row.stat
                  and (item := local.items.get(key)) is not None and item.hash == row.item.hash]
        # Judged at the time the scan began, not now: a write in the same clock tick just
        # after the scan saw a stat would keep it.
        restat = [(item, st) for item, st in restat
                  if trusted_stat(st, local.started_ns) is not None]
        if restat:
            self.state.begin()
            for item, st in restat:
                self.state.put(item, st)
            self.state.commit()

    def _remote_tree(self, rules: IgnoreRules) -> RemoteTree:
        """The server tree: caught up from the journal when the cached one is at a cursor,
        else listed in full (after checking the generation, as a full listing is how a
        restored server is recognised)."""
        remote = self.remote
        if not remote.needs_listing():
            try:
                remote.catch_up()
                return remote.tree(rules)
            except (errors.CursorReset, NeedsListing) as exc:
                log.info("listing the server folder again: %s", exc)
        self._check_generation()
        listed = remote.relist()
        return remote.tree(rules, listed.skipped)

    def sync(self, max_rounds: int = MAX_ROUNDS) -> SyncResult:
        """Rounds until both sides agree, files still being written are left for later, or
        ``max_rounds`` is reached."""
        started = time.monotonic()
        sent = 0
        last: Round | None = None
        for _ in range(max_rounds):
            last = self.round()
            sent += last.outcome.moved_bytes
            if last.plan.actions and sent:
                self.status.syncing(len(last.plan.actions), sent, time.monotonic() - started)
            if last.plan.done and not last.outcome.failed:
                return SyncResult(True, skipped=last.skipped)
            if not last.plan.actions:
                break  # only files still being written (or unreadable) remain
        assert last is not None
        unreadable = sorted(last.scan.unreadable)
        waiting = [p for p in last.plan.waiting if p not in last.scan.unreadable]
        recheck = ((last.scan.recheck or self.opts.settle / 2) if waiting or last.plan.held
                   else None)
        return SyncResult(False, recheck, last.outcome.failed, unreadable, last.skipped)

    def saved_cursor(self) -> str | None:
        """The journal position the last listing was at (safe to call from any thread)."""
        return self.cursor
