"""The change journal: pages of changes, long-polling for the next one, and the server's
generation (which tells sync clients the server was restored from a backup)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from minidropbox import __version__
from minidropbox.api.bounded_json import BoundedJsonRoute
from minidropbox.api.deps import Context, CurrentUser
from minidropbox.api.schemas import MAX_INT64, error_responses
from minidropbox.api.schemas_changes import ChangePage, ServerInfo, WaitResult

router = APIRouter(prefix="/api/v1", tags=["changes"], route_class=BoundedJsonRoute)
ERRORS = error_responses(401, 410, 422, 429)
CursorQuery = Annotated[str, Query(max_length=256, description="A cursor from this server.")]


@router.get("/changes", response_model=ChangePage, responses=ERRORS)
def changes(principal: CurrentUser, ctx: Context,
            cursor: Annotated[str | None, Query(max_length=256)] = None,
            limit: Annotated[int | None, Query(ge=1, le=MAX_INT64)] = None) -> dict[str, Any]:
    """Changes after ``cursor``, oldest first; without a cursor, just the newest cursor.

    410 ``reset`` when the cursor was not issued by this server for this account, is from
    before a restore, or is older than the retained history: do a full listing then.
    """
    return ctx.changes.page(principal, cursor, limit)


@router.get("/changes/wait", response_model=WaitResult, responses=ERRORS)
async def wait(principal: CurrentUser, ctx: Context, cursor: CursorQuery,
               timeout: Annotated[float, Query(ge=0, allow_inf_nan=False,
                                                description="Seconds (capped)")] = 30,
               ) -> dict[str, Any]:
    """Long-poll: answer as soon as there are changes after ``cursor``, else at the timeout.

    While waiting, the request holds no database connection and no worker thread.
    """
    timeout = min(timeout, ctx.settings.longpoll_max_timeout)
    service = ctx.changes
    ns = principal.namespace_id
    # Listen before reading the head, so a change committed in between is not missed.
    with ctx.longpoll_slot(principal.user_id):
        async with service.hub.listen(ns) as listener:
            seq, head = await run_in_threadpool(service.position, principal, cursor)
            listener.advance(head)
            if head <= seq:
                head = await listener.wait_past(seq, timeout)
    return {"changes": head > seq, "cursor": service.cursor_for(ns, max(head, seq))}


@router.get("/server", response_model=ServerInfo)
def server(ctx: Context) -> dict[str, Any]:
    """What clients need to know about this server (no authentication, no internal URLs)."""
    s = ctx.settings
    return {"generation": ctx.changes.generation, "version": __version__, "replicas": s.replicas,
            "time": ctx.clock(), "max_page_size": s.max_page_size,
            "max_chunk_bytes": s.max_chunk_bytes, "max_batch_commits": s.max_batch_commits,
            "journal_retention": ctx.changes.retention,
            "longpoll_max_timeout": s.longpoll_max_timeout,
            "ws_ping_interval": s.ws_ping_interval}
