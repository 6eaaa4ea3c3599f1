"""WebDAV error answers in the product's JSON error body, with ``Allow`` on every 405.

wsgidav answers an error with an HTML page naming itself and its version (and, for an error
it wrapped, the repr of the exception behind it), its 405s carry no ``Allow`` header (RFC 9110
§15.5.6 requires one), and the lock roots a 423 names are internal reference URLs
(``/<namespace>/<path>``, ``provider.ref_url``). ``JsonErrors`` sits between wsgidav's
``ErrorPrinter`` and the request handlers and fixes all three, whichever way the error comes:

- raised (``DAVError``, most errors): answered here as the rest of the API answers,
  ``{"error": {"code", "message"}}`` — the product's own code and message when a
  ``MiniDropboxError`` was behind it (a 507 says ``quota_exceeded``); for a 405 with the
  methods the resource does allow, as ``OPTIONS`` lists them;
- answered by the handler (DELETE, COPY and MOVE send a single failure as a page of its own):
  the page is read (it is small) and answered the same way, with the product's code and
  message if the failure was one (``errors.last_error``).

Errors whose body RFC 4918 defines (a precondition element, as XML) keep it, with their hrefs
given as the caller's ``/dav/`` paths. An unexpected failure is logged with its traceback and
answered ``{"error": {"code": "internal"}}`` (500), never with the exception's repr. Left to
``ErrorPrinter``: the bodiless 204 and 304, and an error once the answer is under way.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from wsgidav import util
from wsgidav.dav_error import DAVError, DAVErrorCondition
from wsgidav.mw.base_mw import BaseMiddleware

from minidropbox.api.errors import STATUS_CODES, error_body
from minidropbox.core.errors import MiniDropboxError
from minidropbox.dav.errors import forget_last_error, last_error

# What OPTIONS answers for each kind of resource (wsgidav's do_OPTIONS, for a writable
# provider with a lock manager, as ours is).
FOLDER_METHODS = "OPTIONS, HEAD, GET, PROPFIND, DELETE, COPY, MOVE, PROPPATCH, LOCK, UNLOCK"
FILE_METHODS = ("OPTIONS, HEAD, GET, PROPFIND, PUT, DELETE, COPY, MOVE, PROPPATCH, LOCK, "
                "UNLOCK")
NEW_METHODS = "OPTIONS, PUT, MKCOL"

log = logging.getLogger("minidropbox.dav")

PAGE_LIMIT = 64 * 1024  # longer is not one of wsgidav's small pages: answered as a failure
_PARAGRAPH = re.compile(rb"<p>(.*?)</p>", re.S)
_HREF = re.compile(rb"(<(?:\w+:)?href>)([^<]*)(</(?:\w+:)?href>)")


def allowed_methods(kind: str | None) -> str:
    """The ``Allow`` value for a folder, a file, or None: a name not mapped yet."""
    return {"folder": FOLDER_METHODS, "file": FILE_METHODS}.get(kind or "", NEW_METHODS)


def _answer(code: str, message: str) -> tuple[bytes, list[tuple[str, str]]]:
    """The JSON body of an error and its content headers."""
    body = json.dumps(error_body(code, message)).encode()
    return body, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _code(status: int) -> str:
    return STATUS_CODES.get(status, re.sub(r"\W+", "_", _reason(status).lower()))


def _described(error: DAVError) -> tuple[str, str]:
    """The code and message of a raised error: the product's own when it came from one."""
    cause = error.__cause__
    if isinstance(cause, MiniDropboxError) and cause.status == error.value:
        return cause.code, cause.message
    reason = _reason(error.value)
    context = error.context_info
    return _code(error.value), f"{reason}: {context}" if context else f"{reason}."


def _page_message(status: int, page: bytes) -> str:
    """The message of one of wsgidav's HTML error pages: its first line past the status
    (what follows is the repr of an exception, for the log, not for the client)."""
    found = _PARAGRAPH.search(page)
    text = html.unescape(found.group(1).decode("utf-8", "replace")) if found else ""
    first = text.split("\n", 1)[0].strip()
    first = re.sub(rf"^{status}\s*", "", first)
    return first or f"{_reason(status)}."


