"""The route registry of the security suite: one entry per API route, in one place.

Every route the API serves (every operation in ``/openapi.json``, plus routes hidden from the
schema and WebSocket routes) must have an entry in ``MATRIX``, or ``test_authz_matrix`` fails.
An entry says how user B goes after user A's objects through that route:

- ``attack(call, ...)``: the route takes a path, version, cursor or chunk hash. ``call`` makes
  the request with some caller's headers against A's objects (``Victim``). Made by B it must
  answer ``attacker`` (404 by default: existence is not revealed, so never 403) and carry none
  of A's data; made by A the same request must answer ``owner``, which proves the object was
  really there. A route may have several attacks.
- ``no_object(why, call)``: nothing of another user's can be named through the route (signup,
  the caller's own session, probes). ``call`` is still made, by A, in the response tour.
- ``admin(call)``: an operator route. A non-admin gets 403 whatever they send.

``test_share_axis`` runs every attack again with A's folder shared: as an editor, a viewer
(both mounted at the same path), and a member A removed; ``editor=``/``viewer=`` give what
members get where it differs from an outsider.

To register a new route, add one line here; see the existing entries for the shape.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from tests.conftest import PASSWORD, bearer, signup_and_login
from tests.integration.direct_protocol import DIRECT, present, send_direct

Headers = dict[str, str]


@dataclass
class Victim:
    """User A's objects, created fresh for each attack."""

    username: str
    folder: str  # holds the file, a sibling and a trashed file
    file: str  # two versions
    trashed: str  # in the trash
    blobs: dict[str, bytes]  # chunk hash -> bytes, for every version of the file
    cursor: str  # the next-page cursor of a one-entry listing of ``folder``
    journal: str  # a change-journal cursor from before A made these objects
    markers: list[bytes]  # bytes only A's data contains: never in B's answers

    @property
    def hashes(self) -> list[str]:
        return list(self.blobs)


Call = Callable[[httpx.Client, Headers, Victim], httpx.Response]
Check = Callable[[httpx.Response, Victim], None]


@dataclass(frozen=True)
class Attack:
    call: Call
    attacker: tuple[int, ...] = (404,)
    owner: tuple[int, ...] = (200,)
    owner_call: Call | None = None  # when the owner's request differs (they hold the bytes)
    attacker_check: Check | None = None
    owner_check: Check | None = None
    note: str = ""
    # When A's folder is shared with B (``test_share_axis``): what an editor and a viewer
    # get. None: the same as an outsider (and a removed member always gets that).
    editor: tuple[int, ...] | None = None
    viewer: tuple[int, ...] | None = None


@dataclass(frozen=True)
class NoObject:
    why: str
    call: Call | None = None


@dataclass(frozen=True)
class Admin:
    call: Call | None = None


Entry = tuple[Attack, ...] | NoObject | Admin


def attack(call: Call, **kwargs: Any) -> Attack:
    return Attack(call, **kwargs)


def no_object(why: str, call: Call | None = None) -> NoObject:
    return NoObject(why, call)


def admin(call: Call | None = None) -> Admin:
    return Admin(call)


# -- building A's objects -------------------------------------------------------------------

