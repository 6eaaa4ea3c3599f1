"""Access and refresh tokens (RFC 8725): only an HS256 token the server signed, naming a live
session of the user it names, opens the API. Adds to tests/integration/test_auth.py, which
covers `alg: none`, a wrong key, a tampered payload, logout and refresh reuse."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy

from tests.conftest import PASSWORD, bearer
from tests.harness import TestCluster
from tests.security.conftest import database, new_user, secrets_of

ME = "/api/v1/auth/me"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _token(header: dict[str, Any], claims: dict[str, Any], key: bytes | None,
           digest: Callable[..., Any] = hashlib.sha256) -> str:
    """A JWT built by hand, so the header can say anything (PyJWT refuses to lie)."""
    signing_input = (_b64(json.dumps(header).encode()) + "." +
                     _b64(json.dumps(claims).encode()))
    signature = hmac.new(key, signing_input.encode(), digest).digest() if key else b""
    return signing_input + "." + _b64(signature)


def _refused(client: httpx.Client, token: str) -> None:
    r = client.get(ME, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, (token[:80], r.text)
    assert r.json()["error"]["code"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"


def test_forged_access_tokens_are_refused(client: httpx.Client,
                                          sec_cluster: TestCluster) -> None:
    owner, other = new_user(client, "tok"), new_user(client, "tok")
    key = secrets_of(sec_cluster.tmp / "api-data")["jwt_secret"].encode()
    cluster_secret = sec_cluster.secret.encode()
    claims = jwt.decode(owner.tokens["access_token"], options={"verify_signature": False})
    other_claims = jwt.decode(other.tokens["access_token"], options={"verify_signature": False})
    assert client.get(ME, headers=owner.auth).status_code == 200
    # The hand-built HS256 token with the real key works: the cases below fail for their
    # one defect, not because of how they were built.
    assert client.get(ME, headers=bearer({"access_token": _token(
        {"alg": "HS256", "typ": "JWT"}, claims, key)})).status_code == 200

    now = int(time.time())
    hs256 = {"alg": "HS256", "typ": "JWT"}
    forged = {
        "alg none": _token({"alg": "none"}, claims, None),
        "alg None": _token({"alg": "None"}, claims, None),
        "HS512 with the real key": _token({"alg": "HS512"}, claims, key, hashlib.sha512),
        "HS384 with the real key": _token({"alg": "HS384"}, claims, key, hashlib.sha384),
        "RS256 header, HMAC signature (alg confusion)": _token({"alg": "RS256"}, claims, key),
        "ES256 header": _token({"alg": "ES256"}, claims, key),
        "no alg": _token({"typ": "JWT"}, claims, key),
        "missing exp": _token(hs256, {k: v for k, v in claims.items() if k != "exp"}, key),
        "missing sid": _token(hs256, {k: v for k, v in claims.items() if k != "sid"}, key),
        "missing sub": _token(hs256, {k: v for k, v in claims.items() if k != "sub"}, key),
        "missing iat": _token(hs256, {k: v for k, v in claims.items() if k != "iat"}, key),
        "expired": _token(hs256, {**claims, "iat": now - 3600, "exp": now - 5}, key),
        "not yet valid": _token(hs256, {**claims, "nbf": now + 3600}, key),
        "typ refresh": _token(hs256, {**claims, "typ": "refresh"}, key),
        "no typ": _token(hs256, {k: v for k, v in claims.items() if k != "typ"}, key),
        "unknown session": _token(hs256, {**claims, "sid": "0" * 32}, key),
        "another user's id on this session": _token(hs256, {**claims,
                                                            "sub": other_claims["sub"]}, key),
        "sub that is not a number": _token(hs256, {**claims, "sub": "1 OR 1=1"}, key),
        "sub too big": _token(hs256, {**claims, "sub": "9" * 30}, key),
        "sub in other digits": _token(hs256, {**claims, "sub": "\u00b2"}, key),
        "signed with the cluster secret": _token(hs256, claims, cluster_secret),
        "signature of another token": owner.tokens["access_token"].rsplit(".", 1)[0] + "." +
        other.tokens["access_token"].rsplit(".", 1)[1],
        "refresh token as access token": owner.tokens["refresh_token"],
        "oversized": "a" * 8000,
        "two dots only": "..",
    }
    for name, token in forged.items():
        try:
            _refused(client, token)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
    for header in ["Bearer", "Basic dXNlcjpwYXNz", f"Token {owner.tokens['access_token']}",
                   f"bearer  {owner.tokens['access_token']}x"]:
        assert client.get(ME, headers={"Authorization": header}).status_code == 401, header
    assert client.get(ME, headers=owner.auth).status_code == 200  # nothing above hurt A


def test_access_token_as_refresh_token_is_refused(client: httpx.Client) -> None:
    user = new_user(client, "tok")
    for token in [user.tokens["access_token"], user.tokens["refresh_token"] + "x",
                  user.tokens["refresh_token"].split(".")[0], "", "." * 3]:
        r = client.post("/api/v1/auth/refresh", json={"refresh_token": token})
        assert r.status_code in (401, 422), (token, r.text)


def test_password_change_ends_other_sessions_refresh_tokens(client: httpx.Client) -> None:
    user = new_user(client, "tok")
    other = client.post("/api/v1/auth/login",
                        json={"username": user.name, "password": PASSWORD}).json()
    r = client.post("/api/v1/auth/password", headers=user.auth,
                    json={"old_password": PASSWORD, "new_password": PASSWORD + "2"})
    assert r.status_code == 204
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert r.status_code == 401
    assert client.get(ME, headers=bearer(other)).status_code == 401
    # The session that changed the password keeps working, refresh included.
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": user.tokens["refresh_token"]})
    assert r.status_code == 200
    assert client.get(ME, headers=bearer(r.json())).status_code == 200


def test_deleted_session_ends_its_tokens(client: httpx.Client,
                                         sec_cluster: TestCluster) -> None:
    user = new_user(client, "tok")
    sid = jwt.decode(user.tokens["access_token"], options={"verify_signature": False})["sid"]
    engine = database(sec_cluster)
    try:
        with engine.begin() as conn:
            gone = conn.execute(sqlalchemy.text("DELETE FROM sessions WHERE id = :sid"),
                                {"sid": sid}).rowcount
    finally:
        engine.dispose()
    assert gone == 1
    _refused(client, user.tokens["access_token"])
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": user.tokens["refresh_token"]})
    assert r.status_code == 401


def test_refresh_reuse_after_several_rotations(client: httpx.Client) -> None:
    """Any spent refresh token, not only the last one, ends the session."""
    user = new_user(client, "tok")
    spent = [user.tokens["refresh_token"]]
    current = user.tokens
    for _ in range(3):
        current = client.post("/api/v1/auth/refresh",
                              json={"refresh_token": current["refresh_token"]}).json()
        spent.append(current["refresh_token"])
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": spent[1]})
    assert r.status_code == 401
    assert client.get(ME, headers=bearer(current)).status_code == 401
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": current["refresh_token"]})
    assert r.status_code == 401


@pytest.mark.parametrize("how", ["subprotocol", "first message"])
def test_notifications_socket_refuses_forged_tokens(client: httpx.Client,
                                                    sec_cluster: TestCluster, how: str) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    user = new_user(client, "tok")
    claims = jwt.decode(user.tokens["access_token"], options={"verify_signature": False})
    url = sec_cluster.url.replace("http://", "ws://") + "/api/v1/notifications"
    for token in [_token({"alg": "none"}, claims, None), "garbage", user.tokens["refresh_token"]]:
        protocols: Any = ["bearer", token] if how == "subprotocol" else None
        with connect(url, subprotocols=protocols, open_timeout=10) as ws:
            if how == "first message":
                ws.send(json.dumps({"token": token}))
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401, token
