"""``backup prune``: forget the snapshots retention does not keep, then their orphan chunks.

The rule is ``core.retention.snapshots_to_keep``. Ordering: under the writer lock and the
exclusive readers lock, interrupted snapshots are removed, then each forgotten snapshot
(manifest first, so a crash leaves it merely incomplete), and only then the chunks that no
remaining snapshot references. A crash anywhere leaves every kept snapshot whole.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from minidropbox.backup.repository import Repository
from minidropbox.core.retention import SnapshotStamp, snapshots_to_keep

log = logging.getLogger("minidropbox.backup")


@dataclass
class PruneReport:
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    chunks_removed: int = 0
    bytes_freed: int = 0
    duration: float = 0.0


def prune(repo: Repository, keep_last: int, keep_daily: int,
          clock: Callable[[], float] = time.time) -> PruneReport:
    """Apply retention to ``repo`` (see the module docstring)."""
    started = time.monotonic()
    report = PruneReport()
    with repo.lock("prune"), repo.readers_lock(exclusive=True):
        repo.remove_incomplete()
        snaps = repo.snapshots()
        keep = snapshots_to_keep([SnapshotStamp(s.id, s.time) for s in snaps], keep_last,
                                 keep_daily, clock())
        for snap in snaps:
            if snap.id in keep:
                report.kept.append(snap.id)
            else:
                repo.remove_snapshot(snap)
                report.removed.append(snap.id)
        referenced = repo.referenced_chunks()
        store = repo.chunks
        # Collect first, delete after: deleting while paging the listing could skip names.
        orphans = [name for name in repo.iter_chunk_names() if name not in referenced]
        for name in orphans:
            report.bytes_freed += store.size(name)
            store.delete(name)
        report.chunks_removed = len(orphans)
    report.duration = time.monotonic() - started
    log.info("prune: kept %d snapshot(s), removed %d, removed %d chunks (%d bytes) in %.1f s",
             len(report.kept), len(report.removed), report.chunks_removed, report.bytes_freed,
             report.duration)
    return report
