"""The client spends each refresh token once, however many threads or processes need it."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from minidropbox.client.api import ApiClient
from minidropbox.client.config import load_credentials, save_credentials
from tests.conftest import PASSWORD, signup_and_login
from tests.harness import ServerProcess


def test_threads_share_one_refresh(api_server: ServerProcess, http: httpx.Client,
                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    signup_and_login(http, "tess")
    api = ApiClient(api_server.url)
    creds = api.login("tess", PASSWORD)
    save_credentials(creds)
    creds.expires_at = 0  # every thread now believes the access token has expired
    answers: list[int] = []

    def whoami() -> None:
        answers.append(api.request("GET", "/api/v1/auth/me").status_code)

    threads = [threading.Thread(target=whoami) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [200] * 8
    # A second process holding the old pair adopts the saved one instead of reusing it.
    other = ApiClient(api_server.url, creds_copy := load_credentials())
    assert creds_copy is not None
    stale = ApiClient(api_server.url, type(creds)(**{**vars(creds)}))
    stale.credentials.refresh_token = "stale-but-ignored"  # type: ignore[union-attr]
    stale.credentials.expires_at = 0  # type: ignore[union-attr]
    assert stale.request_json("GET", "/api/v1/auth/me")["username"] == "tess"
    assert other.request_json("GET", "/api/v1/auth/me")["username"] == "tess"
    for client in (api, other, stale):
        client.close()
