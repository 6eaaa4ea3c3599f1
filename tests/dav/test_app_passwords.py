"""App passwords: created, listed and revoked through the API and the CLI; the only way in
to WebDAV (an account password is refused there, an app password is refused by the API)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import asdict
from pathlib import Path

import httpx

from minidropbox.client.config import Credentials
from tests.conftest import PASSWORD
from tests.dav.conftest import DavUser, new_dav_user
from tests.harness import BIN, TestCluster


def _propfind(user: str, password: str, base: str) -> httpx.Response:
    return httpx.request("PROPFIND", f"{base}/dav/", auth=(user, password),
                         headers={"Depth": "0"}, timeout=30)


def test_create_list_revoke_through_the_api(dav_user: DavUser) -> None:
    base = dav_user.base
    assert _propfind(dav_user.username, dav_user.app_password, base).status_code == 207
    with httpx.Client(base_url=base, headers=dav_user.api, timeout=30) as c:
        listed = c.get("/api/v1/app-passwords").json()["app_passwords"]
        assert [p["name"] for p in listed] == ["laptop"]
        assert listed[0]["last_used_at"] is not None
        assert dav_user.app_password not in json.dumps(listed)
        assert c.post("/api/v1/app-passwords", json={"name": "laptop"}).status_code == 409
        assert c.delete("/api/v1/app-passwords/laptop").status_code == 204
        assert c.delete("/api/v1/app-passwords/laptop").status_code == 404
    # Revoked at once: the very next request is refused.
    r = _propfind(dav_user.username, dav_user.app_password, base)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Basic")
    assert r.json()["error"]["code"] == "unauthorized"


def test_only_app_passwords_open_webdav(dav_user: DavUser) -> None:
    base = dav_user.base
    assert _propfind(dav_user.username, PASSWORD, base).status_code == 401
    assert _propfind(dav_user.username, dav_user.app_password + "x", base).status_code == 401
    assert _propfind("nobody-here", dav_user.app_password, base).status_code == 401
    # No credentials: a challenge, so file managers ask for them.
    r = httpx.request("PROPFIND", f"{base}/dav/", headers={"Depth": "0"}, timeout=30)
    assert r.status_code == 401 and "Basic" in r.headers["www-authenticate"]
    # The app password is not an API credential, in either form.
    r = httpx.get(f"{base}/api/v1/auth/me", auth=dav_user.auth, timeout=30)
    assert r.status_code == 401
    r = httpx.get(f"{base}/api/v1/auth/me", timeout=30,
                  headers={"Authorization": f"Bearer {dav_user.app_password}"})
    assert r.status_code == 401


def test_another_users_app_password_opens_nothing(dav_cluster: TestCluster) -> None:
    a, b = new_dav_user(dav_cluster.url), new_dav_user(dav_cluster.url)
    assert _propfind(a.username, b.app_password, a.base).status_code == 401


def test_failures_are_throttled_like_logins(dav_cluster: TestCluster) -> None:
    user = new_dav_user(dav_cluster.url)
    codes = [_propfind(user.username, "wrong-password", user.base).status_code
             for _ in range(6)]
    assert codes[:5] == [401] * 5 and codes[5] == 429
    r = _propfind(user.username, user.app_password, user.base)
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0


def test_cli_create_list_revoke(dav_cluster: TestCluster, tmp_path: Path) -> None:
    user = new_dav_user(dav_cluster.url)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "HOME": str(tmp_path)}

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN), "--server", user.base, *args], env=env, input=stdin,
                              capture_output=True, text=True, timeout=60)

    # What `minidropbox login` leaves behind, without a process for it (the machine is slow
    # to start them; the login command has its own tests).
    body = httpx.post(f"{user.base}/api/v1/auth/login", timeout=30,
                      json={"username": user.username, "password": PASSWORD}).json()
    folder = tmp_path / "cfg" / "minidropbox"
    folder.mkdir(parents=True, mode=0o700)
    (folder / "credentials.json").write_text(json.dumps(asdict(Credentials(
        user.base, user.username, body["access_token"], body["refresh_token"],
        time.time() + body["expires_in"]))))
    (folder / "credentials.json").chmod(0o600)
    created = cli("app-password", "create", "phone")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.splitlines()[0].strip()
    assert "/dav/" in created.stdout
    assert _propfind(user.username, secret, user.base).status_code == 207
    listed = cli("--json", "app-password", "list")
    assert sorted(p["name"] for p in json.loads(listed.stdout)) == ["laptop", "phone"]
    assert secret not in listed.stdout
    assert cli("app-password", "revoke", "phone").returncode == 0
    assert _propfind(user.username, secret, user.base).status_code == 401
    again = cli("app-password", "revoke", "phone")
    assert again.returncode != 0 and len(again.stderr.strip().splitlines()) == 1


def test_a_revoked_app_password_stops_plain_puts_at_once(dav_user: DavUser) -> None:
    """A plain PUT reads its caller, target and locks in one transaction: the password is
    still checked on every request, so the PUT right after a revocation is refused."""
    base = dav_user.base
    with httpx.Client(base_url=base, auth=dav_user.auth, timeout=30) as dav:
        assert dav.put("/dav/before.txt", content=b"one").status_code == 201
        with httpx.Client(base_url=base, headers=dav_user.api, timeout=30) as api:
            assert api.delete("/api/v1/app-passwords/laptop").status_code == 204
            r = dav.put("/dav/after.txt", content=b"two")
            assert r.status_code == 401
            assert r.headers["www-authenticate"].startswith("Basic")
            assert api.get("/api/v1/files/metadata",
                           params={"path": "/after.txt"}).status_code == 404
            assert api.get("/api/v1/files/metadata",
                           params={"path": "/before.txt"}).status_code == 200
    wrong = httpx.put(f"{base}/dav/x.txt", content=b"x", auth=(dav_user.username, "nope"),
                      timeout=30)
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Basic")
