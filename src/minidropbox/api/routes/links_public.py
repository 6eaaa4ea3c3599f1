"""The public side of share links: ``/s/<token>`` for browsers and scripts, no account.

- ``GET /s/<token>``: the page (a file, a folder's listing, a file-drop form);
  ``?path=/sub`` inside a shared folder.
- ``GET /s/<token>?dl=1``: the file's bytes, or the folder as a streamed zip;
  ``&path=/sub/file`` for one file (or sub-folder) inside a shared folder. A file answers
  ``Range`` (with ``If-Range``) and ``If-None-Match`` against its ``ETag``, except on a link
  with a download limit, which always sends the whole file and counts it;
  ``&inline=1`` serves it for the page's preview (a safe type, sandboxed).
- ``GET /s/<token>/meta``: what the page shows, as JSON.
- ``POST /s/<token>``: file drop (upload-only links): ``multipart/form-data`` with one or more
  ``file`` parts (the page's form), or the raw body with ``?name=``.

A password travels as the HTTP Basic password (``curl -u :PASSWORD``); browsers prompt for it.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from minidropbox.api.context import AppContext
from minidropbox.api.deps import Context
from minidropbox.api.errors import error_response
from minidropbox.api.file_response import content_response
from minidropbox.api.schemas import error_responses
from minidropbox.api.schemas_shares import Dropped, LinkView
from minidropbox.api.share_pages import error_page, link_page
from minidropbox.core.errors import InvalidInput, MiniDropboxError
from minidropbox.service.archive import ZipMember, zip_stream
from minidropbox.service.links import LinkPasswordRequired, OpenLink
from minidropbox.web.content import PDF_CSP, SANDBOX_CSP, content_disposition, preview_type

router = APIRouter(prefix="/s", tags=["share links (public)"])
RelPath = Annotated[str | None, Query(max_length=8192, description="/sub/path inside the link")]
ERRORS = error_responses(400, 401, 403, 404, 422, 429, 503)
HTML = {"text/html": {"schema": {"type": "string"}}}


def _page_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Errors a browser gets as an HTML page, and a script (``dl=1``) as JSON."""
    return {status: {**spec, "content": HTML}
            for status, spec in error_responses(*statuses).items()}

MAX_DROP_FILES = 100  # files in one file-drop request


def _password(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2]


async def _open(ctx: AppContext, token: str, request: Request) -> OpenLink:
    address = request.client.host if request.client else "unknown"
    return await run_in_threadpool(ctx.links.open, token[:256], _password(request), address)


def _failure(exc: MiniDropboxError, as_html: bool) -> Response:
    response: Response = (error_page(exc.status, exc.message) if as_html
                          else error_response(exc))
    if isinstance(exc, LinkPasswordRequired):
        response.headers["WWW-Authenticate"] = 'Basic realm="Shared link", charset="UTF-8"'
    elif exc.status == 401:
        del response.headers["WWW-Authenticate"]
    return response


@router.get("/{token}", response_model=None, responses={
    **_page_errors(400, 401, 403, 404, 416, 422, 429, 503),
    200: {"content": {**HTML, "application/octet-stream": {}, "application/zip": {}}},
    206: {"content": {"application/octet-stream": {}}},
    304: {"description": "not modified (If-None-Match)"}})
async def open_link(token: str, request: Request, ctx: Context, path: RelPath = None,
                    dl: bool = False, inline: bool = False) -> Response:
    """The link's page; with ``dl=1`` the bytes (a file) or a zip (a folder)."""
    try:
        link = await _open(ctx, token, request)
        if dl:
            return await _download(request, ctx, link, path, inline)
        view = await run_in_threadpool(ctx.links.describe, link, path)
        sent = request.query_params.get("sent")
        return link_page(view, link.limited, int(sent) if sent and sent.isdigit() else None)
    except MiniDropboxError as exc:
        return _failure(exc, as_html=not dl)


@router.get("/{token}/meta", response_model=LinkView, responses=ERRORS)
async def link_meta(token: str, request: Request, ctx: Context,
                    path: RelPath = None) -> Any:
    """What the link's page shows, as JSON (paths relative to the shared entry)."""
    try:
        link = await _open(ctx, token, request)
        return await run_in_threadpool(ctx.links.describe, link, path)
    except MiniDropboxError as exc:
        return _failure(exc, as_html=False)


