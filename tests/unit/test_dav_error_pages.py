"""``JsonErrors`` (dav/error_pages.py) on its own, with stand-in WSGI handlers: every way an
error leaves wsgidav's handlers becomes the product's JSON error body."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from wsgidav.dav_error import DAVError, DAVErrorCondition

from minidropbox.core.errors import QuotaExceeded
from minidropbox.dav.error_pages import NEW_METHODS, JsonErrors

StartResponse = Callable[..., Any]


def _call(handler: Callable[[dict[str, Any], StartResponse], Any],
          environ: dict[str, Any] | None = None) -> tuple[str, dict[str, str], bytes]:
    answered: list[tuple[str, list[tuple[str, str]]]] = []
    app = JsonErrors(None, handler, {})
    body = b"".join(app({"REQUEST_METHOD": "PUT", "PATH_INFO": "/a.txt", **(environ or {})},
                        lambda status, headers, exc_info=None: answered.append((status,
                                                                                headers))))
    status, headers = answered[-1]
    return status, {k.lower(): v for k, v in headers}, body


def _raising(exc: BaseException) -> Callable[[dict[str, Any], StartResponse], Iterator[bytes]]:
    def handler(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        raise exc
        yield b""  # a generator, as wsgidav's handlers are
    return handler


def test_a_raised_error_answers_json_with_the_products_code() -> None:
    status, headers, body = _call(_raising(DAVError(404, context_info="/a.txt")))
    assert status.startswith("404") and headers["content-type"] == "application/json"
    assert json.loads(body) == {"error": {"code": "not_found", "message": "Not Found: /a.txt"}}
    try:
        raise QuotaExceeded("Over quota.")
    except QuotaExceeded as exc:
        wrapped = DAVError(507, context_info=exc.message)
        wrapped.__cause__ = exc
    status, _, body = _call(_raising(wrapped))
    assert status.startswith("507")
    assert json.loads(body)["error"] == {"code": "quota_exceeded", "message": "Over quota."}


def test_a_405_names_what_is_allowed_even_where_nothing_is() -> None:
    status, headers, _ = _call(_raising(DAVError(405)))  # no provider: a name not mapped
    assert status.startswith("405") and headers["allow"] == NEW_METHODS


def test_an_unexpected_failure_is_logged_and_shows_nothing_of_itself(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="minidropbox.dav"):
        status, headers, body = _call(_raising(RuntimeError("secret detail")))
    assert status.startswith("500") and headers["content-type"] == "application/json"
    assert json.loads(body)["error"] == {"code": "internal", "message": "Internal server error."}
    assert b"secret" not in body and "secret detail" in caplog.text


def test_a_page_a_handler_sent_itself_answers_json() -> None:
    def handler(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        content_type, page = DAVError(409, context_info="Parent must exist.").get_response_page()
        start_response("409 Conflict", [("Content-Type", content_type),
                                         ("Content-Length", str(len(page)))])
        return [page]
    status, headers, body = _call(handler)
    assert status.startswith("409") and int(headers["content-length"]) == len(body)
    assert json.loads(body)["error"] == {"code": "conflict",
                                         "message": "Conflict: Parent must exist."}


def test_xml_conditions_and_successes_pass_through() -> None:
    condition = DAVErrorCondition("{DAV:}lock-token-submitted")
    condition.add_href("/dav/a.txt")
    with pytest.raises(DAVError):  # rendered by ErrorPrinter, outside
        _call(_raising(DAVError(423, err_condition=condition)))

    def ok(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        start_response("201 Created", [("Content-Type", "text/html")])
        return [b"<html>created</html>"]
    status, _, body = _call(ok)
    assert status.startswith("201") and body == b"<html>created</html>"
