"""App passwords: per-device credentials for WebDAV (``/dav/``), created, listed, revoked."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from minidropbox.api.bounded_json import BoundedJsonRoute
from minidropbox.api.deps import Context, CurrentUser
from minidropbox.api.schemas import Strict, error_responses

router = APIRouter(prefix="/api/v1/app-passwords", tags=["app passwords"],
                   route_class=BoundedJsonRoute)
ERRORS = error_responses(400, 401, 404, 409, 422, 429)


class AppPasswordCreate(Strict):
    name: str = Field(min_length=1, max_length=64, description="The device it is for")


class AppPasswordCreated(BaseModel):
    name: str
    username: str
    password: str = Field(description="Shown this once; only its hash is stored")
    created_at: float


class AppPasswordPublic(BaseModel):
    name: str
    created_at: float
    last_used_at: float | None


class AppPasswordList(BaseModel):
    app_passwords: list[AppPasswordPublic]


@router.post("", status_code=201, response_model=AppPasswordCreated, responses=ERRORS)
def create(body: AppPasswordCreate, principal: CurrentUser, ctx: Context) -> AppPasswordCreated:
    """A new app password for WebDAV (HTTP Basic with the username); returned only now."""
    return AppPasswordCreated(**ctx.app_passwords.create(principal, body.name))


@router.get("", response_model=AppPasswordList, responses=ERRORS)
def list_all(principal: CurrentUser, ctx: Context) -> AppPasswordList:
    """The account's app passwords (names and dates; never the passwords)."""
    return AppPasswordList(app_passwords=[AppPasswordPublic(**row)
                                          for row in ctx.app_passwords.list(principal)])


@router.delete("/{name}", status_code=204, responses=ERRORS)
def revoke(name: Annotated[str, Path(min_length=1, max_length=64)], principal: CurrentUser,
           ctx: Context) -> Response:
    """Revoke an app password: it stops working at once."""
    ctx.app_passwords.revoke(principal, name)
    return Response(status_code=204)
