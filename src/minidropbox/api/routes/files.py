"""Files and folders: commit, upload, download, browse, move, delete, versions, restore."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from minidropbox.api.bounded_json import BoundedJsonRoute
from minidropbox.api.contents import MEDIA_TYPE, contents_response
from minidropbox.api.context import AppContext
from minidropbox.api.deps import Context, CurrentUser
from minidropbox.api.file_response import file_response
from minidropbox.api.schemas import MAX_INT64, MAX_VERSION, error_responses
from minidropbox.api.schemas_files import (
    Commit,
    CommitBatch,
    CommitBatchResponse,
    CommitWithReceipts,
    ContentsRequest,
    Deleted,
    Entry,
    Listing,
    MoveBody,
    PathBody,
    ReadPlan,
    RestoreBody,
    Versions,
)
from minidropbox.core.errors import InvalidInput, InvalidPath, NotFound
from minidropbox.core.paths import check_characters, lookup_path, name_of
from minidropbox.core.timestamps import MAX_TIMESTAMP, MIN_TIMESTAMP
from minidropbox.service.accounts import Principal
from minidropbox.service.direct import MAX_PLAN_CHUNKS
from minidropbox.service.files import CommitRequest

router = APIRouter(prefix="/api/v1/files", tags=["files"], route_class=BoundedJsonRoute)
PathQuery = Annotated[str, Query(max_length=8192, description="/folder/name")]
ERRORS = error_responses(400, 401, 404, 409, 422, 429)


def _request(c: Commit) -> CommitRequest:
    return CommitRequest(path=c.path, size=c.size, chunks=c.chunks,
                         parent_version=c.parent_version, mtime=c.mtime, device=c.device)


@router.post("/commit", status_code=201, response_model=Entry, responses=ERRORS)
def commit(body: CommitWithReceipts, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    """Make a new version from uploaded chunks (409 if ``parent_version`` is not current).
    ``receipts`` from the storage nodes are recorded first; a chunk whose receipts are
    refused is then a 400 ``missing_chunk`` like any chunk not sent."""
    if body.receipts:
        ctx.direct.record_receipts(principal, body.receipts)
    return ctx.files.commit(principal, _request(body))


@router.post("/commit_batch", response_model=CommitBatchResponse, responses=ERRORS)
def commit_batch(body: CommitBatch, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    """Up to 1,000 commits in one request, each judged on its own (``receipts`` as for
    ``/commit``, recorded first)."""
    if body.receipts:
        ctx.direct.record_receipts(principal, body.receipts)
    return {"results": ctx.files.commit_batch(principal, [_request(c) for c in body.commits])}


@router.get("/metadata", response_model=Entry, responses=ERRORS)
def metadata(path: PathQuery, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    """One entry."""
    return ctx.files.metadata(principal, path)


LISTED_FIELDS = tuple(Entry.model_fields)


@router.get("/list", response_model=Listing, responses=ERRORS)
def list_folder(principal: CurrentUser, ctx: Context, path: PathQuery = "/",
                recursive: bool = False,
                limit: Annotated[int | None, Query(ge=1, le=MAX_INT64)] = None,
                cursor: Annotated[str | None, Query(max_length=8192)] = None) -> Response:
    """A folder's entries (everything under it with ``recursive``), paged by ``cursor``."""
    page = ctx.files.listing(principal, path, recursive, limit, cursor)
    # Encoded here, each entry cut to the fields of ``Entry`` as the response model would:
    # having pydantic validate a page of 10,000 entries took a quarter of the listing's time.
    body = {"entries": [{k: e.get(k) for k in LISTED_FIELDS} for e in page["entries"]],
            "cursor": page["cursor"]}
    return Response(json.dumps(body, ensure_ascii=False, allow_nan=False,
                               separators=(",", ":")).encode(), media_type="application/json")


