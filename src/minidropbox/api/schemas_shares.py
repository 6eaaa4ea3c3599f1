"""Request and response models for share links and shared folders."""

from __future__ import annotations

from pydantic import BaseModel, Field

from minidropbox.api.schemas import Strict


class LinkCreate(Strict):
    path: str = Field(max_length=8192)
    password: str | None = Field(default=None, min_length=1, max_length=1024)
    expires_in: float | None = Field(default=None, description="seconds from now")
    max_downloads: int | None = None
    upload_only: bool = False
    show_owner: bool = False


class Link(BaseModel):
    link_id: str
    path: str
    type: str
    mode: str
    password_protected: bool
    show_owner: bool
    expires_at: float | None = None
    max_downloads: int | None = None
    downloads: int
    last_used_at: float | None = None
    created_at: float
    token: str | None = Field(default=None, description="only in the answer that made it")
    share_url: str | None = Field(default=None, description="only in the answer that made it")


class Links(BaseModel):
    links: list[Link]


class LinkEntry(BaseModel):
    path: str
    name: str
    type: str
    size: int | None = None
    modified: float


class LinkView(BaseModel):
    name: str
    type: str
    mode: str
    owner: str | None = None
    path: str
    entry: LinkEntry | None = None
    entries: list[LinkEntry] | None = None


class Dropped(BaseModel):
    received: int
