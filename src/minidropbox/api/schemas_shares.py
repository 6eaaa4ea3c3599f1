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


class FolderInvite(Strict):
    path: str = Field(max_length=8192)
    username: str = Field(min_length=1, max_length=64)
    role: str = Field(default="editor", pattern="^(editor|viewer)$")


class Invited(BaseModel):
    path: str
    username: str
    role: str
    state: str


class FolderPath(Strict):
    path: str = Field(max_length=8192)


class Member(BaseModel):
    username: str
    role: str
    state: str


class Members(BaseModel):
    path: str
    name: str
    owner: str
    role: str
    members: list[Member]


class SharedFolder(BaseModel):
    path: str
    name: str
    owner: str
    role: str
    members: int


class SharedFolders(BaseModel):
    folders: list[SharedFolder]


class Invite(BaseModel):
    invite_id: int
    name: str
    owner: str
    role: str
    created_at: float


class Invites(BaseModel):
    invites: list[Invite]


class Accept(Strict):
    as_path: str | None = Field(default=None, max_length=8192)


class Mounted(BaseModel):
    path: str
    name: str
    owner: str
    role: str