def upload_small(c: httpx.Client, auth: Headers, path: str, data: bytes,
                 parent: int | None = None, device: str = "") -> dict[str, Any]:
    """One-chunk upload through the delta protocol (chunk PUT + commit). A 503 (the API saw
    its nodes as down: on a loaded machine a stall of a few seconds does that) is sent again
    for up to a minute, as clients do; these tests are about who may see what."""
    h = hashlib.sha256(data).hexdigest()
    deadline = time.monotonic() + 60
    while True:
        r = c.put(f"/api/v1/chunks/{h}", headers=auth, content=data)
        if r.status_code != 503 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert r.status_code == 201, r.text
    r = c.post("/api/v1/files/commit", headers=auth, json={
        "path": path, "size": len(data), "chunks": [h], "parent_version": parent,
        "device": device})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def make_victim(c: httpx.Client, username: str, auth: Headers) -> Victim:
    tag = uuid.uuid4().hex[:8]
    secret = f"SECRET-{uuid.uuid4().hex}".encode()
    sibling = f"sib-{uuid.uuid4().hex[:12]}"
    device = f"dev-{uuid.uuid4().hex[:12]}"
    folder = f"/vault-{tag}"
    file = f"{folder}/plan-{tag}.txt"
    trashed = f"{folder}/old-{tag}.txt"
    journal = c.get("/api/v1/changes", headers=auth)
    assert journal.status_code == 200, journal.text
    v1 = secret + b" first " + secrets.token_bytes(64)
    v2 = secret + b" second " + secrets.token_bytes(64)
    e1 = upload_small(c, auth, file, v1, device=device)
    e2 = upload_small(c, auth, file, v2, parent=1, device=device)
    upload_small(c, auth, f"{folder}/{sibling}.txt", secret + b" sibling")
    upload_small(c, auth, trashed, secret + b" trashed")
    assert c.delete("/api/v1/files", headers=auth, params={"path": trashed}).status_code == 200
    page = c.get("/api/v1/files/list", headers=auth, params={"path": folder, "limit": 1})
    assert page.status_code == 200 and page.json()["cursor"], page.text
    blobs = {hashlib.sha256(v).hexdigest(): v for v in (v1, v2)}
    markers = [secret, sibling.encode(), device.encode(), username.encode(),
               e1["content_hash"].encode(), e2["content_hash"].encode()]
    return Victim(username, folder, file, trashed, blobs, page.json()["cursor"],
                  journal.json()["cursor"], markers)


def snapshot(c: httpx.Client, auth: Headers, v: Victim) -> Any:
    """Everything A can see of their objects, to prove an attack changed nothing."""
    listing = c.get("/api/v1/files/list", headers=auth,
                    params={"path": "/", "recursive": "true"}).json()
    versions = c.get("/api/v1/files/versions", headers=auth, params={"path": v.file}).json()
    trash = c.get("/api/v1/trash", headers=auth).json()
    content = c.get("/api/v1/files/content", headers=auth, params={"path": v.file}).content
    return listing, versions, trash, hashlib.sha256(content).hexdigest()


# -- request helpers ------------------------------------------------------------------------

def _get(url: str, **params: Callable[[Victim], Any]) -> Call:
    def call(c: httpx.Client, auth: Headers, v: Victim) -> httpx.Response:
        return c.get(url, headers=auth, params={k: f(v) for k, f in params.items()})
    return call


def _error_code(code: str) -> Check:
    def check(r: httpx.Response, v: Victim) -> None:
        assert r.json()["error"]["code"] == code, r.text
    return check


def _commit_body(v: Victim) -> dict[str, Any]:
    h = v.hashes[0]
    return {"path": f"/taken-{uuid.uuid4().hex[:8]}", "size": len(v.blobs[h]), "chunks": [h],
            "parent_version": None}


