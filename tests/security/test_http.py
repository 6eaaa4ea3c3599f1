"""HTTP hardening (OWASP API8): security headers on every answer, errors included, and CORS
off unless an explicit allow-list names the origin; never ``*`` with credentials."""

from __future__ import annotations

import httpx

from tests.harness import ServerProcess, TestCluster
from tests.security.conftest import EDGE_ORIGIN, MiB, new_user

EXPECTED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def _check_headers(r: httpx.Response, label: str) -> None:
    for key, value in EXPECTED.items():
        assert r.headers.get(key) == value, f"{label}: {key}={r.headers.get(key)}"
    assert "frame-ancestors 'none'" in r.headers.get("content-security-policy", ""), label
    assert r.headers.get("cache-control"), label
    assert "access-control-allow-origin" not in r.headers, label


def test_security_headers_on_every_answer(client: httpx.Client,
                                          sec_cluster: TestCluster) -> None:
    user = new_user(client, "hdr")
    spec = client.get("/openapi.json").json()
    seen = 0
    for path, ops in spec["paths"].items():
        url = path.replace("{", "").replace("}", "")
        for method in ops:
            # Refused without a token; reads also with one (writes could end the session).
            for headers in ({}, user.auth) if method == "get" else ({},):
                r = client.request(method.upper(), url, headers=headers)
                _check_headers(r, f"{method.upper()} {path} -> {r.status_code}")
                seen += 1
    assert seen >= 35
    data = b"headers on a download too"
    client.put("/api/v1/files/content", headers=user.auth, params={"path": "/h.txt"},
               content=data)
    others = [
        client.get("/api/v1/files/content", headers=user.auth, params={"path": "/h.txt"}),
        client.get("/api/v1/files/content", headers={**user.auth, "Range": "bytes=0-3"},
                   params={"path": "/h.txt"}),
        client.get("/no/such/page"),
        client.delete("/healthz"),
        client.post("/api/v1/auth/login", content=b"{", headers={"content-type":
                                                                   "application/json"}),
        client.post("/api/v1/auth/login", content=b"x" * (5 * MiB)),  # 413 from middleware
        client.put("/api/v1/chunks/" + "0" * 64, headers=user.auth, content=b"x"),
        client.get("/docs"),
    ]
    for r in others:
        _check_headers(r, f"{r.request.method} {r.request.url.path} -> {r.status_code}")
    assert {r.status_code for r in others} >= {200, 206, 404, 405, 413, 422, 400}


def test_cors_is_off_by_default(client: httpx.Client) -> None:
    for origin in ("https://evil.example", "null", "http://127.0.0.1"):
        r = client.get("/healthz", headers={"Origin": origin})
        assert "access-control-allow-origin" not in r.headers
        r = client.options("/api/v1/auth/login", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization"})
        assert "access-control-allow-origin" not in r.headers
        assert "access-control-allow-credentials" not in r.headers


def test_cors_allow_list(edge_api: ServerProcess) -> None:
    """The edge API is configured with ``CORS_ORIGINS=https://app.example,*``: the listed
    origin is allowed, with credentials; the ``*`` is dropped, so no other origin is."""
    with httpx.Client(base_url=edge_api.url, timeout=30) as c:
        preflight = {"Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "authorization,content-type"}
        r = c.options("/api/v1/auth/login", headers={"Origin": EDGE_ORIGIN, **preflight})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == EDGE_ORIGIN
        assert r.headers["access-control-allow-credentials"] == "true"
        r = c.get("/healthz", headers={"Origin": EDGE_ORIGIN})
        assert r.headers["access-control-allow-origin"] == EDGE_ORIGIN
        _check_headers_but_cors(r)
        for origin in ("https://evil.example", "https://app.example.evil.example", "null",
                       "http://app.example"):
            r = c.options("/api/v1/auth/login", headers={"Origin": origin, **preflight})
            assert r.headers.get("access-control-allow-origin") in (None, EDGE_ORIGIN), origin
            assert r.headers.get("access-control-allow-origin") != "*"
            r = c.get("/healthz", headers={"Origin": origin})
            assert "access-control-allow-origin" not in r.headers, origin


def _check_headers_but_cors(r: httpx.Response) -> None:
    for key, value in EXPECTED.items():
        assert r.headers.get(key) == value
