"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), served from this package: the API's docs
work on a machine without internet, and no third-party origin is trusted by the pages' CSP.

The assets in ``docs_assets/`` are the unmodified release bundles of swagger-ui-dist 5.35.0
(Apache-2.0, ``LICENSE.swagger-ui``, ``NOTICE.swagger-ui``) and redoc 2.5.4 (MIT,
``LICENSE.redoc``), with their third-party notices (``*.LICENSE.txt``) and without the
source-map comments; ``swagger-init.js`` and ``redoc-init.js`` are ours (no inline script, so
the pages run under ``script-src 'self'``). To update: ``npm pack swagger-ui-dist redoc``,
copy the same files, and run ``tests/integration/test_docs_pages.py``.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from minidropbox.core.errors import NotFound

router = APIRouter(include_in_schema=False)

TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".txt": "text/plain; charset=utf-8"}
LICENCES = ("LICENSE.swagger-ui", "NOTICE.swagger-ui", "LICENSE.redoc")
# Scripts and styles from this origin only; both UIs set inline styles, ReDoc runs its search
# in a worker made from a blob, and Swagger UI's "try it out" calls this API.
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
            "worker-src blob:; frame-ancestors 'none'")

SWAGGER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Mini-Dropbox API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/swagger-init.js"></script></body></html>
"""
REDOC_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Mini-Dropbox API</title></head>
<body><div id="redoc"></div>
<script src="/docs/assets/redoc.standalone.js"></script>
<script src="/docs/assets/redoc-init.js"></script></body></html>
"""


def _page(html: str) -> HTMLResponse:
    return HTMLResponse(html, headers={"content-security-policy": DOCS_CSP})


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    return _page(SWAGGER_PAGE)


@router.get("/redoc")
def redoc() -> HTMLResponse:
    return _page(REDOC_PAGE)


@router.get("/docs/assets/{name}")
def asset(name: str) -> Response:
    """One file of ``docs_assets/`` by its exact name (no paths: the folder is flat)."""
    folder = files("minidropbox.api") / "docs_assets"
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    kind = TYPES.get(suffix) or (TYPES[".txt"] if name in LICENCES else None)
    if kind is None or "/" in name or name.startswith("."):
        raise NotFound("No such docs asset.")
    resource = folder / name
    if not resource.is_file():
        raise NotFound("No such docs asset.")
    return Response(resource.read_bytes(), media_type=kind.split(";")[0], headers={
        "content-type": kind, "cache-control": "public, max-age=86400"})
