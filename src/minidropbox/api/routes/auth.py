"""Accounts and sessions: signup, login, refresh, logout, me, password change."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from minidropbox.api.bounded_json import BoundedJsonRoute
from minidropbox.api.deps import Context, CurrentUser, client_address
from minidropbox.api.schemas import (
    Credentials,
    PasswordChange,
    RefreshRequest,
    SignupRequest,
    TokenResponse,
    UserPublic,
    error_responses,
)

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], route_class=BoundedJsonRoute)
ERRORS = error_responses(400, 401, 403, 409, 422, 429)


@router.post("/signup", status_code=201, response_model=UserPublic, responses=ERRORS)
async def signup(body: SignupRequest, request: Request, ctx: Context) -> UserPublic:
    """Create an account (a limited number per client address and hour)."""
    user = await ctx.hash_password_work(ctx.accounts.signup, body.username, body.password,
                                        client_address(request), body.invite, signup=True)
    return UserPublic(username=user["username"], created_at=user["created_at"],
                      quota_bytes=ctx.settings.quota_bytes)


@router.post("/login", response_model=TokenResponse, responses=ERRORS)
async def login(body: Credentials, request: Request, ctx: Context) -> TokenResponse:
    """Start a session: an access token (15 minutes) and a refresh token."""
    pair = await ctx.hash_password_work(ctx.accounts.login, body.username, body.password,
                                        client_address(request), body.device)
    return TokenResponse(access_token=pair.access_token, expires_in=pair.expires_in,
                         refresh_token=pair.refresh_token)


@router.post("/refresh", response_model=TokenResponse, responses=ERRORS)
def refresh(body: RefreshRequest, ctx: Context) -> TokenResponse:
    """Trade a refresh token for a new pair; the old refresh token stops working."""
    pair = ctx.accounts.refresh(body.refresh_token)
    return TokenResponse(access_token=pair.access_token, expires_in=pair.expires_in,
                         refresh_token=pair.refresh_token)


@router.post("/logout", status_code=204, responses=ERRORS)
def logout(principal: CurrentUser, ctx: Context) -> Response:
    """End this session; its tokens stop working at once."""
    ctx.accounts.logout(principal)
    return Response(status_code=204)


@router.get("/me", response_model=UserPublic, responses=ERRORS)
def me(principal: CurrentUser, ctx: Context) -> UserPublic:
    """Who the token belongs to."""
    return UserPublic(**ctx.accounts.me(principal))


@router.post("/password", status_code=204, responses=ERRORS)
async def change_password(body: PasswordChange, principal: CurrentUser,
                          ctx: Context) -> Response:
    """Change the password (needs the current one); every other session is revoked."""
    await ctx.hash_password_work(ctx.accounts.change_password, principal, body.old_password,
                                 body.new_password)
    return Response(status_code=204)
