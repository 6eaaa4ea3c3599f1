"""The trash: list, restore, purge."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from minidropbox.api.bounded_json import BoundedJsonRoute
from minidropbox.api.deps import Context, CurrentUser
from minidropbox.api.schemas import MAX_INT64, error_responses
from minidropbox.api.schemas_files import Entry, PathBody, Purged, Trash

router = APIRouter(prefix="/api/v1/trash", tags=["trash"], route_class=BoundedJsonRoute)
ERRORS = error_responses(400, 401, 404, 409, 422, 429)


@router.get("", response_model=Trash, responses=ERRORS)
def list_trash(principal: CurrentUser, ctx: Context,
               limit: Annotated[int | None, Query(ge=1, le=MAX_INT64)] = None) -> dict[str, Any]:
    """Deleted entries, most recently deleted first."""
    return {"entries": ctx.files.trash(principal, limit)}


@router.post("/restore", response_model=Entry, responses=ERRORS)
def restore(body: PathBody, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    """Undelete the most recently deleted entry at a path (a folder with its contents)."""
    return ctx.files.undelete(principal, body.path)


@router.delete("", response_model=Purged, responses=ERRORS)
def purge(principal: CurrentUser, ctx: Context,
          path: Annotated[str | None, Query(max_length=8192)] = None) -> dict[str, Any]:
    """Delete trash entries for good (one path and what was under it, or everything)."""
    return {"purged": ctx.files.purge(principal, path)}
