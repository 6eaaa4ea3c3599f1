"""``/docs`` and ``/redoc`` come with their assets from the API itself: nothing is loaded
from another origin (the pages' CSP would refuse it), the vendored bundles carry their
licences, and no path leads outside the assets folder."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.harness import ServerProcess


@pytest.fixture(scope="module")
def http(module_api: ServerProcess) -> Iterator[httpx.Client]:
    """These tests only read what the API serves: one API for all of them."""
    with httpx.Client(base_url=module_api.url, timeout=30) as client:
        yield client


@pytest.mark.parametrize(("page", "assets"), [
    ("/docs", {"/docs/assets/swagger-ui.css", "/docs/assets/swagger-ui-bundle.js",
               "/docs/assets/swagger-init.js"}),
    ("/redoc", {"/docs/assets/redoc.standalone.js", "/docs/assets/redoc-init.js"}),
])
def test_docs_pages_load_only_local_assets(http: httpx.Client, page: str,
                                           assets: set[str]) -> None:
    r = http.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "http" not in csp and "unsafe-eval" not in csp
    assert "<script>" not in r.text  # no inline script: the CSP forbids it
    refs = set(re.findall(r'(?:src|href)="([^"]+)"', r.text))
    assert refs == assets
    for ref in refs:
        asset = http.get(ref)
        assert asset.status_code == 200, ref
        assert asset.headers["content-type"].split(";")[0] in ("text/javascript", "text/css")
        assert "cache-control" in asset.headers and "no-store" not in asset.headers[
            "cache-control"]
    assert http.get("/openapi.json").json()["info"]["title"] == "Mini-Dropbox"


def test_the_vendored_bundles_carry_their_licences(http: httpx.Client) -> None:
    assert "Apache License" in http.get("/docs/assets/LICENSE.swagger-ui").text
    assert "MIT License" in http.get("/docs/assets/LICENSE.redoc").text
    assert http.get("/docs/assets/NOTICE.swagger-ui").status_code == 200
    assert http.get("/docs/assets/swagger-ui-bundle.js.LICENSE.txt").status_code == 200


@pytest.mark.parametrize("name", ["nothing.js", "..%2Fdocs_pages.py", "docs_pages.py",
                                  "%2E%2E%2F__init__.py", ".hidden.js", "__init__.py"])
def test_nothing_but_the_assets_is_served(http: httpx.Client, name: str) -> None:
    r = http.get(f"/docs/assets/{name}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
