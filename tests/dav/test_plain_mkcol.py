"""An MKCOL of something that exists is refused on the event loop (dav/plain_mkcol.py),
beside wsgidav: the same 405 the library gives (dav/error_pages.py), for a folder, a file, the
root or a shared folder's mount point; every other MKCOL (a body, another depth, a new name, a
missing parent) and every refusal before the protocol (credentials, rate) answers as before."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from minidropbox.api.app import create_app
from minidropbox.api.context import build_context
from minidropbox.dav.gate import DavGate
from minidropbox.dav.plain_mkcol import plain_mkcol_path
from minidropbox.settings import Settings
from tests.dav.conftest import DavUser, new_dav_user
from tests.dav.test_shared_folders import _share
from tests.harness import TestCluster


@pytest.mark.parametrize(("path", "headers", "taken"), [
    ("/dav/a/b", {}, True),
    ("/dav/a/b/", {"depth": "0", "content-length": "0"}, True),
    ("/dav/", {"if": "(<opaquelocktoken:x>)", "x-oc-mtime": "1"}, True),  # judged after 405
    ("/dav/a/b", {"depth": "1"}, False),  # 400 first
    ("/dav/a/b", {"depth": "infinity"}, False),
    ("/dav/a/b", {"content-length": "3"}, False),  # 415 first
    ("/dav/a/b", {"transfer-encoding": "chunked"}, False),  # a body, whatever its length
    ("/dav/a/../b", {}, False),
])
def test_only_bodiless_depth_0_mkcols_are_taken(path: str, headers: dict[str, str],
                                                taken: bool) -> None:
    assert (plain_mkcol_path({"method": "MKCOL", "path": path}, headers, "/dav")
            is not None) is taken
    assert plain_mkcol_path({"method": "PUT", "path": "/dav/a"}, {}, "/dav") is None


def _empty() -> Iterator[bytes]:
    yield from ()


def _page(r: httpx.Response) -> tuple[int, str, str]:
    return r.status_code, r.headers["content-type"], r.text


@pytest.fixture
def owner_and_member(dav_cluster: TestCluster) -> tuple[DavUser, DavUser]:
    owner, member = (new_dav_user(dav_cluster.url, n) for n in ("mkown", "mkmem"))
    with owner.client() as o, member.client() as m:
        for folder in ("/dav/Team", "/dav/Looking"):
            assert o.request("MKCOL", folder).status_code == 201
        assert m.request("MKCOL", "/dav/d").status_code == 201
        assert m.put("/dav/d/f.txt", content=b"x").status_code == 201
    _share(owner, "/Team", member, "editor", "/From Owner")
    _share(owner, "/Looking", member, "viewer", "/Viewing")
    return owner, member


@pytest.mark.parametrize(("path", "kind"), [
    ("/dav/d", "folder"), ("/dav/d/", "folder"), ("/dav/D", "folder"), ("/dav/d/f.txt", "file"),
    ("/dav/d/f.txt/", "file"), ("/dav/", "folder"), ("/dav/From%20Owner", "folder"),
    ("/dav/Viewing/", "folder")])
def test_mkcol_of_what_exists_answers_as_wsgidav_did(
        owner_and_member: tuple[DavUser, DavUser], path: str, kind: str) -> None:
    _, member = owner_and_member
    with member.client() as dav:
        taken = dav.request("MKCOL", path)
        # A chunked empty body is no body to wsgidav, but the fast path leaves it alone.
        library = dav.request("MKCOL", path, content=_empty())
        options = dav.options(path).headers["allow"]
    assert library.request.headers["transfer-encoding"] == "chunked"
    assert taken.status_code == 405, taken.text
    assert _page(taken) == _page(library)
    assert taken.json()["error"] == {
        "code": "method_not_allowed",
        "message": "Method Not Allowed: MKCOL can only be executed on an unmapped URL."}
    # RFC 9110: a 405 names what is allowed; as OPTIONS does (no MKCOL: the name is taken)
    assert taken.headers["allow"] == library.headers["allow"] == options
    assert ("PUT" in options.split(", ")) is (kind == "file") and "MKCOL" not in options


def test_other_mkcols_answer_as_before(owner_and_member: tuple[DavUser, DavUser]) -> None:
    _, member = owner_and_member
    with member.client() as dav:
        r = dav.request("MKCOL", "/dav/d", content=b"<x/>")
        assert r.status_code == 415, r.text
        for depth in ("1", "infinity"):
            r = dav.request("MKCOL", "/dav/d", headers={"Depth": depth})
            assert r.status_code == 400 and "Depth must be" in r.text, r.text
        r = dav.request("MKCOL", "/dav/d/%2e%2e/d")  # a dot segment httpx leaves alone
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_path"
        assert dav.request("MKCOL", "/dav/no/parent").status_code == 409
        assert dav.request("MKCOL", "/dav/d/f.txt/under").status_code == 409
        assert dav.request("MKCOL", "/dav/Viewing/new").status_code == 403
        assert dav.request("MKCOL", "/dav/d/new").status_code == 201
        assert dav.request("MKCOL", "/dav/From%20Owner/new").status_code == 201
        assert dav.request("MKCOL", "/dav/d/new").status_code == 405
        r = dav.request("PROPFIND", "/dav/d/new", headers={"Depth": "0"})
        assert r.status_code == 207 and b"collection" in r.content, r.text  # a folder


@pytest.mark.parametrize("auth", [None, "wrong"])
@pytest.mark.parametrize("path", ["/dav/d", "/dav/new-name"])
def test_credentials_are_judged_first(owner_and_member: tuple[DavUser, DavUser],
                                      auth: str | None, path: str) -> None:
    _, member = owner_and_member
    with httpx.Client(base_url=member.base, timeout=60) as c:
        r = c.request("MKCOL", path,
                      auth=(member.username, auth) if auth is not None else None)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", r.text
    assert r.headers["www-authenticate"].startswith("Basic ")


class _Protocol:
    """The app behind the gate (a2wsgi and wsgidav), counting the requests it is given."""

    def __init__(self, app: ASGIApp) -> None:
        self.app, self.methods = app, list[str]()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.methods.append(scope["method"])
        await self.app(scope, receive, send)


@pytest.fixture
def in_process(dav_cluster: TestCluster, tmp_path: Path) -> Iterator[
        tuple[httpx.AsyncClient, DavUser, _Protocol, list[Any]]]:
    """The API app in this process, on the cluster's database, allowing 6 requests a minute
    per account; wsgidav's share of the requests and the transactions begun are counted."""
    user = new_dav_user(dav_cluster.url, "mkin")
    settings = Settings(data_dir=tmp_path, database_url=dav_cluster.database_url,
                        requests_per_minute=6)
    ctx = build_context(settings)
    app = create_app(settings, ctx)
    (gate,) = (r.app for r in app.router.routes if isinstance(r, Mount) and r.path == "/dav")
    assert isinstance(gate, DavGate)
    protocol = gate.app = _Protocol(gate.app)
    begun: list[Any] = []
    event.listen(ctx.db.engine, "begin", begun.append)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                               base_url="http://testserver", auth=user.auth)
    try:
        yield client, user, protocol, begun
    finally:
        asyncio.run(_close(client, ctx))


