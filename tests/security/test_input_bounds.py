"""Input the audit found answered with a 500, stored broken, or paid for in CPU: every number
fits the database, timestamps are finite and in range, names hold no invisible or control
characters, JSON bodies have a cap on their values and objects on their keys (on every route
that reads JSON), and ``Allow`` names what a path really serves."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from fastapi.routing import APIRoute

from minidropbox.api.app import create_app
from minidropbox.api.bounded_json import BoundedJsonRoute
from minidropbox.settings import Settings
from tests.security.conftest import new_user

MAX_JSON_KEYS = 1000  # the default of max_json_keys
MAX_JSON_VALUES = 100_000  # the default of max_json_values
HUGE = str(2**63)


def _upload(client: httpx.Client, auth: dict[str, str], path: str, data: bytes) -> int:
    r = client.put("/api/v1/files/content", headers=auth, params={"path": path}, content=data)
    assert r.status_code == 201, r.text
    version: int = r.json()["version"]
    return version


def test_json_objects_have_a_key_cap(client: httpx.Client) -> None:
    # 300,000 unknown keys once cost seconds of validation and hundreds of MiB, anonymously.
    body = b"{" + b",".join(b'"k%d":0' % i for i in range(300_000)) + b"}"
    r = client.post("/api/v1/auth/login", content=body,
                    headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large", r.text[:300]
    r = client.post("/api/v1/auth/login", json={f"k{i}": 0 for i in range(MAX_JSON_KEYS + 1)})
    assert r.status_code == 413, r.text[:300]
    assert f"more than {MAX_JSON_KEYS} keys" in r.json()["error"]["message"]
    # Nested objects are counted too, and a body within the cap is judged as before.
    user = new_user(client, "keys")
    nested = {"path": "/x", "size": 0, "chunks": [],
              "device": {f"k{i}": 0 for i in range(MAX_JSON_KEYS + 1)}}
    r = client.post("/api/v1/files/commit", headers=user.auth, json=nested)
    assert r.status_code == 413, r.text[:300]
    r = client.post("/api/v1/auth/login", json={f"k{i}": 0 for i in range(MAX_JSON_KEYS)})
    assert r.status_code == 422


def test_json_bodies_have_a_value_cap(client: httpx.Client) -> None:
    # Parsing holds the GIL however it is threaded: a body of millions of tiny values once
    # stalled every request of every account for a second or more.
    zeros = b"[" + b",".join([b"0"] * 2_000_000) + b"]"
    started = time.monotonic()
    r = client.post("/api/v1/auth/login", content=zeros,
                    headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large", r.text[:300]
    assert f"{MAX_JSON_VALUES} values" in r.json()["error"]["message"]
    assert time.monotonic() - started < 10
    # The largest legitimate kind of body, 4 MiB of chunk hashes, is within the cap.
    user = new_user(client, "values")
    hashes = [f"{i:064x}" for i in range(60_000)]
    r = client.post("/api/v1/chunks/missing", headers=user.auth, json={"hashes": hashes})
    assert r.status_code != 413, r.text[:300]


def _routes(routes: list[object]) -> Iterator[object]:
    for route in routes:
        yield route
        inner = getattr(route, "original_router", None)  # an included router, kept as one
        if inner is not None:
            yield from _routes(inner.routes)


def test_every_route_that_reads_json_is_bounded(tmp_path: Path,
                                                client: httpx.Client) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    with_body = [r for r in _routes(app.routes) if isinstance(r, APIRoute) and r.body_field]
    assert len(with_body) > 20
    unbounded = [f"{sorted(r.methods)} {r.path}" for r in with_body
                 if not isinstance(r, BoundedJsonRoute)]
    assert not unbounded, unbounded
    # The web app's login, anonymous, like the API's.
    keys = b"{" + b",".join(b'"k%d":0' % i for i in range(300_000)) + b"}"
    r = client.post("/api/v1/auth/session", content=keys, headers={
        "content-type": "application/json", "origin": str(client.base_url).rstrip("/")})
    assert r.status_code == 413, r.text[:300]


def test_numbers_beyond_64_bits_are_refused(client: httpx.Client) -> None:
    user = new_user(client, "ints")
    version = _upload(client, user.auth, "/n.txt", b"numbers")
    calls = [
        ("GET", "/api/v1/files/content", {"params": {"path": "/n.txt", "version": HUGE}}),
        ("GET", "/api/v1/files/list", {"params": {"path": "/", "limit": HUGE}}),
        ("GET", "/api/v1/trash", {"params": {"limit": HUGE}}),
        ("GET", "/api/v1/changes", {"params": {"limit": HUGE}}),
        ("POST", "/api/v1/files/restore", {"json": {"path": "/n.txt", "version": 2**63}}),
        # Version numbers are 32-bit in the schema (PostgreSQL's integer).
        ("POST", "/api/v1/files/restore", {"json": {"path": "/n.txt", "version": 2**31}}),
        ("POST", "/api/v1/files/commit", {"json": {"path": "/n.txt", "size": 2**63,
                                                   "chunks": []}}),
        ("POST", "/api/v1/files/commit", {"json": {"path": "/n.txt", "size": 0, "chunks": [],
                                                   "parent_version": 2**63}}),
        ("DELETE", "/api/v1/files", {"params": {"path": "/n.txt"},
                                     "headers": {"If-Match": HUGE}}),
        ("PUT", "/api/v1/files/content", {"params": {"path": "/n.txt"}, "content": b"x",
                                          "headers": {"If-Match": HUGE}}),
    ]
    for method, url, kwargs in calls:
        headers = {**user.auth, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
        r = client.request(method, url, headers=headers, **kwargs)  # type: ignore[arg-type]
        assert r.status_code in (400, 422), (method, url, kwargs, r.status_code, r.text)
        assert r.json()["error"]["code"] in ("validation_error", "invalid_input")
    r = client.get("/api/v1/files/content", headers=user.auth,
                   params={"path": "/n.txt", "version": version})
    assert r.status_code == 200 and r.content == b"numbers"


def test_timestamps_are_finite_and_in_range(client: httpx.Client) -> None:
    user = new_user(client, "mtime")
    headers = {**user.auth, "content-type": "application/json"}
    for mtime in ("NaN", "Infinity", "-Infinity", "1e20", "253402300800", "false", "true",
                  '"5"'):
        body = '{"path": "/t.txt", "size": 0, "chunks": [], "mtime": ' + mtime + "}"
        r = client.post("/api/v1/files/commit", headers=headers, content=body)
        assert r.status_code == 422, (mtime, r.status_code, r.text)
    for value in ("nan", "inf", "1e20", "-1e300"):
        r = client.put("/api/v1/files/content", params={"path": "/t.txt"}, content=b"t",
                       headers={**user.auth, "X-Mtime": value})
        assert r.status_code == 422, (value, r.status_code, r.text)
    # In range: stored, and the version downloads with its Last-Modified.
    for mtime in (0, 1_700_000_000.5, 253402300799, -1):
        r = client.post("/api/v1/files/commit", headers=user.auth, json={
            "path": f"/ok-{mtime}.txt", "size": 0, "chunks": [], "mtime": mtime})
        assert r.status_code == 201, (mtime, r.text)
        r = client.get("/api/v1/files/content", headers=user.auth,
                       params={"path": f"/ok-{mtime}.txt"})
        assert r.status_code == 200 and r.headers["last-modified"], (mtime, r.text)
    listing = client.get("/api/v1/files/list", headers=user.auth, params={"path": "/"})
    assert listing.status_code == 200


# One of each kind the audit named, and their relatives.
INVISIBLE = {
    "C1 control CSI": "\u009b",
    "C1 control NEL": "\u0085",
    "DEL": "\u007f",
    "right-to-left override": "\u202e",
    "left-to-right isolate": "\u2066",
    "zero-width space": "\u200b",
    "byte-order mark": "\ufeff",
    "line separator": "\u2028",
    "paragraph separator": "\u2029",
    "word joiner": "\u2060",
    "right-to-left mark": "\u200f",
}


def test_names_refuse_controls_bidi_overrides_and_invisible_characters(
        client: httpx.Client) -> None:
    user = new_user(client, "names")
    for label, char in INVISIBLE.items():
        for name in (f"/a{char}b", f"/folder{char}/x.txt", f"/{char}"):
            r = client.post("/api/v1/files/folder", headers=user.auth, json={"path": name})
            assert r.status_code == 400, (label, name, r.status_code, r.text)
            assert r.json()["error"]["code"] == "invalid_path"
        r = client.put("/api/v1/files/content", headers=user.auth, content=b"x",
                       params={"path": f"/evil{char}gpj.exe"})
        assert r.status_code == 400, (label, r.text)
    # Scripts and emoji that need joiners, and ordinary non-Latin names, are fine.
    persian = "/\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # needs a ZWNJ
    for name in ("/\U0001f469\u200d\U0001f4bb notes", persian, "/\u65e5\u672c\u8a9e",
                 "/Ma\u00f1ana \u00e9t\u00e9"):
        r = client.post("/api/v1/files/folder", headers=user.auth, json={"path": name})
        assert r.status_code == 201, (name, r.text)


def test_allow_names_every_method_a_path_serves(client: httpx.Client) -> None:
    expected = {
        "/api/v1/chunks/batch": {"POST", "OPTIONS"},
        "/api/v1/chunks/missing": {"POST", "OPTIONS"},
        "/api/v1/chunks/" + "0" * 64: {"PUT", "OPTIONS"},
        "/api/v1/files/content": {"GET", "HEAD", "PUT", "OPTIONS"},
        "/api/v1/trash": {"GET", "HEAD", "DELETE", "OPTIONS"},
        "/api/v1/files": {"DELETE", "OPTIONS"},
    }
    for path, methods in expected.items():
        r = client.options(path)
        assert r.status_code == 204, (path, r.status_code)
        assert set(r.headers["allow"].replace(" ", "").split(",")) == methods, \
            (path, r.headers["allow"])
    # A method a path does not serve: 405 with the same, complete Allow.
    r = client.post("/api/v1/files/content")
    assert r.status_code == 405
    assert set(r.headers["allow"].replace(" ", "").split(",")) == \
        expected["/api/v1/files/content"]
    assert client.options("/api/v1/no/such/route").status_code == 404
