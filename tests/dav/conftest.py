"""What the WebDAV tests share: one real cluster per test worker, and users with app passwords.

Tests make their own users (unique names), so they never see each other's files. The quota
is large enough for the rclone tree (with its 100 MiB file) and small enough to reach.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSWORD, bearer, signup_and_login
from tests.harness import TestCluster

MiB = 1024 * 1024
QUOTA = 160 * MiB


@pytest.fixture(scope="session")
def dav_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    with TestCluster(tmp_path_factory.mktemp("dav"), nodes=2, replicas=2,
                     env={"quota_bytes": QUOTA}) as c:
        yield c


@dataclass
class DavUser:
    username: str
    app_password: str
    api: dict[str, str]  # bearer headers for the API
    base: str  # the API's URL

    @property
    def dav_url(self) -> str:
        return f"{self.base}/dav/"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.username, self.app_password)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, auth=self.auth, timeout=120)


def new_dav_user(base: str, prefix: str = "dav") -> DavUser:
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    with httpx.Client(base_url=base, timeout=60) as c:
        tokens = signup_and_login(c, name, PASSWORD)
        r = c.post("/api/v1/app-passwords", headers=bearer(tokens), json={"name": "laptop"})
        assert r.status_code == 201, r.text
    return DavUser(name, r.json()["password"], bearer(tokens), base)


@pytest.fixture
def dav_user(dav_cluster: TestCluster) -> DavUser:
    return new_dav_user(dav_cluster.url)


@pytest.fixture
def dav(dav_user: DavUser) -> Iterator[httpx.Client]:
    with dav_user.client() as client:
        yield client


def rclone_config(tmp: Path, user: DavUser, vendor: str = "owncloud") -> Path:
    """An rclone config with a ``md:`` remote for ``user`` (the README's remote, verbatim)."""
    import subprocess

    obscured = subprocess.run(["rclone", "obscure", user.app_password], check=True,
                              capture_output=True, text=True).stdout.strip()
    path = tmp / "rclone.conf"
    path.write_text(f"[md]\ntype = webdav\nurl = {user.dav_url}\nvendor = {vendor}\n"
                    f"user = {user.username}\npass = {obscured}\n")
    return path
