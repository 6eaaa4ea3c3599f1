"""Chunk upload and the dedup query (the delta-sync path)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from minidropbox.api.bounded_json import BoundedJsonRoute
from minidropbox.api.deps import Context, CurrentUser
from minidropbox.api.schemas import error_responses
from minidropbox.api.schemas_files import (
    BatchStored,
    MissingRequest,
    MissingResponse,
    StoredChunk,
)
from minidropbox.core.chunking import check_chunk_hash
from minidropbox.core.errors import InvalidInput

router = APIRouter(prefix="/api/v1/chunks", tags=["chunks"], route_class=BoundedJsonRoute)


@router.post("/missing", response_model=MissingResponse,
             responses=error_responses(400, 401, 422, 429))
def missing(body: MissingRequest, principal: CurrentUser, ctx: Context) -> MissingResponse:
    """Which of these chunks must this user upload? (Never reveals other users' chunks.)"""
    return MissingResponse(missing=ctx.chunks.missing(principal, body.hashes))


@router.put("/{chunk_hash}", status_code=201, response_model=StoredChunk,
            responses=error_responses(400, 401, 413, 429, 503, 507),
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/octet-stream": {"schema": {"type": "string",
                                                        "format": "binary"}}}}})
async def put_chunk(chunk_hash: str, request: Request, principal: CurrentUser,
                    ctx: Context) -> StoredChunk:
    """Upload one chunk (at most 8 MiB); the body must hash to its name."""
    check_chunk_hash(chunk_hash)
    data = await request.body()
    size = await ctx.chunks.store(principal, chunk_hash, data)
    return StoredChunk(hash=chunk_hash, size=size)


@router.post("/batch", status_code=201, response_model=BatchStored,
             responses=error_responses(400, 401, 413, 429, 503, 507),
             openapi_extra={"requestBody": {"required": True, "content": {
                 "multipart/form-data": {"schema": {"type": "object",
                                                    "additionalProperties": {
                                                        "type": "string",
                                                        "format": "binary"}}}}}})
async def put_chunks_batch(request: Request, principal: CurrentUser,
                           ctx: Context) -> BatchStored:
    """Upload several small chunks in one request: one multipart part per chunk, named by
    its hash (8 MiB in all). The many-small-files path."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidInput("Send the chunks as multipart/form-data, one part per chunk.")
    try:
        form = await request.form(max_files=2000, max_fields=2000)
    except (MultiPartException, HTTPException) as exc:  # HTTPException: starlette's 400
        raise InvalidInput("The multipart body could not be parsed.") from exc
    parts: list[tuple[str, bytes]] = []
    try:
        for name, value in form.multi_items():
            check_chunk_hash(name)
            if not isinstance(value, UploadFile):
                data = value.encode()
            else:
                data = await value.read()
            parts.append((name, data))
    finally:
        await form.close()
    if not parts:
        raise InvalidInput("The batch holds no chunks.")
    gate = asyncio.Semaphore(8)

    async def store(name: str, data: bytes) -> StoredChunk:
        async with gate:
            return StoredChunk(hash=name, size=await ctx.chunks.store(principal, name, data))

    stored = await asyncio.gather(*(store(n, d) for n, d in parts))
    return BatchStored(stored=list(stored))
