"""A file version as an HTTP response: ETag, Last-Modified, single ``Range``, streamed and
verified chunk by chunk. Shared by the API's download route and the web app's views."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.utils import formatdate

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
    size = entry["size"]
    etag = f'"{entry["content_hash"]}"'
    headers = {"ETag": etag, "Last-Modified": formatdate(entry["modified"], usegmt=True),
               "Accept-Ranges": "bytes", "X-Version": str(entry["version"]),
               "Cache-Control": "private, no-cache", **(extra_headers or {})}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
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
