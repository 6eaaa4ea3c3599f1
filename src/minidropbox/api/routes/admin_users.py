"""Operator routes for accounts: list, create, disable/enable, delete, reset a password,
set a quota, and sign-up invites. Every route needs an administrator."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from minidropbox.api.bounded_json import BoundedJsonRoute
from minidropbox.api.deps import AdminUser, Context
from minidropbox.api.schemas import error_responses
from minidropbox.api.schemas_admin import (
    InviteCode,
    InviteRequest,
    NewUser,
    PasswordReset,
    QuotaChange,
    UserList,
    UserView,
)
from minidropbox.service.user_admin import MAX_PAGE

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], route_class=BoundedJsonRoute)
ERRORS = error_responses(400, 401, 403, 404, 409, 422, 429)


@router.get("/users", response_model=UserList, responses=ERRORS)
def list_users(_: AdminUser, ctx: Context,
               after: Annotated[str, Query(max_length=64)] = "",
               limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = MAX_PAGE) -> dict[str, Any]:
    """Accounts in name order (``after`` a name, at most ``limit``), with their usage."""
    return {"users": ctx.users.list(after, limit)}


@router.post("/users", status_code=201, response_model=UserView, responses=ERRORS)
async def create_user(body: NewUser, _: AdminUser, ctx: Context) -> dict[str, Any]:
    """An account made by an administrator (works whatever ``SIGNUP`` says)."""
    return await ctx.hash_password_work(ctx.users.create, body.username, body.password)


@router.post("/users/{username}/disable", response_model=UserView, responses=ERRORS)
def disable_user(username: str, admin: AdminUser, ctx: Context) -> dict[str, Any]:
    """No login, session or app password works until enabled again; sessions end now."""
    return ctx.users.set_disabled(admin, username, True)


@router.post("/users/{username}/enable", response_model=UserView, responses=ERRORS)
def enable_user(username: str, admin: AdminUser, ctx: Context) -> dict[str, Any]:
    return ctx.users.set_disabled(admin, username, False)


@router.delete("/users/{username}", status_code=204, responses=ERRORS)
def delete_user(username: str, admin: AdminUser, ctx: Context) -> Response:
    """The account and all its files, versions and trash (409 while it owns a folder
    shared with others)."""
    ctx.users.delete(admin, username)
    return Response(status_code=204)


@router.post("/users/{username}/password", status_code=204, responses=ERRORS)
async def reset_password(username: str, body: PasswordReset, _: AdminUser,
                         ctx: Context) -> Response:
    """A new password; every session of the account ends."""
    await ctx.hash_password_work(ctx.users.reset_password, username, body.new_password)
    return Response(status_code=204)


@router.put("/users/{username}/quota", response_model=UserView, responses=ERRORS)
def set_quota(username: str, body: QuotaChange, _: AdminUser, ctx: Context) -> dict[str, Any]:
    return ctx.users.set_quota(username, body.quota_bytes)


@router.post("/invites", status_code=201, response_model=InviteCode, responses=ERRORS)
def create_invite(body: InviteRequest, admin: AdminUser, ctx: Context) -> dict[str, Any]:
    """A sign-up code for ``SIGNUP=invite``: works once, until it expires."""
    return ctx.users.create_invite(admin, body.expires_in)
