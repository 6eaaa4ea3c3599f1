"""Request and response models of the admin API."""

from __future__ import annotations

from pydantic import BaseModel

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


class NodeList(BaseModel):
    nodes: list[NodeView]


class RepairSummary(BaseModel):
    checked: int
    copied: int
    dropped: int
    failed: int
    waiting: int


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


class DrainRequest(Strict):
    cancel: bool = False


class GcRequest(Strict):
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
