"""Sharing: share links (``/shares/links``) and shared folders (``/shares/folders``,
``/shares/invites``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from minidropbox.api.bounded_json import BoundedJsonRoute
from minidropbox.api.deps import Context, CurrentUser
from minidropbox.api.schemas import error_responses
from minidropbox.api.schemas_shares import (
    Accept,
    FolderInvite,
    FolderPath,
    Invited,
    Invites,
    Link,
    LinkCreate,
    Links,
    Members,
    Mounted,
    SharedFolders,
)
from minidropbox.service.links import LinkOptions

router = APIRouter(prefix="/api/v1/shares", tags=["sharing"], route_class=BoundedJsonRoute)
ERRORS = error_responses(400, 401, 403, 404, 409, 422, 429)
PathQuery = Annotated[str, Query(max_length=8192, description="/folder/name")]


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


# -- shared folders -------------------------------------------------------------------------

@router.post("/folders", status_code=201, response_model=Invited, responses=ERRORS)
def invite(body: FolderInvite, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    """Invite someone to a folder (sharing it if it is not yet), or change their role."""
    return ctx.shared_folders.invite(principal, body.path, body.username, body.role)


@router.get("/folders", response_model=SharedFolders, responses=ERRORS)
def shared_folders(principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    """The shared folders in the caller's tree, with the caller's role in each."""
    return {"folders": ctx.shared_folders.folders(principal)}


@router.get("/folders/members", response_model=Members, responses=ERRORS)
def members(path: PathQuery, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    """Who is in the shared folder at (or above) ``path``, invitations included."""
    return ctx.shared_folders.members(principal, path)


@router.delete("/folders/members", status_code=204, responses=ERRORS)
def remove_member(path: PathQuery, username: Annotated[str, Query(max_length=64)],
                  principal: CurrentUser, ctx: Context) -> Response:
    """The owner takes someone out (or withdraws an invitation); it takes effect at once."""
    ctx.shared_folders.remove(principal, path, username)
    return Response(status_code=204)


@router.post("/folders/leave", status_code=204, responses=ERRORS)
def leave(body: FolderPath, principal: CurrentUser, ctx: Context) -> Response:
    """A member leaves: the folder goes from their tree."""
    ctx.shared_folders.leave(principal, body.path)
    return Response(status_code=204)


@router.post("/folders/unshare", status_code=204, responses=ERRORS)
def unshare(body: FolderPath, principal: CurrentUser, ctx: Context) -> Response:
    """The owner stops sharing: the others lose it, the owner keeps a plain folder."""
    ctx.shared_folders.unshare(principal, body.path)
    return Response(status_code=204)


@router.get("/invites", response_model=Invites, responses=ERRORS)
def invites(principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    """Invitations waiting for the caller."""
    return {"invites": ctx.shared_folders.invites(principal)}


@router.post("/invites/{invite_id}/accept", status_code=201, response_model=Mounted,
             responses=ERRORS)
def accept(invite_id: int, body: Accept, principal: CurrentUser,
           ctx: Context) -> dict[str, Any]:
    """Accept: the folder appears in the caller's tree (at ``as_path``, default its name)."""
    return ctx.shared_folders.accept(principal, invite_id, body.as_path)


@router.delete("/invites/{invite_id}", status_code=204, responses=ERRORS)
def decline(invite_id: int, principal: CurrentUser, ctx: Context) -> Response:
    """Decline an invitation."""
    ctx.shared_folders.decline(principal, invite_id)
    return Response(status_code=204)
