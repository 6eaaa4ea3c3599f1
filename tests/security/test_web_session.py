"""The web app's cookie session: flags, CSRF, revocation; user content served so it cannot
script the app; security headers on the app's page."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import PASSWORD, bearer
from tests.harness import ServerProcess, TestCluster, start_api
from tests.security.conftest import User, new_user
from tests.security.routes import upload_small


def browser_login(c: httpx.Client, user: User) -> str:
    """Log in like the web app; returns the CSRF token (the cookie stays in ``c``)."""
    r = c.post("/api/v1/auth/session", json={"username": user.name, "password": PASSWORD},
               headers={"Origin": str(c.base_url).rstrip("/"), "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 200, r.text
    token: str = r.json()["csrf_token"]
    return token


def _set_cookie(r: httpx.Response) -> str:
    cookies = [v for k, v in r.headers.multi_items() if k.lower() == "set-cookie"]
    assert len(cookies) == 1, cookies
    return cookies[0]


def test_cookie_flags_and_no_token_in_the_body(client: httpx.Client) -> None:
    user = new_user(client, "cookie")
    r = client.post("/api/v1/auth/session", json={"username": user.name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    cookie = _set_cookie(r)
    assert cookie.startswith("minidropbox_session=")
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= flags, cookie
    assert "secure" not in flags  # plain HTTP on loopback: a Secure cookie would not come back
    assert cookie.split(";")[0].split("=", 1)[1] not in r.text  # script never sees the token


@pytest.fixture(scope="module")
def proxied_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """An API behind a (pretend) TLS proxy on 127.0.0.1, with zips of at most 3 entries."""
    server = start_api(tmp_path_factory.mktemp("proxied"),
                       env={"trusted_proxies": "127.0.0.1", "max_zip_entries": 3})
    try:
        yield server
    finally:
        server.stop()


def test_cookie_is_secure_behind_a_tls_proxy(proxied_api: ServerProcess) -> None:
    """Behind a TLS-terminating proxy the API trusts (X-Forwarded-Proto), the cookie is
    Secure."""
    with httpx.Client(base_url=proxied_api.url, timeout=30) as c:
        user = new_user(c, "tls")
        r = c.post("/api/v1/auth/session", json={"username": user.name,
                   "password": PASSWORD}, headers={"X-Forwarded-Proto": "https"})
        assert r.status_code == 200, r.text
        assert "secure" in {p.strip().lower() for p in _set_cookie(r).split(";")}


def test_folder_zip_is_bounded(proxied_api: ServerProcess) -> None:
    with httpx.Client(base_url=proxied_api.url, timeout=30) as c:
        user = new_user(c, "zipcap")
        for path in ("/Big/a", "/Big/b", "/Big/c", "/Small/a"):
            assert c.post("/api/v1/files/folder", headers=user.auth,
                          json={"path": path}).status_code == 201
        r = c.get("/api/v1/files/zip", headers=user.auth, params={"path": "/Small"})
        assert r.status_code == 200 and zipfile.ZipFile(io.BytesIO(r.content)).namelist() == [
            "Small/", "Small/a/"]
        c.post("/api/v1/files/folder", headers=user.auth, json={"path": "/Big/d"})
        r = c.get("/api/v1/files/zip", headers=user.auth, params={"path": "/Big"})
        assert r.status_code == 400, r.text
        assert "more than 3 entries" in r.json()["error"]["message"]


def test_state_changes_need_the_csrf_token_and_this_origin(sec_cluster: TestCluster) -> None:
    sec_cluster_url = sec_cluster.url
    with httpx.Client(base_url=sec_cluster_url, timeout=30) as c:
        user = new_user(c, "csrf")
        token = browser_login(c, user)
        assert c.get("/api/v1/files/list", params={"path": "/"}).status_code == 200
        forged = c.post("/api/v1/files/folder", json={"path": "/forged"})
        assert forged.status_code == 403, forged.text
        assert forged.json()["error"]["code"] == "forbidden"
        wrong = c.post("/api/v1/files/folder", json={"path": "/forged"},
                       headers={"X-CSRF-Token": "0" * 64})
        assert wrong.status_code == 403
        cross = c.post("/api/v1/files/folder", json={"path": "/forged"},
                       headers={"X-CSRF-Token": token, "Origin": "http://evil.example"})
        assert cross.status_code == 403
        cross = c.post("/api/v1/files/folder", json={"path": "/forged"},
                       headers={"X-CSRF-Token": token, "Sec-Fetch-Site": "cross-site"})
        assert cross.status_code == 403
        names = [e["name"] for e in c.get("/api/v1/files/list").json()["entries"]]
        assert "forged" not in names
        ok = c.post("/api/v1/files/folder", json={"path": "/mine"},
                    headers={"X-CSRF-Token": token, "Origin": sec_cluster_url})
        assert ok.status_code == 201, ok.text
        # Another session's token does not work for this one.
        other = httpx.Client(base_url=sec_cluster_url, timeout=30)
        with other:
            other_token = browser_login(other, user)
        assert other_token != token
        assert c.post("/api/v1/files/folder", json={"path": "/x"},
                      headers={"X-CSRF-Token": other_token}).status_code == 403
        # Login itself refuses another site (login CSRF).
        r = c.post("/api/v1/auth/session", json={"username": user.name, "password": PASSWORD},
                   headers={"Origin": "http://evil.example"})
        assert r.status_code == 403


def test_logout_and_password_change_end_the_cookie_session(sec_cluster: TestCluster) -> None:
    sec_cluster_url = sec_cluster.url
    with httpx.Client(base_url=sec_cluster_url, timeout=30) as c:
        user = new_user(c, "revoke")
        token = browser_login(c, user)
        cookie = c.cookies["minidropbox_session"]
        r = c.delete("/api/v1/auth/session", headers={"X-CSRF-Token": token})
        assert r.status_code == 204
        assert 'minidropbox_session=""' in _set_cookie(r) or "Max-Age=0" in _set_cookie(r)
        # The old cookie, replayed, is refused at once: the session row is revoked.
        replay = httpx.get(f"{sec_cluster_url}/api/v1/auth/session",
                           cookies={"minidropbox_session": cookie})
        assert replay.status_code == 401

        browser_login(c, user)
        assert c.get("/api/v1/auth/session").status_code == 200
        r = c.post("/api/v1/auth/password", headers=bearer(user.tokens),
                   json={"old_password": PASSWORD, "new_password": PASSWORD + "!"})
        assert r.status_code == 204
        assert c.get("/api/v1/auth/session").status_code == 401
        # A cookie token is no bearer token, nor the other way round.
        assert httpx.get(f"{sec_cluster_url}/api/v1/auth/me", headers={
            "Authorization": f"Bearer {cookie}"}).status_code == 401


def test_login_throttling_applies_to_the_browser_login(edge_api: ServerProcess) -> None:
    edge_api_url = edge_api.url
    with httpx.Client(base_url=edge_api_url, timeout=30) as c:
        name = f"throttle-{hashlib.sha256(edge_api_url.encode()).hexdigest()[:8]}"
        c.post("/api/v1/auth/signup", json={"username": name, "password": PASSWORD})
        codes = [c.post("/api/v1/auth/session", json={"username": name,
                        "password": "wrong password"}).status_code for _ in range(12)]
        assert codes[0] == 401 and codes[-1] == 429, codes


def test_user_content_cannot_script_the_app(client: httpx.Client) -> None:
    user = new_user(client, "content")
    evil = b"<html><script>parent.document.title='pwned'</script></html>"
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    upload_small(client, user.auth, "/evil.html", evil)
    upload_small(client, user.auth, "/evil.svg", svg)
    upload_small(client, user.auth, "/doc.pdf", b"%PDF-1.4 not really")
    upload_small(client, user.auth, '/"quoted" name.bin', b"\x00\x01")
    r = client.get("/api/v1/files/view", headers=user.auth, params={"path": "/evil.html"})
    assert r.status_code == 200 and r.content == evil
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-disposition"].startswith("inline;")
    csp = r.headers["content-security-policy"]
    assert "sandbox" in csp and "default-src 'none'" in csp and "script-src" not in csp
    assert "frame-ancestors 'self'" in csp
    r = client.get("/api/v1/files/view", headers=user.auth, params={"path": "/evil.svg"})
    assert r.headers["content-type"] == "image/svg+xml"
    assert "sandbox" in r.headers["content-security-policy"]
    r = client.get("/api/v1/files/view", headers=user.auth, params={"path": "/doc.pdf"})
    assert r.headers["content-type"] == "application/pdf"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    r = client.get("/api/v1/files/view", headers=user.auth,
                   params={"path": "/evil.html", "download": "true"})
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"] == \
        "attachment; filename=\"evil.html\"; filename*=UTF-8''evil.html"
    r = client.get("/api/v1/files/view", headers=user.auth,
                   params={"path": '/"quoted" name.bin'})
    assert r.headers["content-disposition"] == (
        "attachment; filename=\"_quoted_ name.bin\"; "
        "filename*=UTF-8''%22quoted%22%20name.bin")
    r = client.get("/api/v1/files/view", headers={**user.auth, "Range": "bytes=6-13"},
                   params={"path": "/evil.html"})
    assert r.status_code == 206 and r.content == evil[6:14]


def test_app_page_headers(client: httpx.Client) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"
    assert "<script" in r.text and "<script>" not in r.text  # no inline script
    js = client.get("/static/js/main.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert client.get("/static/../pages.py").status_code == 404


def test_folder_zip_streams_every_file(client: httpx.Client) -> None:
    user = new_user(client, "zip")
    files = {"/Photos/a.txt": b"alpha", "/Photos/sub/b.txt": b"beta" * 1000,
             "/Photos/empty.txt": b""}
    for path, data in files.items():
        if data:
            upload_small(client, user.auth, path, data)
        else:
            r = client.post("/api/v1/files/commit", headers=user.auth, json={
                "path": path, "size": 0, "chunks": [], "parent_version": None})
            assert r.status_code == 201, r.text
    client.post("/api/v1/files/folder", headers=user.auth, json={"path": "/Photos/none"})
    r = client.get("/api/v1/files/zip", headers=user.auth, params={"path": "/Photos"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"].startswith('attachment; filename="Photos.zip"')
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    assert archive.testzip() is None
    assert sorted(archive.namelist()) == ["Photos/", "Photos/a.txt", "Photos/empty.txt",
                                          "Photos/none/", "Photos/sub/", "Photos/sub/b.txt"]
    for path, data in files.items():
        assert archive.read(path[1:]) == data
    assert client.get("/api/v1/files/zip", headers=user.auth,
                      params={"path": "/Photos/a.txt"}).status_code == 400
    assert client.get("/api/v1/files/zip", headers=user.auth,
                      params={"path": "/nothing"}).status_code == 404


def test_notification_socket_takes_the_cookie_from_this_origin_only(
        sec_cluster: TestCluster) -> None:
    with httpx.Client(base_url=sec_cluster.url, timeout=30) as c:
        browser_login(c, new_user(c, "socket"))
        cookie = f"minidropbox_session={c.cookies['minidropbox_session']}"
    url = sec_cluster.url.replace("http://", "ws://") + "/api/v1/notifications"
    with connect(url, additional_headers={"Cookie": cookie, "Origin": sec_cluster.url},
                 open_timeout=10) as ws:
        assert "cursor" in json.loads(ws.recv(timeout=10))
    with connect(url, additional_headers={"Cookie": cookie,
                                          "Origin": "http://evil.example"},
                 open_timeout=10) as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
