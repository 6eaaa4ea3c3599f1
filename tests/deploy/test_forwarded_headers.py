"""X-Forwarded-For is believed only from the proxies named in ``trusted_proxies``: from anyone
else a client could pick the address its failed logins count against, and guess on forever."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.harness import start_api

LOGIN = "/api/v1/auth/login"


def failed_logins(url: str, forwarded_for: list[str]) -> list[int]:
    """One wrong-password login per address (each for another user), as a proxy would send."""
    with httpx.Client(base_url=url, timeout=30) as client:
        return [client.post(LOGIN, headers={"X-Forwarded-For": address},
                            json={"username": f"user-{i}", "password": "wrong-password"}
                            ).status_code
                for i, address in enumerate(forwarded_for)]


def test_forwarded_for_counts_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    spoofed = [f"203.0.113.{i}" for i in range(1, 5)]
    limits = {"login_failures_per_address": 3, "login_failures_per_user": 100}

    # Nobody trusted (the default): the header is ignored, all four count against 127.0.0.1.
    api = start_api(tmp_path / "untrusted", env=limits)
    try:
        assert failed_logins(api.url, spoofed) == [401, 401, 401, 429]
    finally:
        api.stop()

    # This host is the proxy: each client address has its own window, and one address that
    # keeps failing is still stopped.
    api = start_api(tmp_path / "trusted", env={**limits, "trusted_proxies": "127.0.0.1,::1"})
    try:
        assert failed_logins(api.url, spoofed) == [401] * 4
        assert failed_logins(api.url, ["198.51.100.7"] * 4) == [401, 401, 401, 429]
    finally:
        api.stop()
