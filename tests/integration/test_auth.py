"""Accounts and sessions, against a real API process over HTTP."""

from __future__ import annotations

import base64
import json
import time

import httpx
import jwt

from tests.conftest import PASSWORD, bearer, signup_and_login


def _error(r: httpx.Response) -> dict[str, str]:
    body = r.json()
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"])
    return body["error"]  # type: ignore[no-any-return]


def test_signup_login_me(http: httpx.Client) -> None:
    tokens = signup_and_login(http, "Alice")
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 900
    r = http.get("/api/v1/auth/me", headers=bearer(tokens))
    assert r.status_code == 200
    assert r.json()["username"] == "alice"


def test_signup_rules(http: httpx.Client) -> None:
    ok = {"username": "bob", "password": PASSWORD}
    assert http.post("/api/v1/auth/signup", json=ok).status_code == 201
    dup = http.post("/api/v1/auth/signup", json={**ok, "username": "BOB"})
    assert dup.status_code == 409 and _error(dup)["code"] == "already_exists"
    for name in ["ab", "x" * 33, "has space", "émile", "semi;colon"]:
        r = http.post("/api/v1/auth/signup", json={"username": name, "password": PASSWORD})
        assert r.status_code == 400, name
        assert _error(r)["code"] == "invalid_input"
    short = http.post("/api/v1/auth/signup", json={"username": "carol", "password": "123456789"})
    assert short.status_code == 400 and "10" in _error(short)["message"]


def test_validation_errors_use_the_error_body(http: httpx.Client) -> None:
    cases = [
        http.post("/api/v1/auth/signup", json={"username": "x"}),
        http.post("/api/v1/auth/signup", content=b"{not json", headers={"content-type":
                                                                          "application/json"}),
        http.post("/api/v1/auth/login", json={"username": "a", "password": "b", "is_admin": True}),
        http.post("/api/v1/auth/signup", json=[1, 2, 3]),
    ]
    for r in cases:
        assert r.status_code == 422, r.text
        assert _error(r)["code"] == "validation_error"
    assert _error(http.get("/nope"))["code"] == "not_found"
    assert http.put("/healthz").status_code == 405


def test_unknown_user_and_wrong_password_look_the_same(http: httpx.Client) -> None:
    signup_and_login(http, "dave")
    wrong = http.post("/api/v1/auth/login", json={"username": "dave", "password": "x" * 12})
    unknown = http.post("/api/v1/auth/login", json={"username": "nobody", "password": "x" * 12})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def test_refresh_rotates_and_reuse_revokes_the_session(http: httpx.Client) -> None:
    tokens = signup_and_login(http, "erin")
    r1 = http.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r1.status_code == 200
    rotated = r1.json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert http.get("/api/v1/auth/me", headers=bearer(rotated)).status_code == 200
    # The old refresh token comes back: somebody copied it. The whole session ends.
    reuse = http.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert reuse.status_code == 401
    assert http.get("/api/v1/auth/me", headers=bearer(rotated)).status_code == 401
    again = http.post("/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert again.status_code == 401


def test_logout_revokes_at_once(http: httpx.Client) -> None:
    tokens = signup_and_login(http, "frank")
    assert http.post("/api/v1/auth/logout", headers=bearer(tokens)).status_code == 204
    r = http.get("/api/v1/auth/me", headers=bearer(tokens))
    assert r.status_code == 401 and _error(r)["code"] == "unauthorized"
    r = http.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_bad_tokens_are_refused(http: httpx.Client) -> None:
    tokens = signup_and_login(http, "grace")
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    header, payload, signature = tokens["access_token"].split(".")
    forged = [
        _b64({"alg": "none", "typ": "JWT"}) + "." + payload + ".",
        jwt.encode(claims, "not-the-server-key-" * 4, algorithm="HS256"),
        header + "." + _b64({**claims, "sub": "999"}) + "." + signature,
        jwt.encode({**claims, "exp": int(time.time()) - 10}, "x" * 40, algorithm="HS256"),
        "garbage",
    ]
    for token in forged:
        r = http.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, token
        assert _error(r)["code"] == "unauthorized"
    assert http.get("/api/v1/auth/me").status_code == 401


def test_login_throttling(http: httpx.Client) -> None:
    signup_and_login(http, "heidi")
    for _ in range(5):
        r = http.post("/api/v1/auth/login", json={"username": "heidi", "password": "wrong" * 3})
        assert r.status_code == 401
    r = http.post("/api/v1/auth/login", json={"username": "heidi", "password": PASSWORD})
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert _error(r)["code"] == "too_many_requests"


def test_password_change_revokes_other_sessions(http: httpx.Client) -> None:
    first = signup_and_login(http, "ivan")
    second = http.post("/api/v1/auth/login",
                       json={"username": "ivan", "password": PASSWORD}).json()
    r = http.post("/api/v1/auth/password", headers=bearer(first),
                  json={"old_password": "wrong password!", "new_password": "new password 1"})
    assert r.status_code == 400
    r = http.post("/api/v1/auth/password", headers=bearer(first),
                  json={"old_password": PASSWORD, "new_password": "new password 1"})
    assert r.status_code == 204
    assert http.get("/api/v1/auth/me", headers=bearer(first)).status_code == 200
    assert http.get("/api/v1/auth/me", headers=bearer(second)).status_code == 401
    r = http.post("/api/v1/auth/login", json={"username": "ivan", "password": "new password 1"})
    assert r.status_code == 200


def test_health_and_docs(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").status_code == 200
    spec = http.get("/openapi.json").json()
    assert "/api/v1/auth/login" in spec["paths"]
    assert http.get("/docs").status_code == 200
