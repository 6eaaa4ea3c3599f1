"""The HTTP client for the API: authentication, token refresh, and error mapping.

Every non-2xx answer becomes the matching ``MiniDropboxError`` with the server's message, so
the CLI prints one clear line. An expired access token is refreshed once, transparently.

This is the lowest client layer: it knows where the API lives (``API_ROOT``) and how to stay
logged in, nothing about files. ``client/remote.py`` has one method per endpoint on top of it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from minidropbox.client.config import (
    Credentials,
    credentials_lock,
    load_credentials,
    save_credentials,
)
from minidropbox.core import errors

API_ROOT = "/api/v1"  # every route of the API is below this path
ErrorClass = type[errors.MiniDropboxError]


def _error_tree() -> list[ErrorClass]:
    """The classes of ``core.errors``, each parent before its children."""
    out: list[ErrorClass] = []
    pending = [errors.MiniDropboxError]
    while pending:
        cls = pending.pop(0)
        if cls.__module__ == errors.__name__ and "code" in vars(cls):
            out.append(cls)
        pending.extend(cls.__subclasses__())
    return out


def _maps() -> tuple[dict[str, ErrorClass], dict[int, ErrorClass]]:
    """Error code -> class, and HTTP status -> the most general class with that status,
    built from the exception tree so that a new class is mapped the moment it exists."""
    by_code: dict[str, ErrorClass] = {}
    by_status: dict[int, ErrorClass] = {}
    for cls in _error_tree():
        by_code.setdefault(cls.code, cls)
        by_status.setdefault(cls.status, cls)
    by_status[422] = errors.InvalidInput  # a request the server could not validate
    return by_code, by_status


ERRORS_BY_CODE, ERRORS_BY_STATUS = _maps()


def error_from_body(status: int, body: object, retry_after: str | None = None,
                    ) -> errors.MiniDropboxError:
    """The exception an error answer stands for: its ``code`` picks the class (else its
    status does); the message and any further fields (``current_version``) come along."""
    code, message, details = "error", f"HTTP {status}", {}
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        code = str(err.get("code", code))
        message = str(err.get("message", message))
        details = {k: v for k, v in err.items() if k not in ("code", "message")}
    cls = ERRORS_BY_CODE.get(code) or ERRORS_BY_STATUS.get(status, errors.MiniDropboxError)
    if issubclass(cls, errors.TooManyRequests):
        try:
            wait = int(retry_after or "1")
        except ValueError:
            wait = 1
        return cls(message, retry_after=wait)
    return cls(message, **details)


class ServerUnreachable(errors.MiniDropboxError):
    """Cannot reach the server."""

    exit_code = 7


def raise_for_error(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    raise error_from_body(response.status_code, body, response.headers.get("Retry-After"))


class ApiClient:
    def __init__(self, server: str, credentials: Credentials | None = None,
                 timeout: float = 60.0, persist: bool = True,
                 transport: httpx.BaseTransport | None = None) -> None:
        """``persist``: read and write the credentials file on refresh (the CLI does; tests
        and embedded uses do not). ``transport``: tests pass ``httpx.MockTransport``."""
        self.server = server.rstrip("/")
        self.credentials = credentials
        self.persist = persist
        self._refresh_lock = threading.RLock()
        self.http = httpx.Client(base_url=self.server, timeout=timeout, transport=transport,
                                 limits=httpx.Limits(max_connections=32))

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- auth -------------------------------------------------------------------------------
    def login(self, username: str, password: str, device: str = "") -> Credentials:
        """Log in; the client keeps the new credentials (saving them is the caller's choice)."""
        body = self.request_json("POST", f"{API_ROOT}/auth/login", auth=False,
                                 json={"username": username, "password": password,
                                       "device": device})
        self.credentials = Credentials(self.server, username.lower(), body["access_token"],
                                       body["refresh_token"], time.time() + body["expires_in"])
        return self.credentials

    def refresh(self, stale: str | None = None) -> None:
        """Trade the refresh token for a new pair, at most once per expired access token.

        A refresh token works exactly once (reuse revokes the session), so refreshes are
        serialised: across threads by a lock, and across processes sharing the credentials
        file (a sync daemon and a CLI command) by a file lock plus a re-read, adopting a pair
        another process already got. ``stale`` is the access token the caller saw refused.
        """
        with self._refresh_lock, credentials_lock(self.persist):
            creds = self.credentials
            if not creds:
                raise errors.Unauthorized("Not logged in; run `minidropbox login`.")
            if self.persist:
                saved = load_credentials()
                if (saved is not None and saved.server == creds.server
                        and saved.username == creds.username
                        and saved.refresh_token != creds.refresh_token):
                    self.credentials = creds = saved
            if stale is not None and creds.access_token != stale:
                return  # someone refreshed while we waited
            if stale is None and creds.expires_at - time.time() >= 30:
                return
            body = self.request_json("POST", f"{API_ROOT}/auth/refresh", auth=False,
                                     json={"refresh_token": creds.refresh_token})
            creds.access_token = body["access_token"]
            creds.refresh_token = body["refresh_token"]
            creds.expires_at = time.time() + body["expires_in"]
            if self.persist:
                save_credentials(creds)

    def access_token(self) -> str:
        if not self.credentials:
            raise errors.Unauthorized("Not logged in; run `minidropbox login`.")
        if self.credentials.expires_at - time.time() < 30:
            self.refresh()
        return self.credentials.access_token

    def _headers(self, auth: bool, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        if auth:
            headers["Authorization"] = f"Bearer {self.access_token()}"
        return headers

    def websocket_url(self, path: str) -> str:
        """``ws(s)://`` for the server's ``http(s)://``, with ``path`` below ``API_ROOT``."""
        for http, ws in (("https://", "wss://"), ("http://", "ws://")):
            if self.server.startswith(http):
                return ws + self.server[len(http):] + API_ROOT + path
        raise errors.InvalidInput(f"Not an http(s) server URL: {self.server}")

    # -- requests ---------------------------------------------------------------------------
    def request(self, method: str, url: str, *, auth: bool = True,
                headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        for attempt in range(2):
            sent = self._headers(auth, headers)
            try:
                response = self.http.request(method, url, headers=sent, **kwargs)
            except httpx.TransportError as exc:
                raise ServerUnreachable(f"Cannot reach {self.server}: {exc}") from exc
            if response.status_code == 401 and auth and attempt == 0 and self.credentials:
                self.refresh(stale=sent["Authorization"].removeprefix("Bearer "))
                continue
            raise_for_error(response)
            return response
        raise_for_error(response)
        return response

    def request_json(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self.request(method, url, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    @contextmanager
    def stream(self, method: str, url: str, *, headers: dict[str, str] | None = None,
               **kwargs: Any) -> Iterator[httpx.Response]:
        try:
            with self.http.stream(method, url, headers=self._headers(True, headers),
                                  **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    raise_for_error(response)
                yield response
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"Cannot reach {self.server}: {exc}") from exc
