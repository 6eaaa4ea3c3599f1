"""JSON request bodies with a cap on the values in the body and on the keys of any object.

Validation of a model that forbids unknown fields builds one error per unknown key: a 4 MiB
body of 300,000 keys costs seconds of CPU on the event loop and hundreds of MiB. Counting
keys while the JSON is parsed (``object_pairs_hook``) refuses such a body before any model
sees it.

Parsing itself is the next cost: ``json.loads`` holds the GIL from start to end, so while it
reads a body of millions of tiny values (300,000 keys, or ``[0,0,0,...]``: 1.5 s on a busy
2-core machine) no other request of any account is served, thread or no thread. Before parsing,
the values and keys a body can hold are bounded from above by counting its commas, colons and
brackets (at memory speed); past ``max_json_values`` it is refused unparsed. A body of chunk
hashes, the largest legitimate kind, holds about 63,000 in 4 MiB.

Every router of the API uses ``BoundedJsonRoute``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import anyio.to_thread
from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

OFFLOAD_BYTES = 64 * 1024


class _TooManyKeys(HTTPException):
    # An HTTPException: FastAPI's body parsing re-raises those instead of answering 400.
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"A JSON object in the body has more than {limit} keys.")


class _TooManyValues(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"A JSON body may hold at most {limit} values.")


def most_values(body: bytes) -> int:
    """An upper bound on the values and keys in the JSON text ``body``: every one but the
    first comes after a comma, a colon or an opening bracket (those inside strings only make
    the bound looser)."""
    return (body.count(b",") + body.count(b":") + body.count(b"[") + body.count(b"{") + 1)


def load_bounded(body: bytes, max_keys: int, max_values: int) -> Any:
    """``json.loads`` that raises a 413 error for a body that may hold more than
    ``max_values`` values, or an object with more than ``max_keys`` keys."""
    if most_values(body) > max_values:
        raise _TooManyValues(max_values)

    def bounded_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        if len(pairs) > max_keys:
            raise _TooManyKeys(max_keys)
        return dict(pairs)

    return json.loads(body, object_pairs_hook=bounded_object)


class BoundedJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            settings = self.app.state.ctx.settings
            keys: int = settings.max_json_keys
            values: int = settings.max_json_values
            body = await self.body()
            # A body of megabytes takes tens of milliseconds to parse: off the event loop (the
            # GIL is still held meanwhile: hence the bound on values).
            self._json = (load_bounded(body, keys, values) if len(body) < OFFLOAD_BYTES else
                          await anyio.to_thread.run_sync(load_bounded, body, keys, values))
        return self._json


class BoundedJsonRoute(APIRoute):
    """An API route whose JSON body is parsed by ``BoundedJsonRequest``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def bounded_handler(request: Request) -> Response:
            return await handler(BoundedJsonRequest(request.scope, request.receive))

        return bounded_handler
