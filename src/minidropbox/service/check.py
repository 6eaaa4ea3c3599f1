"""``admin check``: run every invariant of docs/DESIGN.md and say which hold.

``check_metadata`` runs the queries of ``metadata/invariants.py`` (cheap: a handful of
aggregate queries); ``check_nodes`` also asks each node whether every copy the metadata
records is really there with the right size (``HEAD``, paced at ``rate`` requests per second),
which adds two findings:

- ``replicas_on_nodes`` (should): each ``ok`` replica row has its copy on its node;
- ``version_chunks_on_nodes`` (must): each chunk a version references has at least one copy
  a node confirmed. A chunk whose copies are only on nodes that did not answer is unconfirmed,
  not lost: it is reported under ``replicas_on_nodes``.

A report fails when any ``must`` finding has violations; ``should`` findings are reported and
left to repair and GC. Test clusters run ``check_metadata`` when they stop (tests/harness.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from minidropbox.core.pacing import Pacer
from minidropbox.metadata import chunks as chunk_repo
from minidropbox.metadata import replicas as replica_repo
from minidropbox.metadata.db import Database
from minidropbox.metadata.invariants import INVARIANTS, MUST, SHOULD
from minidropbox.storage.base import StoreError

SAMPLE = 10  # violations a finding names, at most
PAGE = 500

SizeProbe = Callable[[str], Awaitable[int | None]]  # chunk -> its size on a node, None: absent


@dataclass(frozen=True)
class Finding:
    name: str
    level: str
    rule: str
    violations: int
    sample: list[str] = field(default_factory=list)


@dataclass
class CheckReport:
    findings: list[Finding]

    @property
    def must_violations(self) -> list[Finding]:
        return [f for f in self.findings if f.level == MUST and f.violations]

    @property
    def should_violations(self) -> list[Finding]:
        return [f for f in self.findings if f.level == SHOULD and f.violations]

    @property
    def ok(self) -> bool:
        return not self.must_violations

    def violated(self) -> set[str]:
        return {f.name for f in self.findings if f.violations}

    def public(self) -> dict[str, Any]:
        return {"ok": self.ok, "findings": [asdict(f) for f in self.findings]}


def check_metadata(db: Database, replicas_wanted: int, sample: int = SAMPLE) -> CheckReport:
    """Every metadata invariant, in one read transaction (one consistent snapshot)."""
    findings = []
    with db.read() as conn:
        for inv in INVARIANTS:
            count = inv.count(conn, replicas_wanted)
            found = inv.sample(conn, replicas_wanted, sample) if count else []
            findings.append(Finding(inv.name, inv.level, inv.rule, count, found))
    return CheckReport(findings)


async def check_nodes(db: Database, probes: Mapping[str, SizeProbe], rate: float,
                      sample: int = SAMPLE) -> list[Finding]:
    """HEAD every ``ok`` replica on its node (``probes``: node name -> size probe), paced."""
    pacer = Pacer(rate)
    absent: list[str] = []
    unanswered: list[str] = []
    confirmed: set[str] = set()
    unconfirmed: set[str] = set()  # on a node that did not answer: maybe there, maybe not
    for node, probe in probes.items():
        after = ""
        reachable = True
        while True:
            rows = await asyncio.to_thread(_page, db, node, after)
            for chunk_hash, size, state in rows:
                if state != "ok":
                    continue
                if reachable:
                    await asyncio.sleep(pacer.delay(time.monotonic()))
                    try:
                        found = await probe(chunk_hash)
                    except StoreError:
                        reachable = False  # the rest of this node is unconfirmed, not lost
                if not reachable:
                    unanswered.append(f"{chunk_hash} on {node}: node not answering")
                    unconfirmed.add(chunk_hash)
                    continue
                if found == size:
                    confirmed.add(chunk_hash)
                else:
                    what = "missing" if found is None else f"{found} bytes, not {size}"
                    absent.append(f"{chunk_hash} on {node}: {what}")
            if len(rows) < PAGE:
                break
            after = rows[-1][0]
    lost = await asyncio.to_thread(_unconfirmed_references, db, confirmed | unconfirmed)
    return [
        Finding("replicas_on_nodes", SHOULD,
                "every ok replica row has its copy, of the right size, on its node",
                len(absent) + len(unanswered), (absent + unanswered)[:sample]),
        Finding("version_chunks_on_nodes", MUST,
                "every chunk a version references has a copy a node confirmed",
                len(lost), lost[:sample]),
    ]


def _page(db: Database, node: str, after: str) -> list[tuple[str, int, str]]:
    with db.read() as conn:
        return replica_repo.replicas_on_node(conn, node, after, PAGE)


def _unconfirmed_references(db: Database, maybe_held: set[str]) -> list[str]:
    """Referenced chunks that no node confirmed and no silent node may still hold."""
    with db.read() as conn:
        return [h for h in chunk_repo.referenced(conn) if h not in maybe_held]


async def run_check(db: Database, replicas_wanted: int,
                    probes: Mapping[str, SizeProbe] | None = None,
                    rate: float = 100.0) -> CheckReport:
    """The metadata invariants, and with ``probes`` the node-side ones too."""
    report = await asyncio.to_thread(check_metadata, db, replicas_wanted)
    if probes is not None:
        report.findings += await check_nodes(db, probes, rate)
    return report
