"""What the admin API answers (docs/PROTOCOL.md, "Admin"), as frozen typed values.

The counterpart of ``values.py`` for the operator commands, kept apart as the server keeps
``api/schemas_admin.py`` apart. Fields are in the server's order, so ``as_json`` gives back
the answer as it came for ``--json`` output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from minidropbox.client.values import _opt_float, _opt_int, _opt_str


@dataclass(frozen=True)
class StorageNode:
    """One storage node as ``GET /admin/nodes`` describes it (``disk``: ok, full, read_only
    or io_error; ``restarts`` None when no supervisor runs it)."""

    name: str
    url: str
    configured: bool
    state: str
    draining: bool
    last_seen: float | None
    used_bytes: int | None
    free_bytes: int | None
    chunk_count: int | None
    replicas: int
    bad_replicas: int
    restarts: int | None = None
    disk: str = "ok"

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> StorageNode:
        return cls(name=str(body["name"]), url=str(body.get("url", "")),
                   configured=bool(body["configured"]), state=str(body["state"]),
                   draining=bool(body["draining"]),
                   last_seen=_opt_float(body.get("last_seen")),
                   used_bytes=_opt_int(body.get("used_bytes")),
                   free_bytes=_opt_int(body.get("free_bytes")),
                   chunk_count=_opt_int(body.get("chunk_count")),
                   replicas=int(body["replicas"]), bad_replicas=int(body["bad_replicas"]),
                   restarts=_opt_int(body.get("restarts")), disk=str(body.get("disk", "ok")))

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RepairSummary:
    """What one repair pass did."""

    checked: int
    copied: int
    dropped: int
    failed: int
    waiting: int

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> RepairSummary:
        return cls(checked=int(body["checked"]), copied=int(body["copied"]),
                   dropped=int(body["dropped"]), failed=int(body["failed"]),
                   waiting=int(body["waiting"]))

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class OrphanSweep:
    """One sweep for chunk copies on the nodes that the metadata does not know."""

    dry_run: bool
    started_at: float
    finished_at: float | None
    nodes: tuple[str, ...]
    skipped: tuple[str, ...]
    listed: int
    found: int
    removed: int
    failed: int
    sample: tuple[str, ...]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> OrphanSweep:
        return cls(dry_run=bool(body["dry_run"]), started_at=float(body["started_at"]),
                   finished_at=_opt_float(body.get("finished_at")),
                   nodes=tuple(str(n) for n in body["nodes"]),
                   skipped=tuple(str(n) for n in body["skipped"]),
                   listed=int(body["listed"]), found=int(body["found"]),
                   removed=int(body["removed"]), failed=int(body["failed"]),
                   sample=tuple(str(s) for s in body.get("sample", ())))

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SupervisedProcess:
    """A process ``server cluster`` keeps running (``state``: starting, running,
    restarting, crash-loop, stopped)."""

    name: str
    state: str
    restarts: int
    last_exit: str | None
    last_exit_at: float | None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> SupervisedProcess:
        return cls(name=str(body["name"]), state=str(body["state"]),
                   restarts=int(body["restarts"]), last_exit=_opt_str(body.get("last_exit")),
                   last_exit_at=_opt_float(body.get("last_exit_at")))


@dataclass(frozen=True)
class StorageStatus:
    """``GET /admin/status``: the cluster's health."""

    chunks: int
    under_replicated: int
    unreadable: int
    corrupt_replicas: int
    repair_queue: int
    replicas_wanted: int
    nodes_up: int
    nodes: int
    draining: tuple[str, ...]
    rebalancing: bool
    last_repair: RepairSummary
    processes: tuple[SupervisedProcess, ...] = ()
    last_orphan_sweep: OrphanSweep | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> StorageStatus:
        sweep = body.get("last_orphan_sweep")
        return cls(chunks=int(body["chunks"]), under_replicated=int(body["under_replicated"]),
                   unreadable=int(body["unreadable"]),
                   corrupt_replicas=int(body["corrupt_replicas"]),
                   repair_queue=int(body["repair_queue"]),
                   replicas_wanted=int(body["replicas_wanted"]),
                   nodes_up=int(body["nodes_up"]), nodes=int(body["nodes"]),
                   draining=tuple(str(n) for n in body["draining"]),
                   rebalancing=bool(body.get("rebalancing", False)),
                   last_repair=RepairSummary.from_json(body["last_repair"]),
                   processes=tuple(SupervisedProcess.from_json(p)
                                   for p in body.get("processes", ())),
                   last_orphan_sweep=OrphanSweep.from_json(sweep) if sweep else None)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GcResult:
    """What a garbage collection pass collected (or, with ``dry_run``, would)."""

    dry_run: bool
    candidates: int
    collected: int
    freed_bytes: int
    node_deletes: int
    node_delete_failures: int
    hashes: tuple[str, ...]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> GcResult:
        return cls(dry_run=bool(body["dry_run"]), candidates=int(body["candidates"]),
                   collected=int(body["collected"]), freed_bytes=int(body["freed_bytes"]),
                   node_deletes=int(body.get("node_deletes", 0)),
                   node_delete_failures=int(body.get("node_delete_failures", 0)),
                   hashes=tuple(str(h) for h in body.get("hashes", ())))

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CheckFinding:
    """One invariant of docs/DESIGN.md (``level`` must|should) and how often it fails."""

    name: str
    level: str
    rule: str
    violations: int
    sample: tuple[str, ...]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> CheckFinding:
        return cls(name=str(body["name"]), level=str(body["level"]), rule=str(body["rule"]),
                   violations=int(body["violations"]),
                   sample=tuple(str(s) for s in body.get("sample", ())))


@dataclass(frozen=True)
class CheckResult:
    """``POST /admin/check``: ``ok`` when no *must* invariant has violations."""

    ok: bool
    findings: tuple[CheckFinding, ...]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> CheckResult:
        return cls(ok=bool(body["ok"]),
                   findings=tuple(CheckFinding.from_json(f) for f in body["findings"]))

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class UserInfo:
    """One account as ``GET /admin/users`` describes it."""

    username: str
    is_admin: bool
    quota_bytes: int | None
    used_bytes: int
    created_at: float
    disabled: bool
    disabled_at: float | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> UserInfo:
        quota, disabled_at = body.get("quota_bytes"), body.get("disabled_at")
        return cls(username=str(body["username"]), is_admin=bool(body["is_admin"]),
                   quota_bytes=None if quota is None else int(quota),
                   used_bytes=int(body["used_bytes"]), created_at=float(body["created_at"]),
                   disabled=bool(body["disabled"]),
                   disabled_at=None if disabled_at is None else float(disabled_at))

    def as_json(self) -> dict[str, Any]:
        return asdict(self)
