"""A file version as an HTTP response: ETag, Last-Modified, single ``Range`` (with
``If-Range``), ``If-None-Match``, streamed and verified chunk by chunk. Shared by the API's
download route, the web app's views and share links."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.utils import formatdate
from typing import Any

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from minidropbox.api.context import AppContext
from minidropbox.core.ranges import parse_range
from minidropbox.service.accounts import Principal


async def file_response(request: Request, ctx: AppContext, principal: Principal, path: str,
                        version: int | None, media_type: str = "application/octet-stream",
                        extra_headers: dict[str, str] | None = None) -> Response:
    entry, chunk_list = await run_in_threadpool(ctx.files.content, principal, path, version)
    headers = {"X-Version": str(entry["version"]), "Cache-Control": "private, no-cache",
               **(extra_headers or {})}
    return await content_response(request, ctx, entry, chunk_list, media_type, headers)


def _range_applies(if_range: str | None, etag: str, last_modified: str) -> bool:
    """``If-Range`` (RFC 9110 §13.1.5): the range only while the representation is the one
    the client has (a strong ETag, or the exact Last-Modified date); else the whole body."""
    return if_range is None or if_range.strip() in (etag, last_modified)


async def content_response(request: Request, ctx: AppContext, entry: dict[str, Any],
                           chunk_list: list[tuple[str, int]],
                           media_type: str = "application/octet-stream",
                           extra_headers: dict[str, str] | None = None,
                           conditional: bool = True, tag: str | None = None) -> Response:
    """``entry`` (its size, content hash and modification time) as a response made of
    ``chunk_list``; the ETag is ``tag`` if given, else the content hash. ``conditional=False``
    answers every request with the whole body (for links that count each download, where a
    range or a 304 would count as one or let one slip by)."""
    size = entry["size"]
    etag = f'"{tag or entry["content_hash"]}"'
    last_modified = formatdate(entry["modified"], usegmt=True)
    headers = {"ETag": etag, "Last-Modified": last_modified,
               "Accept-Ranges": "bytes" if conditional else "none", **(extra_headers or {})}
    byte_range = None
    if conditional:
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        if _range_applies(request.headers.get("if-range"), etag, last_modified):
            byte_range = parse_range(request.headers.get("range"), size)
    if size == 0:
        return Response(b"", media_type=media_type, headers=headers)
    start, end = byte_range or (0, size - 1)
    stream = ctx.chunks.stream(chunk_list, start, end)
    # Fetch the first block before answering, so an unreadable file is a clean 503.
    first = await anext(stream)

    async def body() -> AsyncIterator[bytes | memoryview]:
        yield first
        async for block in stream:
            yield block

    headers["Content-Length"] = str(end - start + 1)
    status = 200
    if byte_range:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return StreamingResponse(body(), status_code=status, headers=headers,
                             media_type=media_type)
