"""Sharing, for the owner: share links (``/shares/links``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from minidropbox.api.deps import Context, CurrentUser
from minidropbox.api.schemas import error_responses
from minidropbox.api.schemas_shares import Link, LinkCreate, Links
from minidropbox.service.links import LinkOptions

router = APIRouter(prefix="/api/v1/shares", tags=["sharing"])
ERRORS = error_responses(400, 401, 403, 404, 422, 429)


@router.post("/links", status_code=201, response_model=Link, responses=ERRORS)
async def create_link(body: LinkCreate, request: Request, principal: CurrentUser,
                      ctx: Context) -> dict[str, Any]:
    """A link to a file or folder; the answer is the only one that carries its token."""
    options = LinkOptions(password=body.password, expires_in=body.expires_in,
                          max_downloads=body.max_downloads, upload_only=body.upload_only,
                          show_owner=body.show_owner)
    link = await run_in_threadpool(ctx.links.create, principal, body.path, options)
    link["share_url"] = str(request.base_url).rstrip("/") + link["share_url"]
    return link


@router.get("/links", response_model=Links, responses=ERRORS)
def list_links(principal: CurrentUser, ctx: Context,
               path: Annotated[str | None, Query(max_length=8192)] = None) -> dict[str, Any]:
    """The caller's links in force (to one path with ``path``), with use counts."""
    return {"links": ctx.links.of_owner(principal, path)}


@router.delete("/links/{link_id}", status_code=204, responses=ERRORS)
def revoke_link(link_id: Annotated[str, Path(max_length=64)], principal: CurrentUser,
                ctx: Context) -> Response:
    """Revoke a link: it answers 404 from now on."""
    ctx.links.revoke(principal, link_id)
    return Response(status_code=204)
