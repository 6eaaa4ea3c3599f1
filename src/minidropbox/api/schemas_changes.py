"""Response models for the change journal, long-polling, and the server description."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Change(BaseModel):
    cursor: str = Field(description="Resume from here to get only the changes after this one.")
    op: str = Field(description="commit | restore | move | delete | undelete | mkdir")
    path: str
    from_path: str | None = Field(None, description="Where a move came from (moves only).")
    type: str = Field(description="file | folder")
    version: int | None = None
    size: int | None = None
    content_hash: str | None = None
    time: float = Field(description="When the change was made, epoch seconds (server clock).")


class ChangePage(BaseModel):
    entries: list[Change]
    cursor: str
    has_more: bool


class WaitResult(BaseModel):
    changes: bool
    cursor: str = Field(description="The newest cursor; fetch /changes from your own cursor.")


class ServerInfo(BaseModel):
    generation: str = Field(description="Changes when the server is restored from a backup.")
    version: str
    api: str = "v1"
    replicas: int
    time: float
    max_page_size: int
    max_chunk_bytes: int
    max_batch_commits: int
    journal_retention: int
    longpoll_max_timeout: float
    ws_ping_interval: float
