"""``/api/v1/auth/session``: the browser's login, its session (with the CSRF token), logout."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from minidropbox.api import browser_session
from minidropbox.api.bounded_json import BoundedJsonRoute
from minidropbox.api.deps import Context, CurrentUser
from minidropbox.api.schemas import Credentials, error_responses
from minidropbox.core.errors import Forbidden
from minidropbox.service.accounts import BROWSER, Principal

router = APIRouter(prefix="/api/v1/auth/session", tags=["auth"], route_class=BoundedJsonRoute)
ERRORS = error_responses(400, 401, 403, 422, 429)


class BrowserSessionInfo(BaseModel):
    username: str
    csrf_token: str
    is_admin: bool = False
    quota_bytes: int | None = None
    used_bytes: int = 0


def _https(request: Request) -> bool:
    return request.url.scheme == "https"


@router.post("", response_model=BrowserSessionInfo, responses=ERRORS)
async def log_in(body: Credentials, request: Request, response: Response,
                 ctx: Context) -> dict[str, Any]:
    """Log in from a browser: the session goes in an HttpOnly, SameSite=Strict cookie."""
    # Login CSRF: another site must not log the browser into an account of its choosing.
    if not browser_session.same_origin(request.headers, request.url.scheme):
        raise Forbidden("Cross-site request refused.")
    address = request.client.host if request.client else "unknown"
    device = body.device or "web: " + request.headers.get("user-agent", "browser")[:100]
    # On the bounded queue of password hashes, like every login (api/context.py).
    session = await ctx.hash_password_work(ctx.accounts.browser_login, body.username,
                                           body.password, address, device)
    browser_session.set_cookie(response, session.token, session.expires_in, _https(request))
    principal = await run_in_threadpool(ctx.accounts.authenticate, session.token, BROWSER)
    return _info(ctx, principal)


@router.get("", response_model=BrowserSessionInfo, responses=ERRORS)
async def current(principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    """Who is logged in, their quota, and the CSRF token to send as ``X-CSRF-Token``."""
    return await run_in_threadpool(_info, ctx, principal)


@router.delete("", status_code=204, responses=ERRORS)
def log_out(principal: CurrentUser, request: Request, ctx: Context) -> Response:
    """End this session at once and clear the cookie."""
    ctx.accounts.logout(principal)
    response = Response(status_code=204)
    browser_session.clear_cookie(response, _https(request))
    return response


def _info(ctx: Context, principal: Principal) -> dict[str, Any]:
    assert ctx.settings.jwt_secret
    return {"username": principal.username, "is_admin": principal.is_admin,
            "csrf_token": browser_session.csrf_token(ctx.settings.jwt_secret,
                                                     principal.session_id),
            "quota_bytes": principal.quota_bytes,
            "used_bytes": ctx.chunks.used_bytes(principal)}
