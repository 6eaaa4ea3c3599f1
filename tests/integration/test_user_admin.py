"""Operators manage accounts: invite-only sign-up, ``admin users`` (list, create, disable,
enable, delete, reset-password, quota) and ``admin invite``, through the real CLI against a
real cluster. The first administrator is made with ``server grant-admin --create``."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx

from tests.conftest import PASSWORD, bearer
from tests.harness import BIN, TestCluster

NEW_PASSWORD = "a brand new passphrase"


def test_invite_only_server_and_admin_users(tmp_path: Path) -> None:
    cluster = TestCluster(tmp_path, env={"signup": "invite"})
    home = tmp_path / "home"

    def cli(*args: str, stdin: str | None = None, ok: bool = True
            ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "XDG_CONFIG_HOME": str(home), "MINIDROPBOX_SERVER": cluster.url}
        proc = subprocess.run([str(BIN), *args], env=env, input=stdin, capture_output=True,
                              text=True, timeout=300)  # generous: the machine may be busy
        if ok:
            assert proc.returncode == 0, f"{args}: {proc.stderr}"
        return proc

    try:
        with httpx.Client(base_url=cluster.url, timeout=60) as c:
            def login(name: str, password: str = PASSWORD) -> httpx.Response:
                return c.post("/api/v1/auth/login", json={"username": name,
                                                          "password": password})

            # Open sign-up is off: a plain sign-up is refused, with the next step named.
            r = c.post("/api/v1/auth/signup", json={"username": "eve", "password": PASSWORD})
            assert r.status_code == 403 and "invitation only" in r.json()["error"]["message"]
            refused = cli("signup", "eve", "--password-stdin", stdin=PASSWORD + "\n", ok=False)
            assert refused.returncode == 3 and "invite" in refused.stderr
            # The first administrator, made on the server's machine.
            made = subprocess.run(
                [str(BIN), "server", "grant-admin", "root", "--create", "--password-stdin",
                 "--data", str(tmp_path / "api-data")], env=cluster.api.env, input=PASSWORD,
                capture_output=True, text=True, timeout=60)
            assert made.returncode == 0, made.stderr
            cli("login", "root", "--password-stdin", stdin=PASSWORD + "\n")

            # Invites: each works once.
            code = json.loads(cli("--json", "admin", "invite", "--expires", "2h").stdout)["code"]
            cli("signup", "bob", "--password-stdin", "--no-login", "--invite", code,
                stdin=PASSWORD + "\n")
            again = c.post("/api/v1/auth/signup", json={"username": "bob2",
                                                        "password": PASSWORD, "invite": code})
            assert again.status_code == 403 and "used or expired" in again.text
            bad = cli("admin", "invite", "--expires", "forever", ok=False)
            assert bad.returncode == 2
            # Accounts made by the administrator need no invite.
            cli("admin", "users", "create", "carol", "--password-stdin", stdin=PASSWORD + "\n")
            assert login("carol").status_code == 200

            listed = json.loads(cli("--json", "admin", "users", "list").stdout)["users"]
            assert [u["username"] for u in listed] == ["bob", "carol", "root"]
            assert next(u for u in listed if u["username"] == "root")["is_admin"] is True
            assert "bob" in cli("admin", "users", "list").stdout

            # Quota, in human units; the account sees it at once.
            bob = bearer(login("bob").json())
            out = cli("admin", "users", "quota", "bob", "1M").stdout
            assert "bob: 0 B used, quota 1.0 MiB" in out, out
            assert c.get("/api/v1/usage", headers=bob).json()["quota_bytes"] == 1024 * 1024
            big = c.put("/api/v1/files/content", headers=bob, params={"path": "/big"},
                        content=os.urandom(2 * 1024 * 1024))
            assert big.status_code == 413  # larger than the whole quota
            cli("admin", "users", "quota", "bob", "none")
            assert c.get("/api/v1/usage", headers=bob).json()["quota_bytes"] is None

            # Disable: the open session ends now, no login until enabled.
            assert "Disabled bob" in cli("admin", "users", "disable", "bob").stdout
            assert c.get("/api/v1/auth/me", headers=bob).status_code == 401
            r = login("bob")
            assert r.status_code == 403 and "disabled" in r.json()["error"]["message"]
            cli("admin", "users", "enable", "bob")
            bob = bearer(login("bob").json())

            # Reset the password: sessions end, the new password works, the old does not.
            cli("admin", "users", "reset-password", "bob", "--password-stdin",
                stdin=NEW_PASSWORD + "\n")
            assert c.get("/api/v1/auth/me", headers=bob).status_code == 401
            assert login("bob").status_code == 401
            bob = bearer(login("bob", NEW_PASSWORD).json())
            weak = cli("admin", "users", "reset-password", "bob", "--password-stdin",
                       stdin="short\n", ok=False)
            assert weak.returncode == 2

            # Delete: needs --yes without a terminal; never yourself; an owner of a folder
            # shared with others only after unsharing.
            assert c.put("/api/v1/files/content", headers=bob, params={"path": "/f/a.txt"},
                         content=b"bob's").status_code == 201
            no = cli("admin", "users", "delete", "bob", ok=False)
            assert no.returncode == 2 and "--yes" in no.stderr
            assert c.post("/api/v1/shares/folders", headers=bob, json={
                "path": "/f", "username": "carol", "role": "editor"}).status_code in (200, 201)
            busy = cli("admin", "users", "delete", "bob", "--yes", ok=False)
            assert busy.returncode == 5 and "shared with other accounts" in busy.stderr
            assert c.post("/api/v1/shares/folders/unshare", headers=bob,
                          json={"path": "/f"}).status_code in (200, 204)
            cli("admin", "users", "delete", "bob", "--yes")
            assert login("bob", NEW_PASSWORD).status_code == 401
            assert c.get("/api/v1/auth/me", headers=bob).status_code == 401
            self_delete = cli("admin", "users", "delete", "root", "--yes", ok=False)
            assert self_delete.returncode == 2
            gone = cli("admin", "users", "disable", "bob", ok=False)
            assert gone.returncode == 4
    finally:
        cluster.stop()
