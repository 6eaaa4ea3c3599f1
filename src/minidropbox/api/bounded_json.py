"""JSON request bodies with a cap on the keys of any one object.

Validation of a model that forbids unknown fields builds one error per unknown key: a 4 MiB
body of 300,000 keys costs seconds of CPU on the event loop and hundreds of MiB. Counting
keys while the JSON is parsed (``object_pairs_hook``) refuses such a body at parse speed,
before any model sees it. Every router of the API uses ``BoundedJsonRoute``.
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


def load_bounded(body: bytes, max_keys: int) -> Any:
    """``json.loads`` that raises a 413 error for an object with more than ``max_keys`` keys."""
    def bounded_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        if len(pairs) > max_keys:
            raise _TooManyKeys(max_keys)
        return dict(pairs)

    return json.loads(body, object_pairs_hook=bounded_object)


class BoundedJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            limit: int = self.app.state.ctx.settings.max_json_keys
            body = await self.body()
            # A body of megabytes takes tens of milliseconds to parse: off the event loop,
            # so other requests keep being served meanwhile.
            self._json = (load_bounded(body, limit) if len(body) < OFFLOAD_BYTES else
                          await anyio.to_thread.run_sync(load_bounded, body, limit))
        return self._json


class BoundedJsonRoute(APIRoute):
    """An API route whose JSON body is parsed by ``BoundedJsonRequest``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def bounded_handler(request: Request) -> Response:
            return await handler(BoundedJsonRequest(request.scope, request.receive))

        return bounded_handler
