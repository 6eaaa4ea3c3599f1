"""``create_app(settings)``: the API service's one composition root."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.routing import compile_path

from minidropbox import __version__
from minidropbox.api import docs_pages, metrics
from minidropbox.api.context import AppContext, build_context
from minidropbox.api.errors import install_error_handlers
from minidropbox.api.middleware import AllowedMethods, BodyLimit, SecurityHeaders
from minidropbox.api.routes import (
    admin,
    admin_users,
    app_passwords,
    auth,
    changes,
    chunks,
    files,
    health,
    links_public,
    notifications,
    shares,
    trash,
    usage,
)
from minidropbox.api.timeouts import BodyPace
from minidropbox.dav.app import create_dav_app
from minidropbox.metrics import MetricsMiddleware
from minidropbox.settings import Settings
from minidropbox.web import install as install_web_app

ROUTERS = [health.router, auth.router, chunks.router, files.router, trash.router,
           changes.router, notifications.router, admin.router, admin_users.router, metrics.router,
           shares.router, links_public.router,
           app_passwords.router, usage.router, docs_pages.router]


def create_app(settings: Settings, ctx: AppContext | None = None) -> FastAPI:
    ctx = ctx or build_context(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await ctx.start()
        try:
            yield
        finally:
            await ctx.stop()
            ctx.db.dispose()

    # /docs and /redoc come from api/docs_pages.py, with their assets served from here.
    # FastAPI's built-in OpenTelemetry is off: the service keeps its own metrics (/metrics),
    # and with it on every request asked OpenTelemetry whether providers were configured,
    # 3% of the samples of a small WebDAV PUT under py-spy.
    app = FastAPI(title="Mini-Dropbox", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None,
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    app.state.ctx = ctx
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/dav", create_dav_app(ctx))  # WebDAV: the caller's tree, app passwords
    # Matched first: routing tries routes in order, and a /dav/ request tried every API route
    # (and each included router's version) before reaching its mount — a tenth of the API's
    # CPU for a small WebDAV PUT. No API route lies under /dav, so nothing else changes.
    app.router.routes.insert(0, app.router.routes.pop())
    install_web_app(app)
    app.add_middleware(AllowedMethods, methods_for=_methods_by_path(app))
    app.add_middleware(BodyPace, window=settings.body_window)
    app.add_middleware(BodyLimit, max_bytes=settings.max_json_bytes,
                       streaming_prefixes=("/api/v1/chunks/",),
                       chunk_limit=settings.max_chunk_bytes)
    if settings.cors_origins:
        # An explicit allow-list only; "*" is refused because it would go with credentials.
        origins = [o for o in settings.cors_origins if o != "*"]
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_credentials=True,
                           allow_methods=["*"], allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(SecurityHeaders)
    # Outermost, so requests refused by the other middleware are counted too.
    app.add_middleware(MetricsMiddleware, metrics=ctx.metrics.http)
    return app


HTTP_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "PATCH"})


def _methods_by_path(app: FastAPI) -> Callable[[str], frozenset[str]]:
    """``path -> methods`` over every operation of the app's schema (built on first use).

    A path that is a route of its own (``/chunks/batch``) has only that route's methods, not
    those of a template that would also match (``/chunks/{chunk_hash}``).
    """
    literal: dict[str, set[str]] = {}
    templates: list[tuple[re.Pattern[str], frozenset[str]]] = []

    def load() -> None:
        for template, operations in app.openapi()["paths"].items():
            methods = {m.upper() for m in operations} & HTTP_METHODS
            if "GET" in methods:
                methods.add("HEAD")
            if "{" in template:
                templates.append((compile_path(template)[0], frozenset(methods)))
            else:
                literal.setdefault(template, set()).update(methods)

    def methods_for(path: str) -> frozenset[str]:
        if not literal:
            load()
        found = literal.get(path) or {m for regex, methods in templates if regex.match(path)
                                      for m in methods}
        return frozenset(found | {"OPTIONS"}) if found else frozenset()

    return methods_for
