"""Names and thresholds the sync planner decides with: conflicted copies and the mass-delete rail.

Pure: the device name and the time come in as arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from minidropbox.core.paths import join, name_of, parent_of

MAX_DELETES = 100  # more file deletions than this in one reconcile need --allow-mass-delete
# The "more than half the tree" rule applies from this many synced files: deleting 4 of 5
# files asks, deleting the one file of a one-file folder (or 2 of 3) does not.
RATIO_MIN_TREE = 4


def split_ext(name: str) -> tuple[str, str]:
    """``("report", ".pdf")`` for ``report.pdf``; dotfiles and names without a dot keep all."""
    dot = name.rfind(".")
    if dot <= 0:
        return name, ""
    return name[:dot], name[dot:]


def conflict_path(path: str, device: str, now: datetime,
                  taken: Callable[[str], bool]) -> str:
    """Where the local side of a conflict goes: ``name (conflicted copy, DEVICE, YYYY-MM-DD
    HHMMSS).ext`` next to ``path``, with a counter if that name is ``taken`` already."""
    stem, ext = split_ext(name_of(path))
    device = "".join(c for c in device if c not in "/\\\0" and ord(c) >= 0x20) or "device"
    stamp = now.strftime("%Y-%m-%d %H%M%S")
    folder = parent_of(path)
    n = 1
    while True:
        suffix = f" {n}" if n > 1 else ""
        candidate = join(folder, f"{stem} (conflicted copy, {device}, {stamp}{suffix}){ext}")
        if not taken(candidate):
            return candidate
        n += 1


MAX_CASE_CONFLICTS = 100  # "(case conflict N)" names tried before giving up on one clash


def case_conflict_name(name: str, kind: str, attempt: int) -> str:
    """The name a local item that differs only in case from a sibling is given, as Dropbox
    does: ``notes (case conflict).txt``, then ``notes (case conflict 2).txt`` (a folder keeps
    its dots: ``v1.2 (case conflict)``)."""
    stem, ext = split_ext(name) if kind == "file" else (name, "")
    suffix = f" {attempt}" if attempt > 1 else ""
    return f"{stem} (case conflict{suffix}){ext}"


@dataclass(frozen=True)
class DeleteLimits:
    """The mass-delete rail: refuse a reconcile whose deletions look like an accident."""

    max_deletes: int = MAX_DELETES
    ratio_min_tree: int = RATIO_MIN_TREE

    def excessive(self, deletions: int, tree_files: int) -> bool:
        """True if deleting ``deletions`` of ``tree_files`` synced files needs confirmation."""
        if deletions > self.max_deletes:
            return True
        return tree_files >= self.ratio_min_tree and deletions * 2 > tree_files