async def _download(request: Request, ctx: AppContext, link: OpenLink, path: str | None,
                    inline: bool) -> Response:
    if link.kind == "folder":
        view = await run_in_threadpool(ctx.links.describe, link, path)
        entry = view.get("entry") or {}
        if entry.get("type") == "folder":
            return await _zip(ctx, link, path)
    entry, chunk_list = await run_in_threadpool(ctx.links.file, link, path)
    byte_range = request.headers.get("range", "")
    if link.limited or not byte_range or byte_range.replace(" ", "").startswith("bytes=0-"):
        # A download is counted once, not once per range a player or a resuming client
        # asks for; a link with a download limit serves no ranges, so none slips by.
        await run_in_threadpool(ctx.links.count_download, link)
    media = preview_type(entry["name"]) if inline else "application/octet-stream"
    headers = {"Content-Disposition": content_disposition(
                   "inline" if inline and media != "application/octet-stream" else "attachment",
                   entry["name"]),
               "Cache-Control": "private, no-cache", "Referrer-Policy": "no-referrer"}
    if inline:
        # The owner's file must never run in this origin: a safe type, sandboxed (PDFs are
        # shown by the browser's own viewer, outside it), framed only by the link's page.
        headers.update({"Content-Security-Policy": PDF_CSP if media == "application/pdf"
                        else SANDBOX_CSP, "X-Frame-Options": "SAMEORIGIN",
                        "Cross-Origin-Resource-Policy": "same-origin"})
    return await content_response(request, ctx, entry, chunk_list, media, headers,
                                  conditional=not link.limited, tag=entry["etag"])


async def _zip(ctx: AppContext, link: OpenLink, path: str | None) -> Response:
    name, files = await run_in_threadpool(ctx.links.folder_files, link, path)
    await run_in_threadpool(ctx.links.count_download, link)
    members = [ZipMember(inside, entry["modified"], entry["size"] or 0)
               for inside, entry, _ in files]

    def read(index: int) -> AsyncIterator[bytes | memoryview]:
        chunk_list = files[index][2]
        return ctx.chunks.stream(chunk_list, 0, members[index].size - 1)

    return StreamingResponse(zip_stream(members, read), media_type="application/zip",
                             headers={"Content-Disposition": content_disposition(
                                 "attachment", f"{name}.zip")})


@router.post("/{token}", status_code=201, response_model=Dropped,
             responses={**_page_errors(400, 401, 403, 404, 409, 422, 429, 503, 507),
                        303: {"description": "a browser's form: back to the page"}})
async def drop_files(token: str, request: Request, ctx: Context,
                     name: Annotated[str | None, Query(max_length=255)] = None) -> Any:
    """File drop: add files to an upload-only link's folder (an existing name is never
    replaced; the new file gets ``name (1).ext``)."""
    is_form = request.headers.get("content-type", "").startswith("multipart/form-data")
    try:
        link = await _open(ctx, token, request)
        ctx.links.require_drop(link)
        if not is_form:
            if not name:
                raise InvalidInput("Give the file's name as ?name=.")
            length = request.headers.get("content-length", "")
            await _drop(ctx, link, name, request.stream(),
                        int(length) if length.isdigit() else None)
            return {"received": 1}
        form = await request.form(max_files=MAX_DROP_FILES, max_fields=10)
        uploads = [v for v in form.getlist("file") if isinstance(v, UploadFile)]
        if not uploads:
            raise InvalidInput("Attach at least one file (form field 'file').")
        for upload in uploads:
            await _drop(ctx, link, upload.filename or "upload", _blocks(upload))
        await form.close()
    except MiniDropboxError as exc:
        return _failure(exc, as_html=is_form)
    if "text/html" in request.headers.get("accept", ""):
        return RedirectResponse(f"{request.url.path}?sent={len(uploads)}", status_code=303)
    return JSONResponse({"received": len(uploads)}, status_code=201)


async def _blocks(upload: UploadFile) -> AsyncIterator[bytes]:
    while block := await upload.read(1 << 20):
        yield block


async def _drop(ctx: AppContext, link: OpenLink, name: str, body: AsyncIterator[bytes],
                declared: int | None = None) -> None:
    """Store a file's chunks as the link owner's (their quota), then add it to the folder."""
    stored = await ctx.chunks.store_stream(link.acting, body, declared)
    await run_in_threadpool(ctx.links.drop, link, os.path.basename(name), stored.size,
                            stored.chunks, None)