@router.post("/folder", status_code=201, response_model=Entry, responses=ERRORS)
def create_folder(body: PathBody, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    """Create a folder (and its parents)."""
    return ctx.files.mkdir(principal, body.path)


@router.post("/move", response_model=Entry, responses=ERRORS)
def move(body: MoveBody, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    """Move or rename; a folder moves with everything in it. No data is copied."""
    return ctx.files.move(principal, body.from_path, body.to)


@router.post("/copy", status_code=201, response_model=Entry,
             responses=error_responses(400, 401, 403, 404, 409, 422, 429, 507))
def copy(body: MoveBody, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    """Copy a file, or a folder with everything in it, to ``to`` (which must not exist).

    No data moves: each copy's version lists the source's chunks, so it costs no quota bytes;
    it counts as new files for the metadata limits. Within your own files or within one
    shared folder (400 between them)."""
    return ctx.files.copy(principal, body.from_path, body.to)


@router.delete("", response_model=Deleted, responses=ERRORS)
def delete(path: PathQuery, principal: CurrentUser, ctx: Context,
           if_match: Annotated[str | None, Header(max_length=32)] = None) -> dict[str, Any]:
    """Move a file or folder (with its contents) to the trash.

    ``If-Match: <version>`` deletes a file only while that version is current (else 409)."""
    return ctx.files.delete(principal, path, _version_header(if_match))


@router.get("/versions", response_model=Versions, responses=ERRORS)
def versions(path: PathQuery, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    """Every version of a file, newest first."""
    return {"versions": ctx.files.versions(principal, path)}


@router.post("/restore", status_code=201, response_model=Entry, responses=ERRORS)
def restore(body: RestoreBody, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    """Roll back: a new version with an old version's content."""
    return ctx.files.restore(principal, body.path, body.version)


@router.get("/content", response_model=None,
            responses={**ERRORS, 200: {"content": {"application/octet-stream": {}}},
                       206: {"content": {"application/octet-stream": {}}},
                       **error_responses(416, 503)})
async def download(path: PathQuery, request: Request, principal: CurrentUser, ctx: Context,
                   version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
                   ) -> Response:
    """The file's bytes (a single ``Range`` is honoured), verified chunk by chunk."""
    return await file_response(request, ctx, principal, path, version)


@router.post("/contents", response_model=None,
             responses={**ERRORS, 200: {"content": {MEDIA_TYPE: {}}},
                        **error_responses(413, 503)})
async def download_many(body: ContentsRequest, principal: CurrentUser,
                        ctx: Context) -> Response:
    """Several small files in one answer: per file, in order, a JSON line (its entry, or
    its error) then exactly ``size`` bytes, verified (``api/contents.py``). At most 256
    files of at most 1 MiB, 16 MiB in all (413: ask for big files one by one)."""
    return await contents_response(ctx, principal, body.files)


@router.get("/chunks", response_model=ReadPlan, responses=ERRORS)
def read_plan(path: PathQuery, principal: CurrentUser, ctx: Context,
              version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
              offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
              limit: Annotated[int, Query(ge=1, le=MAX_PLAN_CHUNKS)] = MAX_PLAN_CHUNKS,
              ) -> dict[str, Any]:
    """Where the file's bytes are: from the chunk holding byte ``offset``, at most ``limit``
    chunks with their offsets, the storage nodes holding them and a read grant each, so a
    client fetches them from the nodes directly (``/content`` is the same bytes through the
    API)."""
    return ctx.direct.read_plan(principal, ctx.files, path, version, offset, limit)


@router.put("/content", status_code=201, response_model=Entry,
            responses=error_responses(400, 401, 409, 413, 422, 429, 503, 507),
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/octet-stream": {"schema": {"type": "string",
                                                        "format": "binary"}}}}})
async def upload(path: PathQuery, request: Request, principal: CurrentUser, ctx: Context,
                 if_match: Annotated[str | None, Header(max_length=32)] = None,
                 x_mtime: Annotated[float | None, Header(
                     allow_inf_nan=False, ge=MIN_TIMESTAMP, le=MAX_TIMESTAMP)] = None,
                 ) -> dict[str, Any]:
    """Upload a whole file in one streamed request (curl-friendly); the server chunks it.

    ``If-Match: <version>`` makes it conditional (409 when the file moved on); without it the
    upload replaces whatever is current.
    """
    clean = lookup_path(path)
    await run_in_threadpool(_check_upload_name, ctx, principal, clean)
    parent = _version_header(if_match)
    declared = request.headers.get("content-length")
    stored = await ctx.chunks.store_stream(
        principal, request.stream(), int(declared) if declared and declared.isdigit() else None)
    req = CommitRequest(path=clean, size=stored.size, chunks=stored.chunks,
                        parent_version=parent, mtime=x_mtime, overwrite=if_match is None)
    return await run_in_threadpool(ctx.files.commit, principal, req)


def _check_upload_name(ctx: AppContext, principal: Principal, path: str) -> None:
    """Refuse a new name that breaks the character rules before any byte is stored (the commit
    checks again): only a file stored under such a name before the rules may be replaced."""
    try:
        check_characters(path)
        return
    except InvalidPath:
        try:
            ctx.files.metadata(principal, path)
            return
        except NotFound:
            check_characters(name_of(path))  # a new file under an old folder is fine


def _version_header(if_match: str | None) -> int | None:
    """The version number in an ``If-Match`` header (quotes allowed), or None."""
    if if_match is None:
        return None
    token = if_match.strip().strip('"')
    if not (token.isascii() and token.isdigit()) or int(token) > MAX_VERSION:
        raise InvalidInput("If-Match must be a version number.")
    return int(token)
