"""Local changes the server refused because they are in a folder shared read-only.

A viewer of a shared folder may still edit its files on their own disk. The server answers
such an upload (or new folder) with ``ReadOnly``; retrying it every round would only repeat
the refusal. So the refused change is remembered with the content it had, reported once (a
line in the log, and in ``minidropbox status`` for as long as it stands), left in place on
this computer, and held out of the following plans until it changes again: a later edit is
a new change, tried (and, if refused, reported) again. While its stat stays, the scan takes
the refused content from here instead of reading the file every round. Everything else keeps
syncing.

A deletion or a move the server refuses is not remembered here: the executor forgets its
row instead, so the next round brings the server's file back (as Dropbox does in a view-only
folder), and a moved copy stays here as the user's own. Refusals live as long as the sync
process: a restarted sync tries each held change once more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from minidropbox.client.sync.state import BaseRow, LocalStat
from minidropbox.core.paths import path_key
from minidropbox.core.reconcile import Action, Item, Op, Plan

MAX_REFUSALS = 100_000  # bounds the memory a folder full of read-only edits can take


@dataclass(frozen=True)
class Refusal:
    path: str
    hash: str | None  # the local content refused; None for a folder
    reason: str  # the server's message
    stat: LocalStat | None = None  # the file's stat when that content was read

    def line(self) -> str:
        what = "folder" if self.hash is None else "edit"
        return (f"{self.path}: not uploaded: {self.reason} Your {what} is kept on this "
                "computer only; change it again to retry.")


class Refusals:
    def __init__(self) -> None:
        self._by_key: dict[str, Refusal] = {}

    def add(self, path: str, content_hash: str | None, reason: str,
            stat: LocalStat | None = None) -> None:
        if len(self._by_key) >= MAX_REFUSALS:
            return  # beyond the bound a refused change is simply tried again next round
        self._by_key[path_key(path)] = Refusal(path, content_hash, reason.strip(), stat)

    def known_stats(self, rows: Mapping[str, BaseRow]) -> Mapping[str, BaseRow]:
        """``rows`` for the scan, with each held file's refused content and stat in place of
        its row: a held file whose stat has not moved is not read again every round."""
        held = {key: BaseRow(Item(r.path, "file", r.hash), r.stat)
                for key, r in self._by_key.items() if r.hash is not None and r.stat is not None}
        return {**rows, **held} if held else rows

    def prune(self, local: Mapping[str, Item]) -> None:
        """Forget refusals whose local item changed or went: the change is a new one."""
        for key, refusal in list(self._by_key.items()):
            item = local.get(key)
            kind = "folder" if refusal.hash is None else "file"
            if item is None or item.kind != kind or item.hash != refusal.hash:
                del self._by_key[key]

    def holds(self, act: Action) -> bool:
        """Whether ``act`` would only repeat a refused change."""
        refusal = self._by_key.get(path_key(act.path))
        if refusal is None or act.local is None:
            return False
        if act.op is Op.UPLOAD:
            return refusal.hash is not None and act.local.hash == refusal.hash
        return act.op is Op.MKDIR_REMOTE and refusal.hash is None

    def hold_back(self, plan: Plan) -> Plan:
        """``plan`` without the actions that would only repeat a refusal."""
        kept = [a for a in plan.actions if not self.holds(a)]
        return plan if len(kept) == len(plan.actions) else replace(plan, actions=kept)

    def lines(self) -> list[str]:
        return [r.line() for _, r in sorted(self._by_key.items())]
