"""Request and response models of the admin API."""

from __future__ import annotations

from pydantic import BaseModel, Field

from minidropbox.api.schemas import Strict


class NodeView(BaseModel):
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
    restarts: int | None = None  # by `server cluster`'s supervisor; None when not supervised
    disk: str = "ok"  # ok, full (no new chunks), read_only or io_error (drained)


class NodeList(BaseModel):
    nodes: list[NodeView]


class RepairSummary(BaseModel):
    checked: int
    copied: int
    dropped: int
    failed: int
    waiting: int


class SupervisedProcess(BaseModel):
    name: str
    state: str  # starting, running, restarting, crash-loop, stopped
    restarts: int
    last_exit: str | None
    last_exit_at: float | None


class OrphanResult(BaseModel):
    dry_run: bool
    started_at: float
    finished_at: float | None
    nodes: list[str]
    skipped: list[str]
    listed: int
    found: int
    removed: int
    failed: int
    sample: list[str]


class StorageStatus(BaseModel):
    chunks: int
    under_replicated: int
    unreadable: int
    corrupt_replicas: int
    repair_queue: int
    replicas_wanted: int
    nodes_up: int
    nodes: int
    draining: list[str]
    rebalancing: bool
    last_repair: RepairSummary
    processes: list[SupervisedProcess] = []
    last_orphan_sweep: OrphanResult | None = None


class DrainRequest(Strict):
    cancel: bool = False


class GcRequest(Strict):
    dry_run: bool = False


class OrphanRequest(Strict):
    dry_run: bool = False


class GcResult(BaseModel):
    dry_run: bool
    candidates: int
    collected: int
    freed_bytes: int
    node_deletes: int
    node_delete_failures: int
    hashes: list[str]


class Started(BaseModel):
    started: bool


class CheckRequest(Strict):
    nodes: bool = False  # also HEAD every recorded copy on its node (paced at audit_rate)


class CheckFinding(BaseModel):
    name: str  # the check's name in docs/DESIGN.md
    level: str  # must | should
    rule: str
    violations: int
    sample: list[str]


class CheckResult(BaseModel):
    ok: bool  # no ``must`` finding has violations
    findings: list[CheckFinding]


class UserView(BaseModel):
    username: str
    is_admin: bool
    quota_bytes: int | None
    used_bytes: int
    created_at: float
    disabled: bool
    disabled_at: float | None


class UserList(BaseModel):
    users: list[UserView]


class NewUser(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class PasswordReset(Strict):
    new_password: str = Field(min_length=1, max_length=1024)


class QuotaChange(Strict):
    quota_bytes: int | None = Field(ge=0, le=2**62, description="None: no quota")


class InviteRequest(Strict):
    expires_in: float = Field(default=7 * 24 * 3600, ge=60, le=90 * 24 * 3600)


class InviteCode(BaseModel):
    code: str = Field(description="Shown once: the server keeps only its SHA-256")
    expires_at: float