async def _close(client: httpx.AsyncClient, ctx: Any) -> None:
    await client.aclose()
    await ctx.stop()
    ctx.db.dispose()


def test_mkcol_of_what_exists_never_reaches_wsgidav(
        in_process: tuple[httpx.AsyncClient, DavUser, _Protocol, list[Any]]) -> None:
    client, _, protocol, begun = in_process

    async def scenario() -> None:
        assert (await client.request("MKCOL", "/dav/d")).status_code == 201
        assert protocol.methods == ["MKCOL"]
        begun.clear()
        r = await client.request("MKCOL", "/dav/d/")
        assert r.status_code == 405 and "unmapped URL" in r.text, r.text
        assert protocol.methods == ["MKCOL"]  # answered before wsgidav
        assert len(begun) == 1  # the caller and the entry in one read transaction
        assert (await client.request("MKCOL", "/dav/d",
                                     headers={"Depth": "1"})).status_code == 400
        assert (await client.request("MKCOL", "/dav/d", content=b"x")).status_code == 415
        assert protocol.methods == ["MKCOL"] * 3  # everything else is wsgidav's
    asyncio.run(scenario())


def test_a_caller_over_the_rate_is_refused_after_their_credentials(
        in_process: tuple[httpx.AsyncClient, DavUser, _Protocol, list[Any]]) -> None:
    client, user, protocol, _ = in_process

    async def scenario() -> None:
        assert (await client.request("MKCOL", "/dav/d")).status_code == 201
        for _ in range(5):
            assert (await client.request("MKCOL", "/dav/d")).status_code == 405
        for path in ("/dav/d", "/dav/new"):
            r = await client.request("MKCOL", path)
            assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_requests", \
                r.text
            assert int(r.headers["retry-after"]) >= 1
            r = await client.request("MKCOL", path, auth=(user.username, "wrong"))
            assert r.status_code == 401, r.text
        assert protocol.methods == ["MKCOL"]
    asyncio.run(scenario())
