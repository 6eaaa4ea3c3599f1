"""WebDAV errors answer in the product's JSON error body, never wsgidav's HTML page (which
names the library and its version), and every 405 says what is allowed (dav/error_pages.py);
errors whose XML body RFC 4918 defines keep it."""

from __future__ import annotations

import httpx

from minidropbox.dav.error_pages import FILE_METHODS, FOLDER_METHODS, NEW_METHODS
from tests.dav.conftest import new_dav_user
from tests.dav.test_shared_folders import _share
from tests.harness import TestCluster


def _error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json", r.text
    assert "wsgidav" not in r.text.lower()
    error = r.json()["error"]
    assert error["code"] == code, error
    return str(error["message"])


def test_protocol_errors_are_json(dav: httpx.Client) -> None:
    assert dav.request("MKCOL", "/dav/d").status_code == 201
    assert dav.put("/dav/d/f.txt", content=b"x").status_code == 201
    assert _error(dav.get("/dav/nope"), 404, "not_found") == "Not Found: /nope"
    assert _error(dav.delete("/dav/nope"), 404, "not_found") == "Not Found: /nope"
    message = _error(dav.request("MKCOL", "/dav/a/b"), 409, "conflict")
    assert message == "Conflict: Parent must be an existing collection."
    _error(dav.request("MOVE", "/dav/d/f.txt", headers={
        "Destination": "/dav/d/g.txt", "Overwrite": "X"}), 400, "invalid_input")
    _error(dav.request("MKCOL", "/dav/e", content=b"<x/>"), 415, "unsupported_media_type")
    assert dav.put("/dav/d/g.txt", content=b"y").status_code == 201
    _error(dav.request("MOVE", "/dav/d/f.txt", headers={
        "Destination": "/dav/d/g.txt", "Overwrite": "F"}), 412, "precondition_failed")
    assert dav.get("/dav/d/f.txt").content == b"x"  # nothing lost to a refused request


def test_a_405_says_what_is_allowed(dav: httpx.Client) -> None:
    assert dav.request("MKCOL", "/dav/d").status_code == 201
    assert dav.put("/dav/d/f.txt", content=b"x").status_code == 201
    for method, path, allowed in [("PUT", "/dav/d", FOLDER_METHODS),
                                  ("POST", "/dav/d/f.txt", FILE_METHODS),
                                  ("PATCH", "/dav/d", FOLDER_METHODS),
                                  ("POST", "/dav/d/new.txt", NEW_METHODS),
                                  ("MKCOL", "/dav/d", FOLDER_METHODS),
                                  ("MKCOL", "/dav/d/f.txt", FILE_METHODS)]:
        r = dav.request(method, path)
        _error(r, 405, "method_not_allowed")
        assert r.headers["allow"] == allowed, (method, path)
        if method != "POST" or path.endswith("f.txt") or path == "/dav/d":
            assert r.headers["allow"] == dav.options(path).headers["allow"], (method, path)
    assert dav.options("/dav/d/new.txt").headers["allow"] == NEW_METHODS
    assert dav.get("/dav/d/f.txt").content == b"x"


def test_errors_with_a_defined_xml_body_keep_it(dav: httpx.Client) -> None:
    assert dav.put("/dav/held.txt", content=b"x").status_code == 201
    lock = dav.request("LOCK", "/dav/held.txt", headers={"Timeout": "Second-60"}, content=(
        b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
        b"</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"))
    assert lock.status_code == 200, lock.text
    r = dav.delete("/dav/held.txt")  # without the lock token
    assert r.status_code == 423, r.text
    assert r.headers["content-type"].startswith("application/xml")
    assert b"no-conflicting-lock" in r.content and b">/dav/held.txt</" in r.content, r.text
    r = dav.put("/dav/held.txt", content=b"y")  # through the plain PUT's fallback
    assert r.status_code == 423 and b">/dav/held.txt</" in r.content, r.text
    assert dav.get("/dav/held.txt").content == b"x"


def test_failures_dav_reports_itself_carry_the_products_code(dav_cluster: TestCluster) -> None:
    """DELETE, COPY and MOVE send a single failure as a page of their own; it answers as a
    raised error does, with the product's code and message."""
    owner, member = (new_dav_user(dav_cluster.url, n) for n in ("epown", "epmem"))
    with owner.client() as o:
        assert o.request("MKCOL", "/dav/Looking").status_code == 201
        assert o.put("/dav/Looking/in.txt", content=b"z").status_code == 201
    _share(owner, "/Looking", member, "viewer", "/Viewing")
    with member.client() as m:
        assert m.put("/dav/x.txt", content=b"x").status_code == 201
        assert m.request("MKCOL", "/dav/fold").status_code == 201
        for method, path, dest in [("MOVE", "/dav/x.txt", "/dav/Viewing/x.txt"),
                                   ("COPY", "/dav/fold", "/dav/Viewing/fold"),
                                   ("DELETE", "/dav/Viewing/in.txt", None)]:
            r = m.request(method, path, headers={"Destination": dest} if dest else {})
            assert _error(r, 403, "read_only") == "/Viewing is shared with you read-only."
        assert m.get("/dav/x.txt").content == b"x"
        assert m.get("/dav/Viewing/in.txt").content == b"z"
