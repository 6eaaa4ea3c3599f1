"""``create_dav_app(ctx)``: WebDAV (class 1 and 2) for ``/dav/``, mounted in the API app.

wsgidav speaks the protocol (PROPFIND, PROPPATCH, MKCOL, GET/HEAD with Range, PUT, DELETE,
COPY, MOVE, LOCK/UNLOCK, If headers); it runs in a2wsgi's worker threads behind ``DavGate``,
which authenticates and bounds every request first. Files live in ``provider.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from a2wsgi import WSGIMiddleware
from starlette.types import ASGIApp
from wsgidav.error_printer import ErrorPrinter
from wsgidav.request_resolver import RequestResolver
from wsgidav.wsgidav_app import WsgiDAVApp

from minidropbox.api.context import AppContext
from minidropbox.dav.checksums import Checksums
from minidropbox.dav.error_pages import JsonErrors
from minidropbox.dav.gate import PREFIX, DavGate
from minidropbox.dav.locks import DbLockManager, DbLockStorage
from minidropbox.dav.properties import DbPropertyManager
from minidropbox.dav.provider import MiniDropboxProvider

# Worker threads for WebDAV requests (each holds one while it runs); bytes cross to the
# event loop one block at a time, so these bound concurrency, not memory.
WORKERS = 16
# Requests whose reads (the caller's mount points, the entry, checksums, dead properties) all
# come before any write of their own and before they answer: each reads in one transaction
# (``DavSession.share_reads``) instead of one per lookup.
SHARED_READS = frozenset({"PROPFIND", "MKCOL"})
BLOCK_SIZE = 1024 * 1024


def dav_config(ctx: AppContext, checksums: Checksums) -> dict[str, Any]:
    return {
        "provider_mapping": {"/": MiniDropboxProvider(checksums)},
        "mount_path": PREFIX,
        # Authentication is DavGate's; no directory browser (the web app is the browser).
        # Errors answer in the product's JSON body (``error_pages.py``).
        "middleware_stack": [ErrorPrinter, JsonErrors, RequestResolver],
        # Finder, Explorer and office suites need class 2; ``create_dav_app`` puts the locks
        # in the metadata database (a stand-in storage here, replaced before any request).
        "lock_storage": True,
        "property_manager": DbPropertyManager(ctx.db),
        "block_size": BLOCK_SIZE,
        "verbose": 1,
        "logging": {"enable": False},
        "add_header_MS_Author_Via": True,
        "mutable_live_props": ["{DAV:}getlastmodified", "{DAV:}lastmodified"],
        "hotfixes": {"emulate_win32_lastmod": True, "unquote_path_info": False,
                     "re_encode_path_info": True},
        "dir_browser": {"enable": False},
    }


def create_dav_app(ctx: AppContext) -> ASGIApp:
    checksums = Checksums(ctx.db)
    wsgi = WsgiDAVApp(dav_config(ctx, checksums))
    # Locks in the metadata database, so that every API replica sees the same ones.
    locks = DbLockManager(DbLockStorage(ctx.db))
    wsgi.lock_manager = locks
    for provider in wsgi.provider_map.values():
        provider.set_lock_manager(locks)

    def with_session(environ: dict[str, Any],
                     start_response: Callable[..., Any]) -> Iterator[bytes]:
        session = environ["asgi.scope"]["minidropbox.dav"]
        environ["minidropbox.dav"] = session
        environ["wsgidav.auth.user_name"] = session.principal.username
        environ["wsgidav.auth.realm"] = "Mini-Dropbox"
        # wsgidav does its work while its response is iterated: each step runs with the
        # request's session known to its thread.
        if environ.get("REQUEST_METHOD") in SHARED_READS:
            session.share_reads()
        session.enter()
        try:
            result = iter(wsgi(environ, start_response))
        finally:
            session.leave()
        try:
            while True:
                session.enter()
                try:
                    block = next(result, None)
                finally:
                    session.leave()
                    # Those methods have read all they answer with once their first block
                    # is out (wsgidav builds a multistatus whole).
                    session.end_reads()
                if block is None:
                    return
                yield block
        finally:  # the end of the body, or a client that went away: release what it held
            session.end_reads()
            close = getattr(result, "close", None)
            if close is not None:
                close()

    return DavGate(WSGIMiddleware(with_session, workers=WORKERS),  # type: ignore[arg-type]
                   ctx, locks, checksums)
