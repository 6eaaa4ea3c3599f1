"""Accounts and sessions: signup, login, refresh, logout, me, password change."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from minidropbox.api.deps import Context, CurrentUser
from minidropbox.api.schemas import (
    Credentials,
    PasswordChange,
    RefreshRequest,
    SignupRequest,
    TokenResponse,
    UserPublic,
    error_responses,
)

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
ERRORS = error_responses(400, 401, 409, 422, 429)


@router.post("/signup", status_code=201, response_model=UserPublic, responses=ERRORS)
def signup(body: SignupRequest, ctx: Context) -> UserPublic:
    """Create an account."""
    user = ctx.accounts.signup(body.username, body.password)
    return UserPublic(username=user["username"], created_at=user["created_at"],
                      quota_bytes=ctx.settings.quota_bytes)


@router.post("/login", response_model=TokenResponse, responses=ERRORS)
def login(body: Credentials, request: Request, ctx: Context) -> TokenResponse:
    """Start a session: an access token (15 minutes) and a refresh token."""
    address = request.client.host if request.client else "unknown"
    pair = ctx.accounts.login(body.username, body.password, address, body.device)
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
def change_password(body: PasswordChange, principal: CurrentUser, ctx: Context) -> Response:
    """Change the password (needs the current one); every other session is revoked."""
    ctx.accounts.change_password(principal, body.old_password, body.new_password)
    return Response(status_code=204)
