"""Chunk upload and the dedup query (the delta-sync path)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from minidropbox.api.bounded_json import BoundedJsonRoute
from minidropbox.api.deps import Context, CurrentUser
from minidropbox.api.schemas import error_responses
from minidropbox.api.schemas_files import (
    BatchStored,
    CorruptCopyReport,
    MissingRequest,
    MissingResponse,
    ReceiptsRequest,
    ReceiptsResponse,
    RefusedReceipt,
    StoredChunk,
    UploadGrant,
)
from minidropbox.core.chunking import check_chunk_hash
from minidropbox.core.errors import InvalidInput

router = APIRouter(prefix="/api/v1/chunks", tags=["chunks"], route_class=BoundedJsonRoute)


@router.post("/missing", response_model=MissingResponse, response_model_exclude_none=True,
             responses=error_responses(400, 401, 422, 429))
def missing(body: MissingRequest, principal: CurrentUser, ctx: Context) -> MissingResponse:
    """Which of these chunks must this user upload? (Never reveals other users' chunks.)

    With ``sizes`` (one per hash), the answer also has ``uploads``: for each missing chunk
    the storage nodes take directly, their URLs and a grant (docs/PROTOCOL.md, "Direct
    transfers"). A missing chunk without one goes through ``PUT /chunks/{hash}``."""
    absent = ctx.chunks.missing(principal, body.hashes)
    if body.sizes is None:
        return MissingResponse(missing=absent)
    if len(body.sizes) != len(body.hashes):
        raise InvalidInput("sizes must have one entry per hash.")
    sizes = dict(zip(body.hashes, body.sizes, strict=True))
    grants = ctx.direct.upload_grants(principal, [(h, sizes[h]) for h in absent])
    return MissingResponse(missing=absent,
                           uploads=[UploadGrant(**g.as_json()) for g in grants])


@router.post("/receipts", response_model=ReceiptsResponse,
             responses=error_responses(400, 401, 422, 429))
def receipts(body: ReceiptsRequest, principal: CurrentUser,
             ctx: Context) -> ReceiptsResponse:
    """Present the storage nodes' receipts for chunks sent to them directly: each chunk R
    nodes signed for becomes this account's, as if sent through ``PUT /chunks``. A receipt
    not signed by a node of this cluster for this account, or too old, is a 400; a chunk
    that cannot be recorded (a deletion overlapped it, the quota) is listed as refused."""
    outcome = ctx.direct.record_receipts(principal, body.receipts)
    return ReceiptsResponse(
        recorded=outcome.recorded,
        refused=[RefusedReceipt(hash=h, error={"code": e.code, "message": e.message})
                 for h, e in outcome.refused])


@router.post("/{chunk_hash}/corrupt", status_code=202,
             responses=error_responses(400, 401, 422, 429))
async def report_corrupt(chunk_hash: str, body: CorruptCopyReport, principal: CurrentUser,
                         ctx: Context) -> dict[str, bool]:
    """Report that the copy of a chunk read at storage node ``node`` (its URL, as the read
    plan gave it) did not hash to its name. The API checks that copy itself and, if it is
    bad, stops reading it and repairs it; the answer is the same either way."""
    await ctx.direct.check_reported_copy(principal, chunk_hash, body.node)
    return {"accepted": True}


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
    sizes = await ctx.chunks.store_batch(principal, parts)
    return BatchStored(stored=[StoredChunk(hash=name, size=size)
                               for (name, _), size in zip(parts, sizes, strict=True)])
