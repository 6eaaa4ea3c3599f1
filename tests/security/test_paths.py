"""Hostile paths, both ways: the server refuses (or normalises the same way everywhere) every
dangerous path on every route that takes one, and the CLI never writes outside its target
folder whatever a server sends it."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from minidropbox.client.api import ApiClient
from minidropbox.client.config import Credentials, save_credentials
from minidropbox.client.localpaths import UnsafeName
from minidropbox.client.plans import plan_get, run_get
from minidropbox.client.remote import Remote
from tests.harness import BIN
from tests.security.conftest import User, new_user

BAD_PATHS = {
    "dot-dot": "/a/../b",
    "dot-dot at the end": "/a/..",
    "dot": "/a/./b",
    "empty segment": "/a//b",
    "backslash": "/a\\b",
    "backslash dot-dot": "\\..\\..\\x",
    "windows drive": "C:\\Windows\\x",
    "windows drive, slashes": "c:/x",
    "unc share": "\\\\server\\share\\x",
    "nul": "/a\x00b",
    "newline": "/a\nb",
    "carriage return": "/a\rb",
    "escape sequence": "/a\x1b[31mb",
    "delete char": "/a\x7fb",
    "tab": "/a\tb",
    "overlong name": "/" + "n" * 256,
    "overlong multibyte name": "/" + "é" * 128,
    "overlong path": "/" + "/".join(["d" * 200] * 21),
}

Route = Callable[[httpx.Client, dict[str, str], str], httpx.Response]
PATH_ROUTES: dict[str, Route] = {
    "metadata": lambda c, a, p: c.get("/api/v1/files/metadata", headers=a, params={"path": p}),
    "list": lambda c, a, p: c.get("/api/v1/files/list", headers=a, params={"path": p}),
    "versions": lambda c, a, p: c.get("/api/v1/files/versions", headers=a, params={"path": p}),
    "download": lambda c, a, p: c.get("/api/v1/files/content", headers=a, params={"path": p}),
    "upload": lambda c, a, p: c.put("/api/v1/files/content", headers=a, params={"path": p},
                                    content=b"x"),
    "delete": lambda c, a, p: c.delete("/api/v1/files", headers=a, params={"path": p}),
    "mkdir": lambda c, a, p: c.post("/api/v1/files/folder", headers=a, json={"path": p}),
    "move from": lambda c, a, p: c.post("/api/v1/files/move", headers=a,
                                        json={"from": p, "to": "/dest"}),
    "move to": lambda c, a, p: c.post("/api/v1/files/move", headers=a,
                                      json={"from": "/src", "to": p}),
    "restore": lambda c, a, p: c.post("/api/v1/files/restore", headers=a,
                                      json={"path": p, "version": 1}),
    "commit": lambda c, a, p: c.post("/api/v1/files/commit", headers=a, json={
        "path": p, "size": 0, "chunks": [], "parent_version": None}),
    "undelete": lambda c, a, p: c.post("/api/v1/trash/restore", headers=a, json={"path": p}),
    "purge": lambda c, a, p: c.delete("/api/v1/trash", headers=a, params={"path": p}),
}


@pytest.fixture(scope="module")
def walker(sec_cluster: Any) -> Iterator[tuple[httpx.Client, User]]:
    with httpx.Client(base_url=sec_cluster.url, timeout=60) as c:
        user = new_user(c, "paths")
        assert c.post("/api/v1/files/folder", headers=user.auth,
                      json={"path": "/src"}).status_code == 201
        yield c, user


@pytest.mark.parametrize("route", list(PATH_ROUTES))
def test_dangerous_paths_are_refused_everywhere(walker: tuple[httpx.Client, User],
                                                route: str) -> None:
    c, user = walker
    for name, path in BAD_PATHS.items():
        r = PATH_ROUTES[route](c, user.auth, path)
        assert r.status_code == 400, f"{route} {name}: {r.status_code} {r.text}"
        assert r.json()["error"]["code"] == "invalid_path", f"{route} {name}: {r.text}"
    # Nothing was created along the way.
    listing = c.get("/api/v1/files/list", headers=user.auth,
                    params={"path": "/", "recursive": "true"}).json()["entries"]
    assert {e["path"] for e in listing} <= {"/src", "/dest", "/x", "/%2e%2e", "/Report.txt",
                                            "/café.txt", "/x/%2e%2e"}


def test_encoded_dot_dot(walker: tuple[httpx.Client, User]) -> None:
    c, user = walker
    # Percent-encoded in the URL: decoded once by the server, then refused as "..".
    r = c.get(f"{_base(c)}/api/v1/files/metadata?path=/src/%2e%2e/x", headers=user.auth)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_path"
    r = c.get(f"{_base(c)}/api/v1/files/metadata?path=%2e%2e%2fetc", headers=user.auth)
    assert r.status_code == 400
    # Sent as literal text it is an ordinary name, stored as given and never decoded again.
    r = c.post("/api/v1/files/folder", headers=user.auth, json={"path": "/x/%2e%2e"})
    assert r.status_code == 201 and r.json()["path"] == "/x/%2e%2e"
    names = [e["name"] for e in c.get("/api/v1/files/list", headers=user.auth,
                                      params={"path": "/x"}).json()["entries"]]
    assert names == ["%2e%2e"]
    # The path parameter of the chunk route cannot climb either.
    for raw in ["..%2f..%2fetc%2fpasswd", "%2e%2e", "..", "a" * 64 + "%00"]:
        r = c.put(f"{_base(c)}/api/v1/chunks/{raw}", headers=user.auth, content=b"x")
        assert r.status_code in (400, 404), (raw, r.text)


def test_unicode_and_case_twins_are_one_entry(walker: tuple[httpx.Client, User]) -> None:
    c, user = walker
    nfc = unicodedata.normalize("NFC", "/café.txt")
    nfd = unicodedata.normalize("NFD", "/café.txt")
    assert nfc != nfd
    r = c.put("/api/v1/files/content", headers=user.auth, params={"path": nfd}, content=b"1")
    assert r.status_code == 201 and r.json()["path"] == nfc  # stored NFC
    for twin in (nfc, nfd, nfd.upper(), "/CAFÉ.TXT"):
        r = c.get("/api/v1/files/metadata", headers=user.auth, params={"path": twin})
        assert r.status_code == 200 and r.json()["path"] == nfc, twin
    r = c.post("/api/v1/files/commit", headers=user.auth, json={
        "path": nfd, "size": 0, "chunks": [], "parent_version": None})
    assert r.status_code == 409  # the same file, not a second one
    c.put("/api/v1/files/content", headers=user.auth, params={"path": "/Report.txt"},
          content=b"r")
    r = c.post("/api/v1/files/folder", headers=user.auth, json={"path": "/REPORT.TXT"})
    assert r.status_code == 409
    listing = c.get("/api/v1/files/list", headers=user.auth).json()["entries"]
    names = [e["name"] for e in listing]
    assert names.count("Report.txt") == 1 and "REPORT.TXT" not in names
    assert names.count(nfc[1:]) == 1


# -- a hostile server against the real CLI ----------------------------------------------------

def _entry(path: str, kind: str = "file", name: str | None = None) -> dict[str, Any]:
    return {"path": path, "name": name if name is not None else path.rsplit("/", 1)[-1],
            "type": kind, "size": 4 if kind == "file" else None,
            "version": 1 if kind == "file" else None, "modified": 1_600_000_000.0,
            "content_hash": None}


class HostileServer:
    """A loopback HTTP server that answers the download protocol with whatever it is told."""

    def __init__(self) -> None:
        self.metadata: dict[str, dict[str, Any]] = {}
        self.listings: dict[str, list[dict[str, Any]]] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                path = parse_qs(url.query).get("path", ["/"])[0]
                if url.path == "/api/v1/files/metadata":
                    self._json(outer.metadata.get(path) or _entry(path, "folder"))
                elif url.path == "/api/v1/files/list":
                    self._json({"entries": outer.listings.get(path, []), "cursor": None})
                elif url.path == "/api/v1/files/content":
                    self._send(200, b"evil", "application/octet-stream")
                else:
                    self._send(404, b"{}", "application/json")

            def _json(self, body: Any) -> None:
                self._send(200, json.dumps(body).encode(), "application/json")

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    server = HostileServer()
    try:
        yield server
    finally:
        server.close()


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


CASES = {
    "parent escape in a listing": ("/Docs", {"/Docs": [_entry("/Docs/ok.txt"),
                                                       _entry("/Docs/../../evil.txt")]}, {}),
    "deep escape in a listing": ("/Docs", {"/Docs": [_entry("/Docs/a/../../../evil.txt")]}, {}),
    "absolute path outside the folder": ("/Docs", {"/Docs": [_entry("/abs/evil.txt")]}, {}),
    "relative path in a listing": ("/", {"/": [_entry("../../evil.txt")]}, {}),
    "backslashes": ("/Docs", {"/Docs": [_entry("/Docs/a\\..\\..\\evil.txt")]}, {}),
    "empty segment": ("/Docs", {"/Docs": [_entry("/Docs//evil.txt")]}, {}),
    "nul in a name": ("/Docs", {"/Docs": [_entry("/Docs/evil\x00.txt")]}, {}),
    "hostile file name": ("/a.txt", {}, {"/a.txt": _entry("/a.txt", name="../../evil.txt")}),
    "absolute file name": ("/a.txt", {}, {"/a.txt": _entry("/a.txt", name="/tmp/evil.txt")}),
    "dot-dot as a file name": ("/a.txt", {}, {"/a.txt": _entry("/a.txt", name="..")}),
}


def _cli_env(server: HostileServer, tmp_path: Path) -> dict[str, str]:
    """A logged-in CLI environment (its own config folder) for the fake server."""
    config = tmp_path / "config"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINIDROPBOX_")}
    env.update({"XDG_CONFIG_HOME": str(config), "NO_COLOR": "1"})
    _save(config, Credentials(server.url, "victim", "token", "refresh", time.time() + 3600))
    return env


def _cli_get(env: dict[str, str], remote: str,
             target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), "get", remote, str(target)], capture_output=True,
                          text=True, env=env, cwd=target, timeout=60)


def test_cli_get_from_the_fake_server_works(hostile: HostileServer, tmp_path: Path) -> None:
    """The control: an honest listing from the same fake server downloads fine."""
    hostile.listings["/Docs"] = [_entry("/Docs/sub", "folder"), _entry("/Docs/sub/ok.txt")]
    target = tmp_path / "target"
    target.mkdir()
    proc = _cli_get(_cli_env(hostile, tmp_path), "/Docs", target)
    assert proc.returncode == 0, proc.stderr
    assert (target / "Docs" / "sub" / "ok.txt").read_bytes() == b"evil"


# The real CLI in a subprocess for a few cases; every case in-process below (cheaper).
CLI_CASES = ["parent escape in a listing", "absolute path outside the folder", "backslashes",
             "hostile file name"]


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_get_never_writes_outside_its_target(hostile: HostileServer, tmp_path: Path,
                                                 case: str) -> None:
    remote, listings, metadata = CASES[case]
    hostile.listings.update(listings)
    hostile.metadata.update(metadata)
    env = _cli_env(hostile, tmp_path)
    target = tmp_path / "work" / "deep" / "target"
    target.mkdir(parents=True)
    before = _files_under(tmp_path)
    proc = _cli_get(env, remote, target)
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("Error: "), proc.stderr
    assert "Refusing" in proc.stderr or "not inside" in proc.stderr, proc.stderr
    created = _files_under(tmp_path) - before
    outside = [p for p in created if target not in p.parents and p != target]
    assert not outside, f"{case}: wrote {outside}"
    assert not any(p.name.startswith("evil") for p in created), created


@pytest.mark.parametrize("case", list(CASES))
def test_download_code_never_writes_outside_its_target(hostile: HostileServer, tmp_path: Path,
                                                       case: str) -> None:
    remote, listings, metadata = CASES[case]
    hostile.listings.update(listings)
    hostile.metadata.update(metadata)
    target = tmp_path / "work" / "target"
    target.mkdir(parents=True)
    before = _files_under(tmp_path)
    creds = Credentials(hostile.url, "victim", "token", "refresh", time.time() + 3600)
    with Remote(ApiClient(hostile.url, creds, persist=False)) as api, \
            pytest.raises(UnsafeName):
        plan = plan_get(api, remote, target)
        run_get(api, plan)
    assert _files_under(tmp_path) == before, case


def _save(config: Path, creds: Credentials) -> None:
    old = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(config)
    try:
        save_credentials(creds)
    finally:
        if old is None:
            del os.environ["XDG_CONFIG_HOME"]
        else:
            os.environ["XDG_CONFIG_HOME"] = old


def _base(c: httpx.Client) -> str:
    return str(c.base_url).rstrip("/")
