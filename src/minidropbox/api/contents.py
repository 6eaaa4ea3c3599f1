"""Many small files in one answer (``POST /files/contents``): the many-small-files download.

A sync that receives thousands of small files would otherwise make one request each, and the
round trip, not the bytes, would set the pace. The answer is a stream: for each file asked
for, in order, one JSON line — its entry (``path``, ``version``, ``size``, ``content_hash``,
``modified``), or ``{path, error: {code, message}}`` for one that cannot be had (gone, a
folder, no such version) — then exactly ``size`` bytes of it. The chunks of all the files
are read before the answer starts, in batch reads (``ChunkService.read_files``: one request
per node), each verified, bad copies handled as ``GET /files/content`` handles them.
Bounded: ``MAX_CONTENTS_FILES`` files of at most ``MAX_FILE_BYTES`` each, ``MAX_BYTES`` in
all; a request past a bound is refused whole (413) before a byte is sent, so a client asks
for big files one by one.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from minidropbox.api.context import AppContext
from minidropbox.api.schemas_files import ContentsItem
from minidropbox.core.errors import InvalidInput, NotFound, PayloadTooLarge
from minidropbox.service.accounts import Principal

MEDIA_TYPE = "application/x-minidropbox-contents"
MAX_FILE_BYTES = 1024 * 1024
MAX_BYTES = 16 * 1024 * 1024

Found = tuple[dict[str, Any], list[tuple[str, int]]] | dict[str, Any]


def _resolve(ctx: AppContext, principal: Principal, items: list[ContentsItem]) -> list[Found]:
    """Each file's entry and chunk list, or its error line; refused whole past a bound."""
    found: list[Found] = []
    total = 0
    answers = ctx.files.contents(principal, [(item.path, item.version) for item in items])
    for item, answer in zip(items, answers, strict=True):
        if isinstance(answer, (NotFound, InvalidInput)):
            found.append({"path": item.path,
                          "error": {"code": answer.code, "message": answer.message}})
            continue
        entry, chunk_list = answer
        if entry["size"] > MAX_FILE_BYTES:
            raise PayloadTooLarge(f"{entry['path']} is larger than {MAX_FILE_BYTES} bytes; "
                                  "download it on its own (GET /files/content).")
        total += entry["size"]
        found.append((entry, chunk_list))
    if total > MAX_BYTES:
        raise PayloadTooLarge(f"These files hold {total} bytes, more than {MAX_BYTES} in one "
                              "request; ask for fewer at once.")
    return found


async def contents_response(ctx: AppContext, principal: Principal,
                            items: list[ContentsItem]) -> StreamingResponse:
    found = await run_in_threadpool(_resolve, ctx, principal, items)
    # Every file's bytes at once (at most MAX_BYTES), read from the nodes in batch reads: a
    # request per node, not one per small file.
    files = [one for one in found if not isinstance(one, dict)]
    contents = await ctx.chunks.read_files([chunk_list for _, chunk_list in files])
    data = {id(one): body for one, body in zip(files, contents, strict=True)}

    async def body() -> AsyncIterator[bytes]:
        for one in found:
            if isinstance(one, dict):
                yield json.dumps(one).encode() + b"\n"
                continue
            entry = one[0]
            head = {k: entry[k] for k in ("path", "version", "size", "content_hash",
                                          "modified")}
            yield json.dumps(head).encode() + b"\n" + data[id(one)]

    return StreamingResponse(body(), media_type=MEDIA_TYPE,
                             headers={"Cache-Control": "private, no-cache"})
