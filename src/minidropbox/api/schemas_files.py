"""Request and response models for chunks, files, versions and trash."""

from __future__ import annotations

from pydantic import BaseModel, Field

from minidropbox.api.schemas import Count, Strict, Timestamp, VersionNumber

Hash = str


class MissingRequest(Strict):
    hashes: list[Hash] = Field(max_length=10_000)


class MissingResponse(BaseModel):
    missing: list[Hash]


class StoredChunk(BaseModel):
    hash: Hash
    size: int


class BatchStored(BaseModel):
    stored: list[StoredChunk]


class Commit(Strict):
    path: str = Field(max_length=8192)
    size: Count
    chunks: list[Hash] = Field(max_length=100_000)
    parent_version: VersionNumber | None = None
    mtime: Timestamp | None = None
    device: str = Field(default="", max_length=128)


class CommitBatch(Strict):
    commits: list[Commit] = Field(max_length=1000)


class Entry(BaseModel):
    path: str
    name: str
    type: str
    size: int | None = None
    version: int | None = None
    modified: float
    content_hash: str | None = None


class CommitError(BaseModel):
    code: str
    message: str
    current_version: int | None = None
    chunk: str | None = None


class CommitResult(BaseModel):
    ok: bool
    entry: Entry | None = None
    path: str | None = None
    error: CommitError | None = None


class CommitBatchResponse(BaseModel):
    results: list[CommitResult]


class Listing(BaseModel):
    entries: list[Entry]
    cursor: str | None = None


class PathBody(Strict):
    path: str = Field(max_length=8192)


class MoveBody(Strict):
    from_path: str = Field(alias="from", max_length=8192)
    to: str = Field(max_length=8192)


class Deleted(BaseModel):
    path: str
    deleted: int


class Version(BaseModel):
    version: int
    size: int
    content_hash: str
    modified: float
    created_at: float
    device: str
    author: str | None = None  # who made it (in a shared folder: which member)


class Versions(BaseModel):
    versions: list[Version]


class RestoreBody(Strict):
    path: str = Field(max_length=8192)
    version: VersionNumber


class TrashEntry(Entry):
    deleted_at: float


class Trash(BaseModel):
    entries: list[TrashEntry]


class Purged(BaseModel):
    purged: int
