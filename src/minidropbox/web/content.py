"""Files as the browser needs them.

``GET /api/v1/files/view`` serves a file for preview or download so that a user's file can
never run script in the app's origin: it is labelled with a type from an allow-list (images,
audio, video, PDF; everything textual — HTML and SVG sources included — as ``text/plain``),
``nosniff``, ``Content-Disposition`` with the name, and a Content-Security-Policy that
sandboxes it (unique origin, no script) and lets only this origin frame it.

``GET /api/v1/files/zip`` streams a folder as a zip (``service/archive.py``), with flat memory.
"""

from __future__ import annotations

import mimetypes
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from minidropbox.api.deps import Context, CurrentUser
from minidropbox.api.file_response import file_response
from minidropbox.api.schemas import error_responses
from minidropbox.core.errors import InvalidInput
from minidropbox.core.paths import name_of, normalize_path
from minidropbox.service.accounts import Principal
from minidropbox.service.archive import ZipMember, zip_stream

router = APIRouter(prefix="/api/v1/files", tags=["files"])
PathQuery = Annotated[str, Query(max_length=8192, description="/folder/name")]
ERRORS = error_responses(400, 401, 404, 422, 429, 503)

# Types a browser renders without running anything of the file's (images, media, PDF).
RENDERED = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp",
            "image/x-icon", "image/vnd.microsoft.icon", "image/svg+xml",
            "application/pdf", "audio/mpeg", "audio/ogg", "audio/wav", "audio/x-wav",
            "audio/flac", "audio/mp4", "audio/aac", "audio/webm", "video/mp4", "video/webm",
            "video/ogg", "video/quicktime"}
# Shown as plain text: every text/* type (HTML too: as its source) and common code files.
TEXT_TYPES = {"application/json", "application/javascript", "application/xml",
              "application/x-sh", "application/x-python-code", "application/toml",
              "application/x-yaml", "application/yaml", "application/sql"}
TEXT_SUFFIXES = {".py", ".md", ".rs", ".go", ".ts", ".tsx", ".jsx", ".toml", ".yaml", ".yml",
                 ".ini", ".cfg", ".conf", ".log", ".sh", ".rb", ".java", ".kt", ".c", ".h",
                 ".cpp", ".hpp", ".cs", ".php", ".sql", ".lua", ".swift", ".vue", ".env",
                 ".gitignore", ".dockerfile", ".csv", ".tsv", ".txt", ".rst", ".tex"}
# User content: no script, a unique origin (sandbox), framed only by the app. Chromium
# refuses to show a sandboxed PDF, so PDFs get the same policy without the sandbox: its
# viewer runs in the browser's own extension origin, never in ours.
SANDBOX_CSP = ("default-src 'none'; img-src 'self' data:; media-src 'self'; "
               "style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox")
PDF_CSP = "default-src 'none'; frame-ancestors 'self'; object-src 'self'"


def preview_type(name: str) -> str:
    """The Content-Type a file named ``name`` is served with for preview."""
    guessed, _ = mimetypes.guess_type(name, strict=False)
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if guessed in RENDERED:
        return guessed
    if (guessed and (guessed.startswith("text/") or guessed in TEXT_TYPES)) \
            or suffix in TEXT_SUFFIXES:
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


def content_disposition(kind: str, name: str) -> str:
    """``inline``/``attachment`` with the name: an ASCII fallback and the exact UTF-8 name."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_"
                       for c in name) or "download"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@router.get("/view", response_model=None,
            responses={**ERRORS, 200: {"content": {"application/octet-stream": {}}},
                       206: {"content": {"application/octet-stream": {}}},
                       **error_responses(416)})
async def view(path: PathQuery, request: Request, principal: CurrentUser, ctx: Context,
               version: Annotated[int | None, Query(ge=1)] = None,
               download: bool = False) -> Response:
    """A file for the browser: to preview (``inline``, a safe type) or, with ``download``,
    to save under its name. ``Range`` works, so audio and video can seek."""
    name = name_of(normalize_path(path))
    media = preview_type(name)
    if download:
        media = "application/octet-stream"
    headers = {"Content-Disposition": content_disposition(
                   "attachment" if download or media == "application/octet-stream"
                   else "inline", name),
               "Content-Security-Policy": PDF_CSP if media == "application/pdf"
               else SANDBOX_CSP,
               "X-Frame-Options": "SAMEORIGIN",
               "Cross-Origin-Resource-Policy": "same-origin"}
    return await file_response(request, ctx, principal, path, version, media, headers)


@router.get("/zip", response_model=None,
            responses={**ERRORS, 200: {"content": {"application/zip": {}}}})
async def folder_zip(path: PathQuery, principal: CurrentUser, ctx: Context) -> Response:
    """A folder and everything in it as one zip file, streamed as it is read (stored, not
    compressed; zip64 where needed, so it may hold files and totals over 4 GiB)."""
    clean = normalize_path(path)
    top = name_of(clean) if clean != "/" else principal.username
    entries = await run_in_threadpool(_folder_entries, ctx, principal, clean)
    prefix = 1 if clean == "/" else len(clean) + 1
    members = [ZipMember(f"{top}/", time.time(), 0)] + [
        ZipMember(f"{top}/{e['path'][prefix:]}" + ("/" if e["type"] == "folder" else ""),
                  e["modified"] or 0.0, e["size"] or 0) for e in entries]

    async def read(index: int) -> AsyncIterator[bytes | memoryview]:
        entry = entries[index - 1]
        version, chunk_list = await run_in_threadpool(
            ctx.files.content, principal, entry["path"], entry["version"])
        if version["size"]:
            async for block in ctx.chunks.stream(chunk_list, 0, version["size"] - 1):
                yield block

    return StreamingResponse(zip_stream(members, read), media_type="application/zip", headers={
        "Content-Disposition": content_disposition("attachment", f"{top}.zip"),
        "Cache-Control": "private, no-store"})


def _folder_entries(ctx: Context, principal: Principal, folder: str) -> list[dict[str, Any]]:
    """Everything under ``folder``, page by page, up to ``MAX_ZIP_ENTRIES`` (the bound a
    share link's zip has too)."""
    limit = ctx.settings.max_zip_entries
    entries: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = ctx.files.listing(principal, folder, True, None, cursor)
        if page["entries"] and page["entries"][0]["path"] == folder:
            raise InvalidInput(f"{folder} is a file, not a folder.")
        entries += page["entries"]
        if len(entries) > limit:
            raise InvalidInput(f"{folder} holds more than {limit} entries; "
                               "download its folders one by one.")
        cursor = page["cursor"]
        if cursor is None:
            return entries
