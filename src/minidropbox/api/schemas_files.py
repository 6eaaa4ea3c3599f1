"""Request and response models for chunks, files, versions and trash."""

from __future__ import annotations

from pydantic import BaseModel, Field

from minidropbox.api.schemas import Count, Strict, Timestamp, VersionNumber

Hash = str


class MissingRequest(Strict):
    hashes: list[Hash] = Field(max_length=10_000)
    # The chunks' sizes, in the same order: asks for upload grants (direct transfers).
    sizes: list[Count] | None = Field(default=None, max_length=10_000)


class UploadGrant(BaseModel):
    hash: Hash
    size: int
    nodes: list[str]  # URLs to PUT the chunk at, in order
    copies: int  # how many of them must hold it (R): a failed node's place goes to the next
    grant: str  # ``Authorization: Grant <grant>``


class MissingResponse(BaseModel):
    missing: list[Hash]
    # Only when sizes were sent: grants for the missing chunks the nodes take directly.
    uploads: list[UploadGrant] | None = None


class ReceiptsRequest(Strict):
    receipts: list[str] = Field(max_length=1000)


class CorruptCopyReport(Strict):
    node: str = Field(max_length=2048)


class RefusedReceipt(BaseModel):
    hash: Hash
    error: dict[str, str]


class ReceiptsResponse(BaseModel):
    recorded: list[Hash]
    refused: list[RefusedReceipt]




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


class CommitWithReceipts(Commit):
    # Storage nodes' receipts for chunks sent to them directly, recorded before the commit
    # is judged (as POST /chunks/receipts would): one request instead of two.
    receipts: list[str] = Field(default_factory=list, max_length=1000)


class CommitBatch(Strict):
    commits: list[Commit] = Field(max_length=1000)
    receipts: list[str] = Field(default_factory=list, max_length=1000)


MAX_CONTENTS_FILES = 256  # files per POST /files/contents


class ContentsItem(Strict):
    path: str = Field(max_length=8192)
    version: VersionNumber | None = None


class ContentsRequest(Strict):
    files: list[ContentsItem] = Field(min_length=1, max_length=MAX_CONTENTS_FILES)


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
    # Members who lost a shared folder the owner deleted (it was unshared first).
    unshared: int = 0


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


class PlannedChunk(BaseModel):
    hash: Hash
    size: int
    offset: int
    nodes: list[str]  # URLs to GET it from, in order (empty: only through the API)
    grant: str | None


class ReadPlan(BaseModel):
    entry: Entry
    chunks: list[PlannedChunk]
    next_offset: int | None