class JsonErrors(BaseMiddleware):  # type: ignore[misc]
    """wsgidav middleware: see the module docstring."""

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterator[bytes]:
        # Handlers may raise while their answer is iterated, so iterate here, and hold their
        # status and headers back until the first piece of the body (as ErrorPrinter does):
        # an error raised before it can still be answered instead.
        held = util.SubAppStartResponse()
        started = False
        forget_last_error()
        try:
            answer = self.next_app(environ, held)
            try:
                pieces = iter(answer)
                first = next(pieces, None)
                status = int(held.status.split(" ", 1)[0] or 200)
                if status >= 400:
                    page = _error_page(environ, status, held, first, pieces)
                    if page is not None:
                        status_line, headers, body = page
                        start_response(status_line, headers)
                        started = True
                        yield body
                        return
                start_response(held.status, held.response_headers, held.exc_info)
                started = True
                if first is not None:
                    yield first
                yield from pieces
            finally:
                if hasattr(answer, "close"):
                    answer.close()
        except DAVError as error:
            if started:
                raise  # the answer is under way: ErrorPrinter's turn (it cannot answer either)
            if error.err_condition is not None:
                _public_hrefs(environ, error.err_condition)
            if error.err_condition is not None or error.value in (204, 304):
                raise
            if error.value == 500 and not isinstance(error.__cause__, MiniDropboxError):
                yield from _internal(environ, start_response, error.src_exception or error)
                return
            code, message = _described(error)
            body, headers = _answer(code, message)
            headers += [("Date", util.get_rfc1123_time()), *(error.add_headers or [])]
            if error.value == 405:
                headers.append(("Allow", allowed_methods(_kind(environ))))
            start_response(f"{error.value} {_reason(error.value)}", headers)
            yield body
        except Exception as exc:
            if started:
                raise
            yield from _internal(environ, start_response, exc)


def _error_page(environ: dict[str, Any], status: int,
                held: util.SubAppStartResponse, first: bytes | None,
                pieces: Iterator[bytes]) -> tuple[str, list[tuple[str, str]], bytes] | None:
    """An error page a handler sent itself, answered as a raised error would be; None
    when it is not one of wsgidav's pages (the answer then goes out as it is)."""
    headers = [(k, v) for k, v in held.response_headers
               if k.lower() not in ("content-type", "content-length")]
    content_type = next((v for k, v in held.response_headers
                         if k.lower() == "content-type"), "")
    if not content_type.startswith(("text/html", "application/xml")):
        return None
    body = first or b""
    for piece in pieces:
        body += piece
        if len(body) > PAGE_LIMIT:
            raise DAVError(500, context_info="An error page too long to be wsgidav's.")
    if content_type.startswith("application/xml"):
        body = _HREF.sub(lambda m: m.group(1) + _public_href(environ, m.group(2))
                         + m.group(3), body)
        return held.status, [*headers, ("Content-Type", content_type),
                             ("Content-Length", str(len(body)))], body
    failure = last_error()
    if failure is not None and failure.status == status:
        code, message = failure.code, failure.message
    elif status == 500:
        log.error("unhandled error on %s /dav%s: %s", environ.get("REQUEST_METHOD"),
                  environ.get("PATH_INFO"), _page_message(status, body))
        code, message = "internal", "Internal server error."
    else:
        code, message = _code(status), _page_message(status, body)
    body, content = _answer(code, message)
    if status == 405:
        headers.append(("Allow", allowed_methods(_kind(environ))))
    return held.status, [*headers, *content], body


def _internal(environ: dict[str, Any], start_response: Callable[..., Any],
              exc: BaseException) -> Iterator[bytes]:
    """A failure nobody expected: logged with its traceback, answered as the API answers one
    (wsgidav's page would show the client the exception's repr)."""
    log.error("unhandled error on %s /dav%s", environ.get("REQUEST_METHOD"),
              environ.get("PATH_INFO"), exc_info=exc)
    body, headers = _answer("internal", "Internal server error.")
    start_response("500 Internal Server Error", [*headers, ("Date", util.get_rfc1123_time())])
    yield body


def _kind(environ: dict[str, Any]) -> str | None:
    """What the request's path names: "folder", "file", or None (nothing yet)."""
    provider = environ.get("wsgidav.provider")
    if provider is None:
        return None
    try:
        resource = provider.get_resource_inst(environ["PATH_INFO"], environ)
    except (DAVError, MiniDropboxError):
        return None
    if resource is None:
        return None
    return "folder" if resource.is_collection else "file"


def _public_href(environ: dict[str, Any], href: bytes) -> bytes:
    """A lock root's reference URL as the caller's ``/dav/`` path; another href as it is."""
    provider = environ.get("wsgidav.provider")
    text = href.decode("utf-8", "replace")
    if provider is None or not re.match(r"/\d+(/|$)", text):
        return href
    prefix = str(environ.get("SCRIPT_NAME", "")).rstrip("/")
    path = str(provider.ref_url_to_path(text))
    return (prefix + quote(path)).encode()


def _public_hrefs(environ: dict[str, Any], condition: DAVErrorCondition) -> None:
    condition.hrefs = [_public_href(environ, h.encode()).decode() for h in condition.hrefs]
