"""The browser's session: an HttpOnly cookie, and the CSRF rules for requests that carry it.

A browser logs in through ``POST /api/v1/auth/session`` and gets a cookie holding a session
token (``AccountService.browser_login``): it names a row of the same ``sessions`` table the
API's bearer tokens do, so logout and password changes end it at once. Script never sees the
token (HttpOnly) and nothing is kept in localStorage.

A cookie is sent by the browser on its own, so a request authenticated by it could be forged
by another site. Three defences, each enough on its own against a cross-site form:

1. ``SameSite=Strict``: the browser does not attach the cookie to requests another site starts.
2. Every state-changing request (anything but GET/HEAD/OPTIONS) must carry ``X-CSRF-Token``,
   an HMAC of the session id that the app reads from ``GET /api/v1/auth/session``; a form
   cannot set headers, and a cross-origin ``fetch`` that does is stopped by CORS preflight.
3. When the browser says where a request comes from (``Origin``, ``Sec-Fetch-Site``), it must
   be this origin.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import Response

from minidropbox.core.errors import Forbidden

COOKIE = "minidropbox_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token(secret: str, session_id: str) -> str:
    """The session's CSRF token: derived, so it needs no storage and dies with the session."""
    return hmac.new(secret.encode(), f"csrf:{session_id}".encode(), hashlib.sha256).hexdigest()


def same_origin(headers: Headers, scheme: str) -> bool:
    """False when the browser says the request comes from another origin. A request without
    ``Origin``/``Sec-Fetch-Site`` (not from a browser, or a top-level navigation) passes."""
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    host = headers.get("host", "")
    ws_scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    return parts.scheme == ws_scheme and parts.netloc.lower() == host.lower()


def check_csrf(method: str, headers: Headers, scheme: str, secret: str,
               session_id: str) -> None:
    """Refuse a cookie-authenticated, state-changing request that may come from another site."""
    if method in SAFE_METHODS:
        return
    if not same_origin(headers, scheme):
        raise Forbidden("Cross-site request refused.")
    presented = headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(presented.encode(), csrf_token(secret, session_id).encode()):
        raise Forbidden("Missing or wrong CSRF token; reload the page.")


def set_cookie(response: Response, token: str, max_age: int, https: bool) -> None:
    response.set_cookie(COOKIE, token, max_age=max_age, path="/", httponly=True,
                        samesite="strict", secure=https)


def clear_cookie(response: Response, https: bool) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=https)
