"""Request and response models. Request models forbid unknown fields (no mass assignment)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from minidropbox.core.timestamps import MAX_TIMESTAMP, MIN_TIMESTAMP

# Numbers from clients fit the database's 64-bit integers (a bigger one would overflow in
# SQLite: a 500), and JSON booleans are not numbers ("mtime": false is not 0).
MAX_INT64 = 2**63 - 1
MAX_VERSION = 2**31 - 1  # version numbers are 32-bit integers in the schema
# Timestamps are finite and between year 1 and year 9999 (core/timestamps.py).
Count = Annotated[int, Field(strict=True, ge=0, le=MAX_INT64)]
VersionNumber = Annotated[int, Field(strict=True, ge=1, le=MAX_VERSION)]
Timestamp = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=MIN_TIMESTAMP,
                                   le=MAX_TIMESTAMP)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for routes that can answer these error statuses."""
    return {status: {"model": ErrorBody} for status in statuses}


class Credentials(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    device: str = Field(default="", max_length=128)


class SignupRequest(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    invite: str | None = Field(default=None, min_length=1, max_length=128,
                               description="Needed when the server's SIGNUP is invite")


class UserPublic(BaseModel):
    username: str
    created_at: float
    quota_bytes: int | None = None
    is_admin: bool = False


class UsagePublic(BaseModel):
    quota_bytes: int | None = Field(description="None: no quota")
    used_bytes: int = Field(description="What the quota counts: the stored chunks of "
                            "committed versions (current, older, trashed), each once")
    free_bytes: int | None
    staged_bytes: int = Field(description="Sent but never committed: free of the quota, "
                              "deleted after the GC grace period")
    files: int
    current_bytes: int = Field(description="Live files at their full size")
    versions_bytes: int = Field(description="Older versions of live files")
    trash_bytes: int = Field(description="Every version of what is in the trash")


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str


class RefreshRequest(Strict):
    refresh_token: str = Field(min_length=1, max_length=512)


class PasswordChange(Strict):
    old_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: bool
    nodes_up: int
    nodes_needed: int
