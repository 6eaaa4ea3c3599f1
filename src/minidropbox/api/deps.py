"""Route dependencies: the services, and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from minidropbox.api import browser_session
from minidropbox.api.context import AppContext
from minidropbox.core.errors import Forbidden, Unauthorized
from minidropbox.service.accounts import BROWSER, Principal

bearer = HTTPBearer(auto_error=False, description="An access token from /api/v1/auth/login")


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Context = Annotated[AppContext, Depends(get_context)]


def client_address(request: Request) -> str:
    """The peer's address (a trusted proxy's X-Forwarded-For was applied by the server)."""
    return request.client.host if request.client else "unknown"


def get_principal(
    request: Request,
    ctx: Context,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller, by bearer token or else by the browser's session cookie (which must pass
    the CSRF rules of ``browser_session`` on anything that changes state)."""
    cookie = request.cookies.get(browser_session.COOKIE)
    if creds is not None:
        if creds.scheme.lower() != "bearer" or not creds.credentials:
            raise Unauthorized("Missing bearer token; log in first.")
        principal = ctx.accounts.authenticate(creds.credentials)
    elif cookie:
        principal = ctx.accounts.authenticate(cookie, kind=BROWSER)
        assert ctx.settings.jwt_secret
        browser_session.check_csrf(request.method, request.headers, request.url.scheme,
                                   ctx.settings.jwt_secret, principal.session_id)
    else:
        raise Unauthorized("Missing bearer token; log in first.")
    ctx.check_rate(principal.user_id)
    request.state.principal = principal
    return principal


CurrentUser = Annotated[Principal, Depends(get_principal)]


def get_admin(principal: CurrentUser) -> Principal:
    if not principal.is_admin:
        raise Forbidden("This needs an administrator account.")
    return principal


AdminUser = Annotated[Principal, Depends(get_admin)]