def _fresh_session(c: httpx.Client, v: Victim) -> dict[str, str]:
    r = c.post("/api/v1/auth/login", json={"username": v.username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    body: dict[str, str] = r.json()
    return body


def _throwaway_user(c: httpx.Client) -> dict[str, str]:
    return signup_and_login(c, f"tmp-{uuid.uuid4().hex[:12]}")


def _victims_receipts(c: httpx.Client, v: Victim) -> list[str]:
    """Receipts the nodes signed for A: A sends fresh bytes straight to the nodes."""
    return send_direct(c, bearer(_fresh_session(c, v)), secrets.token_bytes(DIRECT))


def _present_victims_receipts(c: httpx.Client, auth: Headers, v: Victim) -> httpx.Response:
    return present(c, auth, _victims_receipts(c, v))


def _check_missing(expect_all: bool) -> Check:
    def check(r: httpx.Response, v: Victim) -> None:
        assert r.json()["missing"] == (v.hashes if expect_all else []), r.text
    return check


def _check_batch(ok: bool) -> Check:
    def check(r: httpx.Response, v: Victim) -> None:
        result = r.json()["results"][0]
        assert result["ok"] is ok, r.text
        if not ok:
            assert result["error"]["code"] == "missing_chunk"
    return check


def _contents_line(error: str | None) -> Check:
    """The first line of a ``/files/contents`` answer: the file's entry, or ``error``."""
    def check(r: httpx.Response, v: Victim) -> None:
        head = json.loads(r.content.split(b"\n", 1)[0])
        if error is None:
            assert "error" not in head and head["path"] == v.file, r.text[:300]
        else:
            assert head["error"]["code"] == error and set(head) == {"path", "error"}, r.text
    return check


def _own_version(expected: int) -> Check:
    def check(r: httpx.Response, v: Victim) -> None:
        assert r.json()["version"] == expected, r.text
    return check


def _check_purged(some: bool) -> Check:
    def check(r: httpx.Response, v: Victim) -> None:
        assert (r.json()["purged"] > 0) is some, r.text
    return check


def _b_owns_file_then_asks_version_2(c: httpx.Client, auth: Headers,
                                     v: Victim) -> httpx.Response:
    # B makes a file at the same path (version 1 only), then asks for version 2: version
    # numbers must be looked up in B's own entry, never A's.
    c.put("/api/v1/files/content", headers=auth, params={"path": v.file}, content=b"mine")
    return c.get("/api/v1/files/content", headers=auth, params={"path": v.file, "version": 2})


def _victims_link(c: httpx.Client, v: Victim) -> str:
    """A link A makes to A's file, through a session of A's own."""
    r = c.post("/api/v1/shares/links", headers=bearer(_fresh_session(c, v)),
               json={"path": v.file})
    assert r.status_code == 201, r.text
    return str(r.json()["link_id"])


def _revoke_victims_link(c: httpx.Client, auth: Headers, v: Victim) -> httpx.Response:
    return c.delete(f"/api/v1/shares/links/{_victims_link(c, v)}", headers=auth)


def _own_link_listing(c: httpx.Client, auth: Headers, v: Victim) -> httpx.Response:
    _victims_link(c, v)
    return c.get("/api/v1/shares/links", headers=auth, params={"path": v.file})


def _check_links(some: bool) -> Check:
    def check(r: httpx.Response, v: Victim) -> None:
        assert bool(r.json()["links"]) is some, r.text
    return check


def _phone_of(v: Victim) -> str:
    """A's app password name (not A's username: that is a marker B must never see)."""
    return "phone-" + hashlib.sha256(v.username.encode()).hexdigest()[:10]


def _victims_app_password(c: httpx.Client, auth: Headers, v: Victim) -> httpx.Response:
    # A has an app password named after them; the caller tries to revoke it by name.
    name = _phone_of(v)
    c.post("/api/v1/app-passwords", headers=bearer(_fresh_session(c, v)), json={"name": name})
    return c.delete(f"/api/v1/app-passwords/{name}", headers=auth)


def _over_webdav(method: str, path: Callable[[Victim], str], depth: str = "0") -> Call:
    """The same request through /dav/, with an app password the caller makes for it."""
    def call(c: httpx.Client, auth: Headers, v: Victim) -> httpx.Response:
        username = c.get("/api/v1/auth/me", headers=auth).json()["username"]
        created = c.post("/api/v1/app-passwords", headers=auth,
                         json={"name": f"dav-{uuid.uuid4().hex[:12]}"})
        assert created.status_code == 201, created.text
        return c.request(method, f"/dav{path(v)}", auth=(username, created.json()["password"]),
                         headers={"Depth": depth})
    return call


def _no_app_password_of(r: httpx.Response, v: Victim) -> None:
    names = [p["name"] for p in r.json()["app_passwords"]]
    assert _phone_of(v) not in names, r.text


def _someone(c: httpx.Client) -> dict[str, str]:
    """A throwaway account, with its name."""
    name = f"tmp-{uuid.uuid4().hex[:12]}"
    return {**signup_and_login(c, name), "name": name}


def _after_sharing(c: httpx.Client, v: Victim, request: Callable[[str], httpx.Response]
                   ) -> httpx.Response:
    """A shares ``v.folder`` with a throwaway account (who accepts), then ``request`` runs,
    given that account's name."""
    other = _someone(c)
    r = c.post("/api/v1/shares/folders", headers=bearer(_fresh_session(c, v)),
               json={"path": v.folder, "username": other["name"]})
    assert r.status_code == 201, r.text
    invite = c.get("/api/v1/shares/invites", headers=bearer(other)).json()["invites"][0]
    assert c.post(f"/api/v1/shares/invites/{invite['invite_id']}/accept",
                  headers=bearer(other), json={}).status_code == 201
    return request(other["name"])


def _after_invite(c: httpx.Client, v: Victim, request: Callable[[int], httpx.Response]
                  ) -> httpx.Response:
    """Someone invites A to a folder of theirs; ``request`` gets the invitation's id."""
    other = _someone(c)
    folder = f"/for-{uuid.uuid4().hex[:8]}"
    assert c.post("/api/v1/files/folder", headers=bearer(other),
                  json={"path": folder}).status_code == 201
    r = c.post("/api/v1/shares/folders", headers=bearer(other),
               json={"path": folder, "username": v.username})
    assert r.status_code == 201, r.text
    invites = c.get("/api/v1/shares/invites", headers=bearer(_fresh_session(c, v))).json()
    return request(invites["invites"][-1]["invite_id"])


def _check_listed(key: str, some: bool) -> Check:
    def check(r: httpx.Response, v: Victim) -> None:
        assert bool(r.json()[key]) is some, r.text
    return check


MEMBERS_READ: dict[str, Any] = {"editor": (200,), "viewer": (200,)}
MEMBERS_WRITE: dict[str, Any] = {"editor": (200,), "viewer": (403,)}


# -- the matrix -----------------------------------------------------------------------------

MATRIX: dict[tuple[str, str], Entry] = {
    # Probes and documentation.
    ("GET", "/healthz"): no_object("liveness probe", _get("/healthz")),
    ("GET", "/readyz"): no_object("readiness probe", _get("/readyz")),
    ("GET", "/metrics"): no_object("Prometheus counts by route template; no user data",
                                   _get("/metrics")),
    ("GET", "/openapi.json"): no_object("the public schema", _get("/openapi.json")),
    ("GET", "/docs"): no_object("the schema's HTML page", _get("/docs")),
    ("GET", "/redoc"): no_object("the schema's HTML page", _get("/redoc")),
    ("GET", "/docs/assets/{name}"): no_object(
        "the docs pages' own scripts, styles and licences, by exact name",
        _get("/docs/assets/swagger-ui.css")),

    # Accounts: every one acts on the caller's own account or session.
    ("POST", "/api/v1/auth/signup"): no_object(
        "creates a new account",
        lambda c, auth, v: c.post("/api/v1/auth/signup", json={
            "username": f"new-{uuid.uuid4().hex[:12]}", "password": PASSWORD})),
    ("POST", "/api/v1/auth/login"): no_object(
        "needs the account's password (token suite, login tests)",
        lambda c, auth, v: c.post("/api/v1/auth/login", json={
            "username": v.username, "password": PASSWORD})),
    ("POST", "/api/v1/auth/refresh"): no_object(
        "needs the session's refresh token (token suite)",
        lambda c, auth, v: c.post("/api/v1/auth/refresh", json={
            "refresh_token": _fresh_session(c, v)["refresh_token"]})),
    ("POST", "/api/v1/auth/logout"): no_object(
        "ends the caller's own session",
        lambda c, auth, v: c.post("/api/v1/auth/logout",
                                  headers=bearer(_fresh_session(c, v)))),
    ("GET", "/api/v1/auth/me"): no_object("the caller's own account", _get("/api/v1/auth/me")),
    ("GET", "/api/v1/usage"): no_object(
        "the caller's own quota and sizes; chunks count only through the caller's versions, "
        "so it says nothing about other accounts' chunks", _get("/api/v1/usage")),
    ("POST", "/api/v1/auth/password"): no_object(
        "the caller's own password, and it needs the current one",
        lambda c, auth, v: c.post("/api/v1/auth/password",
                                  headers=bearer(_throwaway_user(c)), json={
                                      "old_password": PASSWORD,
                                      "new_password": PASSWORD + "!"})),

    # The web app: its page and assets, and the browser's cookie session.
    ("GET", "/"): no_object("the web app's one static page", _get("/")),
    ("MOUNT", "/static"): no_object("the web app's static assets (modules, CSS, icons)"),
    ("POST", "/api/v1/auth/session"): no_object(
        "needs the account's password, like /auth/login",
        lambda c, auth, v: c.post("/api/v1/auth/session", json={
            "username": v.username, "password": PASSWORD})),
    ("GET", "/api/v1/auth/session"): no_object("the caller's own session",
                                               _get("/api/v1/auth/session")),
    ("DELETE", "/api/v1/auth/session"): no_object(
        "ends the caller's own session",
        lambda c, auth, v: c.delete("/api/v1/auth/session",
                                    headers=bearer(_fresh_session(c, v)))),

    # Chunks: B names A's chunk hashes without holding the bytes.
    ("POST", "/api/v1/chunks/missing"): (attack(
        lambda c, auth, v: c.post("/api/v1/chunks/missing", headers=auth,
                                  json={"hashes": v.hashes}),
        attacker=(200,), attacker_check=_check_missing(True), owner_check=_check_missing(False),
        note="dedup never reveals another user's chunk"),),
    ("PUT", "/api/v1/chunks/{chunk_hash}"): (attack(
        lambda c, auth, v: c.put(f"/api/v1/chunks/{v.hashes[0]}", headers=auth,
                                 content=b"guessed bytes"),
        owner_call=lambda c, auth, v: c.put(f"/api/v1/chunks/{v.hashes[0]}", headers=auth,
                                            content=v.blobs[v.hashes[0]]),
        attacker=(400,), owner=(201,), attacker_check=_error_code("hash_mismatch"),
        note="naming a chunk is not owning it: the bytes must hash to the name"),),
    ("POST", "/api/v1/chunks/batch"): (attack(
        lambda c, auth, v: c.post("/api/v1/chunks/batch", headers=auth, files=[
            (v.hashes[0], (v.hashes[0], b"guessed bytes", "application/octet-stream"))]),
        owner_call=lambda c, auth, v: c.post("/api/v1/chunks/batch", headers=auth, files=[
            (v.hashes[0], (v.hashes[0], v.blobs[v.hashes[0]], "application/octet-stream"))]),
        attacker=(400,), owner=(201,), attacker_check=_error_code("hash_mismatch")),),

    ("POST", "/api/v1/chunks/{chunk_hash}/corrupt"): (attack(
        lambda c, auth, v: c.post(f"/api/v1/chunks/{v.hashes[0]}/corrupt", headers=auth,
                                  json={"node": "http://127.0.0.1:9"}),
        attacker=(202,), owner=(202,),
        note="the same answer whatever the hash names; the API checks the copy itself and "
             "acts only on what it finds"),),
    ("POST", "/api/v1/chunks/receipts"): (attack(
        _present_victims_receipts, attacker=(400,), owner=(200,),
        attacker_check=_error_code("invalid_receipt"),
        note="a receipt counts only for the account the nodes signed it for"),),

    # Commits: claiming A's chunks without uploading them (the "Dropship" attack).
    ("POST", "/api/v1/files/commit"): (attack(
        lambda c, auth, v: c.post("/api/v1/files/commit", headers=auth, json=_commit_body(v)),
        attacker=(400,), owner=(201,), attacker_check=_error_code("missing_chunk")),),
    ("POST", "/api/v1/files/commit_batch"): (attack(
        lambda c, auth, v: c.post("/api/v1/files/commit_batch", headers=auth,
                                  json={"commits": [_commit_body(v)]}),
        attacker=(200,), attacker_check=_check_batch(False), owner_check=_check_batch(True)),),

    # Browsing A's paths, versions and cursors.
    ("GET", "/api/v1/files/metadata"): (attack(
        _get("/api/v1/files/metadata", path=lambda v: v.file), **MEMBERS_READ),),
    ("GET", "/api/v1/files/list"): (
        attack(_get("/api/v1/files/list", path=lambda v: v.folder, limit=lambda v: 1,
                    cursor=lambda v: v.cursor), **MEMBERS_READ),
        attack(_get("/api/v1/files/list", path=lambda v: "/", recursive=lambda v: "true",
                    cursor=lambda v: v.cursor),
               attacker=(200,), note="A's cursor only pages through B's own entries",
               **MEMBERS_READ),
    ),
    ("GET", "/api/v1/files/versions"): (attack(
        _get("/api/v1/files/versions", path=lambda v: v.file), **MEMBERS_READ),),
    ("GET", "/api/v1/files/chunks"): (attack(
        _get("/api/v1/files/chunks", path=lambda v: v.file, version=lambda v: 1),
        **MEMBERS_READ),),
    ("POST", "/api/v1/files/contents"): (attack(
        lambda c, auth, v: c.post("/api/v1/files/contents", headers=auth,
                                  json={"files": [{"path": v.file, "version": 1}]}),
        attacker=(200,), attacker_check=_contents_line("not_found"),
        owner_check=_contents_line(None), note="per file: A's path is not_found for B",
        **MEMBERS_READ),),
    ("GET", "/api/v1/files/content"): (
        attack(_get("/api/v1/files/content", path=lambda v: v.file, version=lambda v: 1),
               **MEMBERS_READ),
        attack(_b_owns_file_then_asks_version_2, note="version numbers are per owner",
               **MEMBERS_READ),
    ),

    ("GET", "/api/v1/files/view"): (
        attack(_get("/api/v1/files/view", path=lambda v: v.file), **MEMBERS_READ),
        attack(_get("/api/v1/files/view", path=lambda v: v.file, version=lambda v: 1,
                    download=lambda v: "true"), **MEMBERS_READ),
    ),
    ("GET", "/api/v1/files/zip"): (attack(
        _get("/api/v1/files/zip", path=lambda v: v.folder),
        note="the folder's files are read from B's own tree", **MEMBERS_READ),),

    # Changing A's objects.
    ("POST", "/api/v1/files/move"): (attack(
        lambda c, auth, v: c.post("/api/v1/files/move", headers=auth, json={
            "from": v.file, "to": v.folder + "/moved.txt"}), **MEMBERS_WRITE),),
    ("POST", "/api/v1/files/copy"): (
        attack(lambda c, auth, v: c.post("/api/v1/files/copy", headers=auth, json={
            "from": v.file, "to": v.folder + "/copied.txt"}), owner=(201,),
            editor=(201,), viewer=(403,)),
        attack(lambda c, auth, v: c.post("/api/v1/files/copy", headers=auth, json={
            "from": v.folder, "to": "/copied-" + uuid.uuid4().hex[:8]}), owner=(201,),
            note="out into the caller's own root: any member may", editor=(201,),
            viewer=(201,)),
    ),
    ("DELETE", "/api/v1/files"): (attack(
        lambda c, auth, v: c.delete("/api/v1/files", headers=auth, params={"path": v.file}),
        **MEMBERS_WRITE),),
    ("POST", "/api/v1/files/restore"): (attack(
        lambda c, auth, v: c.post("/api/v1/files/restore", headers=auth,
                                  json={"path": v.file, "version": 1}), owner=(201,),
        editor=(201,), viewer=(403,)),),
    ("POST", "/api/v1/files/folder"): (attack(
        lambda c, auth, v: c.post("/api/v1/files/folder", headers=auth, json={"path": v.folder}),
        attacker=(201,), owner=(201,), note="creates the folder in B's own tree"),),
    ("PUT", "/api/v1/files/content"): (attack(
        lambda c, auth, v: c.put("/api/v1/files/content", headers=auth,
                                 params={"path": v.file}, content=b"B's own bytes"),
        attacker=(201,), owner=(201,), attacker_check=_own_version(1),
        owner_check=_own_version(3), note="writes a new file in B's own tree",
        editor=(201,), viewer=(403,)),),

    # The change journal: A's cursors are refused like any cursor not issued to B.
    ("GET", "/api/v1/changes"): (attack(
        _get("/api/v1/changes", cursor=lambda v: v.journal),
        attacker=(410,), attacker_check=_error_code("reset")),),
    ("GET", "/api/v1/changes/wait"): (attack(
        _get("/api/v1/changes/wait", cursor=lambda v: v.journal, timeout=lambda v: 0),
        attacker=(410,), attacker_check=_error_code("reset")),),
    ("GET", "/api/v1/server"): no_object("the server's public description",
                                         _get("/api/v1/server")),
    ("WS", "/api/v1/notifications"): no_object(
        "pushes only the caller's own newest cursor; it takes no path, version or cursor"),

    # The trash.
    ("GET", "/api/v1/trash"): (attack(
        _get("/api/v1/trash"), attacker=(200,), note="B sees only B's own trash",
        **MEMBERS_READ),),
    ("POST", "/api/v1/trash/restore"): (attack(
        lambda c, auth, v: c.post("/api/v1/trash/restore", headers=auth,
                                  json={"path": v.trashed}), **MEMBERS_WRITE),),
    ("DELETE", "/api/v1/trash"): (attack(
        lambda c, auth, v: c.delete("/api/v1/trash", headers=auth, params={"path": v.trashed}),
        attacker=(200,), attacker_check=_check_purged(False), owner_check=_check_purged(True),
        note="purging A's path empties nothing of A's"),),

    # Share links: only the owner of an entry makes, lists and revokes its links.
    ("POST", "/api/v1/shares/links"): (attack(
        lambda c, auth, v: c.post("/api/v1/shares/links", headers=auth, json={"path": v.file}),
        owner=(201,), note="B cannot link A's file: it is not in B's tree",
        editor=(403,), viewer=(403,)),),
    ("GET", "/api/v1/shares/links"): (attack(
        _get("/api/v1/shares/links", path=lambda v: v.file), attacker=(200,),
        owner_call=_own_link_listing, attacker_check=_check_links(False),
        owner_check=_check_links(True), note="B lists only B's own links"),),
    ("DELETE", "/api/v1/shares/links/{link_id}"): (attack(
        _revoke_victims_link, owner=(204,)),),
    ("GET", "/s/{token}"): no_object(
        "public by design: the random link token is the capability (guessing, escapes and "
        "passwords: tests/sharing/test_links.py)"),
    ("GET", "/s/{token}/meta"): no_object("public by design, like GET /s/{token}"),
    ("POST", "/s/{token}"): no_object(
        "public file drop: only an upload-only link's token lets anyone add files"),

    # App passwords: the caller's own; another's cannot be revoked by name.
    ("POST", "/api/v1/app-passwords"): no_object(
        "creates an app password on the caller's own account",
        lambda c, auth, v: c.post("/api/v1/app-passwords", headers=auth,
                                  json={"name": f"dev-{uuid.uuid4().hex[:12]}"})),
    ("GET", "/api/v1/app-passwords"): (attack(
        _get("/api/v1/app-passwords"), attacker=(200,),
        attacker_check=lambda r, v: _no_app_password_of(r, v),
        note="lists only the caller's own"),),
    ("DELETE", "/api/v1/app-passwords/{name}"): (attack(
        _victims_app_password, owner=(204,), note="names are per account"),),

    # WebDAV: the caller's own tree; A's paths do not exist for B.
    ("MOUNT", "/dav"): (
        attack(_over_webdav("GET", lambda v: v.file), **MEMBERS_READ),
        attack(_over_webdav("PROPFIND", lambda v: v.folder, depth="1"), owner=(207,),
               editor=(207,), viewer=(207,)),
        attack(_over_webdav("DELETE", lambda v: v.file), owner=(204,), editor=(204,),
               viewer=(403,)),
    ),


    # Shared folders: only the owner invites, lists members of, removes from and unshares
    # A's folder; invitations are the invitee's alone.
    ("POST", "/api/v1/shares/folders"): (attack(
        lambda c, auth, v: c.post("/api/v1/shares/folders", headers=auth, json={
            "path": v.folder, "username": _someone(c)["name"]}), owner=(201,),
        editor=(403,), viewer=(403,)),),
    ("GET", "/api/v1/shares/folders"): (attack(
        lambda c, auth, v: _after_sharing(c, v, lambda _: c.get(
            "/api/v1/shares/folders", headers=auth)),
        attacker=(200,), attacker_check=_check_listed("folders", False),
        owner_check=_check_listed("folders", True), note="B lists only B's own",
        **MEMBERS_READ),),
    ("GET", "/api/v1/shares/folders/members"): (attack(
        lambda c, auth, v: _after_sharing(c, v, lambda _: c.get(
            "/api/v1/shares/folders/members", headers=auth, params={"path": v.folder})),
        **MEMBERS_READ),),
    ("DELETE", "/api/v1/shares/folders/members"): (attack(
        lambda c, auth, v: _after_sharing(c, v, lambda name: c.delete(
            "/api/v1/shares/folders/members", headers=auth,
            params={"path": v.folder, "username": name})), owner=(204,),
        editor=(403,), viewer=(403,)),),
    ("POST", "/api/v1/shares/folders/leave"): (attack(
        lambda c, auth, v: _after_sharing(c, v, lambda _: c.post(
            "/api/v1/shares/folders/leave", headers=auth, json={"path": v.folder})),
        owner=(400,), note="the owner cannot leave, only unshare",
        editor=(204,), viewer=(204,)),),
    ("POST", "/api/v1/shares/folders/unshare"): (attack(
        lambda c, auth, v: _after_sharing(c, v, lambda _: c.post(
            "/api/v1/shares/folders/unshare", headers=auth, json={"path": v.folder})),
        owner=(204,), editor=(403,), viewer=(403,)),),
    ("GET", "/api/v1/shares/invites"): (attack(
        lambda c, auth, v: _after_invite(c, v, lambda _: c.get(
            "/api/v1/shares/invites", headers=auth)),
        attacker=(200,), attacker_check=_check_listed("invites", False),
        owner_check=_check_listed("invites", True), note="B sees only B's invitations"),),
    ("POST", "/api/v1/shares/invites/{invite_id}/accept"): (attack(
        lambda c, auth, v: _after_invite(c, v, lambda i: c.post(
            f"/api/v1/shares/invites/{i}/accept", headers=auth, json={})), owner=(201,)),),
    ("DELETE", "/api/v1/shares/invites/{invite_id}"): (attack(
        lambda c, auth, v: _after_invite(c, v, lambda i: c.delete(
            f"/api/v1/shares/invites/{i}", headers=auth)), owner=(204,)),),

    # Operators only: anyone else gets 403, whatever they send.
    ("GET", "/api/v1/admin/nodes"): admin(),
    ("GET", "/api/v1/admin/status"): admin(),
    ("POST", "/api/v1/admin/nodes/{name}/drain"): admin(),
    ("POST", "/api/v1/admin/rebalance"): admin(),
    ("POST", "/api/v1/admin/repair"): admin(),
    ("POST", "/api/v1/admin/gc"): admin(),
    ("POST", "/api/v1/admin/orphans"): admin(),
    ("POST", "/api/v1/admin/check"): admin(),
    ("GET", "/api/v1/admin/users"): admin(),
    ("POST", "/api/v1/admin/users"): admin(lambda c, auth, v: c.post(
        "/api/v1/admin/users", headers=auth,
        json={"username": f"made-{uuid.uuid4().hex[:8]}", "password": PASSWORD})),
    ("POST", "/api/v1/admin/users/{username}/disable"): admin(
        lambda c, auth, v: c.post(f"/api/v1/admin/users/{v.username}/disable", headers=auth)),
    ("POST", "/api/v1/admin/users/{username}/enable"): admin(
        lambda c, auth, v: c.post(f"/api/v1/admin/users/{v.username}/enable", headers=auth)),
    ("DELETE", "/api/v1/admin/users/{username}"): admin(
        lambda c, auth, v: c.delete(f"/api/v1/admin/users/{v.username}", headers=auth)),
    ("POST", "/api/v1/admin/users/{username}/password"): admin(
        lambda c, auth, v: c.post(f"/api/v1/admin/users/{v.username}/password", headers=auth,
                                  json={"new_password": PASSWORD + "x"})),
    ("PUT", "/api/v1/admin/users/{username}/quota"): admin(
        lambda c, auth, v: c.put(f"/api/v1/admin/users/{v.username}/quota", headers=auth,
                                 json={"quota_bytes": 1})),
    ("POST", "/api/v1/admin/invites"): admin(lambda c, auth, v: c.post(
        "/api/v1/admin/invites", headers=auth, json={})),
}

# Route prefixes that are only for administrators; their entries must be ``admin(...)``.
ADMIN_PREFIXES = ("/api/v1/admin",)


HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _flat_routes(routes: list[Any]) -> list[Any]:
    """Starlette routes with FastAPI's included routers opened up (it nests them lazily)."""
    flat: list[Any] = []
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if callable(contexts):
            # A context stands for an API route itself, or wraps any other Starlette route.
            flat += _flat_routes([ctx.starlette_route if ctx.starlette_route is not None
                                  else ctx for ctx in contexts()])
        else:
            flat.append(route)
    return flat


def served_routes(openapi: dict[str, Any], app: Any) -> set[tuple[str, str]]:
    """Every route of the API: the operations in its schema, plus what the app object serves
    outside it (hidden routes, WebSockets, mounts), as ``(METHOD, path)`` pairs."""
    found = {(method.upper(), path) for path, ops in openapi["paths"].items()
             for method in ops if method in HTTP_METHODS}
    for route in _flat_routes(list(app.routes)):
        methods = getattr(route, "methods", None)
        if methods:
            # Starlette answers HEAD for every GET; it is the same handler.
            found.update((m, route.path) for m in (set(methods) - {"HEAD"} or methods))
        elif type(route).__name__.endswith("WebSocketRoute"):
            found.add(("WS", route.path))
        else:
            found.add(("MOUNT", getattr(route, "path", type(route).__name__)))
    return found
