"""Route dependencies: the services, and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from minidropbox.api.context import AppContext
from minidropbox.core.errors import Forbidden, Unauthorized
from minidropbox.service.accounts import Principal

bearer = HTTPBearer(auto_error=False, description="An access token from /api/v1/auth/login")


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Context = Annotated[AppContext, Depends(get_context)]


def get_principal(
    request: Request,
    ctx: Context,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
        raise Unauthorized("Missing bearer token; log in first.")
    principal = ctx.accounts.authenticate(creds.credentials)
    ctx.check_rate(principal.user_id)
    request.state.principal = principal
    return principal


CurrentUser = Annotated[Principal, Depends(get_principal)]


def get_admin(principal: CurrentUser) -> Principal:
    if not principal.is_admin:
        raise Forbidden("This needs an administrator account.")
    return principal


AdminUser = Annotated[Principal, Depends(get_admin)]
