"""The app's page and assets: ``/`` (one HTML page) and ``/static/`` (ES modules, CSS, icons).

No build step: the browser loads the modules as they are in ``static/``. No inline script
or style anywhere, so the page runs under a Content-Security-Policy that allows only this
origin's files (``APP_CSP``).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

STATIC = Path(__file__).parent / "static"
APP_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; "
           "img-src 'self' blob: data:; media-src 'self'; connect-src 'self'; "
           "frame-src 'self'; manifest-src 'self'; form-action 'self'; base-uri 'none'; "
           "frame-ancestors 'none'")
PAGE_HEADERS = {"Content-Security-Policy": APP_CSP, "Cache-Control": "no-store"}


class _Assets(StaticFiles):
    """Static files, revalidated on every use (an upgraded server's modules load at once)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_cache_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"],
                                      (b"cache-control", b"no-cache"),
                                      (b"content-security-policy", APP_CSP.encode())]
            await send(message)
        await super().__call__(scope, receive, with_cache_header)


def install(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        """The web app."""
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8",
                            headers=PAGE_HEADERS)

    app.mount("/static", _Assets(directory=STATIC), name="static")
