"""Operator routes: storage nodes, cluster health, drain, rebalance, repair, GC, orphans,
invariants.

Every route needs an administrator (``minidropbox server grant-admin USER``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from minidropbox.api.bounded_json import BoundedJsonRoute
from minidropbox.api.deps import AdminUser, Context
from minidropbox.api.schemas import error_responses
from minidropbox.api.schemas_admin import (
    CheckRequest,
    CheckResult,
    DrainRequest,
    GcRequest,
    GcResult,
    NodeList,
    NodeView,
    OrphanRequest,
    OrphanResult,
    RepairSummary,
    Started,
    StorageStatus,
)
from minidropbox.core.errors import StorageUnavailable
from minidropbox.service.check import SizeProbe, run_check
from minidropbox.service.storage_admin import StorageAdmin

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], route_class=BoundedJsonRoute)
ERRORS = error_responses(400, 401, 403, 404, 429, 503)


def _storage(ctx: Context) -> StorageAdmin:
    if ctx.storage_admin is None:
        raise StorageUnavailable("This server has no storage nodes configured.")
    return ctx.storage_admin


@router.get("/nodes", response_model=NodeList, responses=ERRORS)
def list_nodes(_: AdminUser, ctx: Context) -> dict[str, Any]:
    """Every storage node: state, space, chunk and replica counts, draining."""
    return {"nodes": _storage(ctx).node_views()}


@router.get("/status", response_model=StorageStatus, responses=ERRORS)
def status(_: AdminUser, ctx: Context) -> dict[str, Any]:
    """Under-replicated and corrupt counts, the repair queue, the last repair pass."""
    return _storage(ctx).status()


@router.post("/nodes/{name}/drain", response_model=NodeView, responses=ERRORS)
def drain(name: str, body: DrainRequest, _: AdminUser, ctx: Context) -> dict[str, Any]:
    """Move every replica off a node (repair does it, throttled); ``cancel`` stops draining.
    The node is empty, and may be removed, once its ``replicas`` count reaches 0."""
    return _storage(ctx).drain(name, cancel=body.cancel)


@router.post("/rebalance", status_code=202, response_model=Started, responses=ERRORS)
async def rebalance(_: AdminUser, ctx: Context) -> dict[str, Any]:
    """Start one throttled pass moving replicas onto their rendezvous placement."""
    return _storage(ctx).rebalance()


@router.post("/repair", response_model=RepairSummary, responses=ERRORS)
async def repair(_: AdminUser, ctx: Context) -> Any:
    """Run a repair pass now (the loop also runs every ``repair_interval`` seconds)."""
    return await _storage(ctx).repair_now()


@router.post("/gc", response_model=GcResult, responses=ERRORS)
async def gc(body: GcRequest, _: AdminUser, ctx: Context) -> dict[str, Any]:
    """Collect chunks no version references (older than the grace period)."""
    report = await _storage(ctx).collect_garbage(body.dry_run)
    return report.public()


@router.post("/orphans", response_model=OrphanResult, responses=ERRORS)
async def orphans(body: OrphanRequest, _: AdminUser, ctx: Context) -> dict[str, Any]:
    """Sweep the nodes for copies no replica row names (older than ``orphan_grace``) and
    delete them under the deletion fence; ``dry_run`` only counts them."""
    report = await _storage(ctx).sweep_orphans(body.dry_run)
    return report.public()


@router.post("/check", response_model=CheckResult, responses=ERRORS)
async def check(body: CheckRequest, _: AdminUser, ctx: Context) -> dict[str, Any]:
    """Run every invariant of docs/DESIGN.md; ``ok`` is false when a *must* one is broken.
    With ``nodes``, every recorded copy is also asked for on its node (paced)."""
    probes: dict[str, SizeProbe] | None = None
    if body.nodes:
        probes = {name: ctx.cluster.client(name).head for name in ctx.cluster.names}
    report = await run_check(ctx.db, ctx.settings.replicas, probes, ctx.settings.audit_rate)
    return report.public()
