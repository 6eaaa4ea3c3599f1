"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from minidropbox.api.deps import Context
from minidropbox.api.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def readyz(ctx: Context) -> JSONResponse:
    """The database answers and enough storage nodes are up to store new data."""
    db_ok = ctx.db.ping()
    needed = ctx.settings.replicas if ctx.settings.nodes else 0
    up = ctx.nodes_up()
    ready = db_ok and up >= needed
    body = Readiness(status="ready" if ready else "not_ready", database=db_ok,
                     nodes_up=up, nodes_needed=needed)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
