"""Signup cannot be flooded or used as a probe: a budget per client address (counting taken
names too), client addresses that a forwarded header cannot fake unless a proxy is configured,
Argon2id hashes a few at a time (memory stays flat), and passwords from breach lists refused
(NIST SP 800-63B)."""

from __future__ import annotations

import concurrent.futures
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.harness import ServerProcess, start_api

SIGNUP = "/api/v1/auth/signup"
PER_ADDRESS = 3


@pytest.fixture(scope="module")
def signup_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_api(tmp_path_factory.mktemp("signup"), env={
        "signups_per_address": PER_ADDRESS})
    try:
        yield server
    finally:
        server.stop()


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_signups_per_address_are_capped_and_taken_names_count(
        signup_api: ServerProcess) -> None:
    with httpx.Client(base_url=signup_api.url, timeout=60) as c:
        first = _name("su")
        assert c.post(SIGNUP, json={"username": first, "password": PASSWORD}).status_code == 201
        # Probing a taken name spends the budget like a signup does.
        r = c.post(SIGNUP, json={"username": first, "password": PASSWORD})
        assert r.status_code == 409
        assert c.post(SIGNUP, json={"username": _name("su"),
                                    "password": PASSWORD}).status_code == 201
        for name in (_name("su"), first):  # new or taken: the same 429 once spent
            r = c.post(SIGNUP, json={"username": name, "password": PASSWORD})
            assert r.status_code == 429, r.text
            assert r.json()["error"]["code"] == "too_many_requests"
            assert int(r.headers["retry-after"]) >= 1
        # A forwarded header from an unconfigured "proxy" changes nothing.
        for header in ("X-Forwarded-For", "X-Real-IP", "Forwarded"):
            value = "for=203.0.113.9" if header == "Forwarded" else "203.0.113.9"
            r = c.post(SIGNUP, headers={header: value},
                       json={"username": _name("su"), "password": PASSWORD})
            assert r.status_code == 429, (header, r.text)
        # Invalid requests are refused as before, without spending anything.
        r = c.post(SIGNUP, json={"username": "x", "password": PASSWORD})
        assert r.status_code == 400


@pytest.fixture(scope="module")
def proxied_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """An API behind a (pretend) proxy on 127.0.0.1: X-Forwarded-For names the client."""
    server = start_api(tmp_path_factory.mktemp("proxied"), env={
        "signups_per_address": 1, "trusted_proxies": "127.0.0.1"})
    try:
        yield server
    finally:
        server.stop()


def test_a_configured_proxy_passes_the_client_address(proxied_api: ServerProcess) -> None:
    with httpx.Client(base_url=proxied_api.url, timeout=60) as c:
        for client_address in ("192.0.2.1", "192.0.2.2"):
            r = c.post(SIGNUP, headers={"X-Forwarded-For": client_address},
                       json={"username": _name("px"), "password": PASSWORD})
            assert r.status_code == 201, (client_address, r.text)
        r = c.post(SIGNUP, headers={"X-Forwarded-For": "192.0.2.1"},
                   json={"username": _name("px"), "password": PASSWORD})
        assert r.status_code == 429


def _peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_burst_of_signups_does_not_grow_the_server(proxied_api: ServerProcess) -> None:
    burst = 16
    assert proxied_api.proc is not None
    with httpx.Client(base_url=proxied_api.url, timeout=120) as c:
        # Warm up: the first hashes and requests load what every later one reuses.
        for i in range(2):
            c.post(SIGNUP, headers={"X-Forwarded-For": f"198.18.0.{i}"},
                   json={"username": _name("warm"), "password": PASSWORD})
    before = _peak_rss_mib(proxied_api.proc.pid)

    def signup(i: int) -> int:
        # Each from its own address (through the proxy): the per-address budget is not
        # what stops this burst.
        with httpx.Client(base_url=proxied_api.url, timeout=120) as c:
            return c.post(SIGNUP, headers={"X-Forwarded-For": f"198.18.1.{i}"},
                          json={"username": _name("burst"), "password": PASSWORD}).status_code

    with concurrent.futures.ThreadPoolExecutor(burst) as pool:
        codes = list(pool.map(signup, range(burst)))
    assert codes == [201] * burst
    growth = _peak_rss_mib(proxied_api.proc.pid) - before
    # Each Argon2id hash takes 19 MiB; hashed side by side, 16 signups would take 304 MiB.
    assert growth < 100, f"peak RSS grew {growth:.0f} MiB during {burst} signups"


WEAK = {
    "one letter": "aaaaaaaaaa",
    "breached": "password12",
    "breached, other case": "PassWord123",
    "breached, padded": "  iloveyou12  ",
    "ten spaces": " " * 10,
    "ten NULs": "\x00" * 10,
    "escape inside": "good\x1bpassword",
    "two letters": "abababababab",
    "keyboard row": "qwertyuiop",
}


def test_common_and_trivial_passwords_are_refused(signup_api: ServerProcess) -> None:
    with httpx.Client(base_url=signup_api.url, timeout=60) as c:
        name = _name("pw")
        for label, password in {**WEAK, "the username": f"{name}-secret"}.items():
            r = c.post(SIGNUP, json={"username": name, "password": password})
            assert r.status_code == 400, (label, r.status_code, r.text)
            assert r.json()["error"]["code"] == "invalid_input"
