"""The HTTP client for the API: authentication, token refresh, and error mapping.

Every non-2xx answer becomes the matching ``MiniDropboxError`` with the server's message, so
the CLI prints one clear line. An expired access token is refreshed once, transparently.
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

ERRORS_BY_STATUS: dict[int, type[errors.MiniDropboxError]] = {
    400: errors.InvalidInput, 401: errors.Unauthorized, 403: errors.Forbidden,
    404: errors.NotFound, 409: errors.Conflict, 410: errors.CursorReset,
    413: errors.PayloadTooLarge, 416: errors.RangeNotSatisfiable, 422: errors.InvalidInput,
    429: errors.TooManyRequests, 503: errors.StorageUnavailable, 507: errors.QuotaExceeded,
}
ERRORS_BY_CODE: dict[str, type[errors.MiniDropboxError]] = {
    "version_conflict": errors.VersionConflict, "already_exists": errors.AlreadyExists,
    "invalid_path": errors.InvalidPath, "hash_mismatch": errors.HashMismatch,
    "missing_chunk": errors.MissingChunk,
}


class ServerUnreachable(errors.MiniDropboxError):
    """Cannot reach the server."""

    exit_code = 7


def raise_for_error(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    code, message, details = "error", f"HTTP {response.status_code}", {}
    try:
        body = response.json()
        err = body.get("error", {})
        code = err.get("code", code)
        message = err.get("message", message)
        details = {k: v for k, v in err.items() if k not in ("code", "message")}
    except (ValueError, AttributeError):
        pass
    cls = ERRORS_BY_CODE.get(code) or ERRORS_BY_STATUS.get(response.status_code,
                                                            errors.MiniDropboxError)
    if cls is errors.TooManyRequests:
        raise errors.TooManyRequests(message,
                                     retry_after=int(response.headers.get("Retry-After", "1")))
    raise cls(message, **details)


class ApiClient:
    def __init__(self, server: str, credentials: Credentials | None = None,
                 timeout: float = 60.0, persist: bool = True) -> None:
        self.server = server.rstrip("/")
        self.credentials = credentials
        self.persist = persist
        self._refresh_lock = threading.RLock()
        self.http = httpx.Client(base_url=self.server, timeout=timeout,
                                 limits=httpx.Limits(max_connections=32))

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- auth -------------------------------------------------------------------------------
    def login(self, username: str, password: str, device: str = "") -> Credentials:
        body = self.request_json("POST", "/api/v1/auth/login", auth=False,
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
            body = self.request_json("POST", "/api/v1/auth/refresh", auth=False,
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
