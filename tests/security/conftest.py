"""What the security suite shares: one real cluster per test worker, and fresh users on it.

One cluster (API + 2 storage nodes) serves most of the suite so that it stays fast on two
cores; every test makes its own users with unique names, so tests never see each other's
objects. Tests that need other settings (a low request rate, CORS, short timeouts, login
throttling) start their own API process.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy

from tests.conftest import bearer, signup_and_login
from tests.harness import ServerProcess, TestCluster, start_api

MiB = 1024 * 1024
QUOTA = 6 * MiB  # small enough to reach in a test, big enough for everything else
PAGE_SIZE = 50  # the server's page cap on this cluster


@pytest.fixture(scope="session")
def sec_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    with TestCluster(tmp_path_factory.mktemp("security"), nodes=2, replicas=2,
                     env={"quota_bytes": QUOTA, "max_page_size": PAGE_SIZE}) as c:
        yield c


# The edge API: no storage nodes, and settings small enough to reach in a test.
EDGE_ORIGIN = "https://app.example"
EDGE_RATE = 20  # requests per minute per user
EDGE_HEAD_TIMEOUT = 2.0
EDGE_BODY_WINDOW = 1.0


@pytest.fixture(scope="session")
def edge_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_api(tmp_path_factory.mktemp("edge"), env={
        "requests_per_minute": EDGE_RATE, "cors_origins": f"{EDGE_ORIGIN},*",
        "head_timeout": EDGE_HEAD_TIMEOUT, "body_window": EDGE_BODY_WINDOW})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(sec_cluster: TestCluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sec_cluster.url, timeout=60) as c:
        yield c


@dataclass
class User:
    name: str
    tokens: dict[str, str]

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.tokens)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def new_user(client: httpx.Client, prefix: str = "user") -> User:
    name = unique(prefix)[:32]
    return User(name, signup_and_login(client, name))


def database(cluster: TestCluster) -> sqlalchemy.Engine:
    """The metadata database the cluster's API uses (SQLite file, or PostgreSQL in CI)."""
    url = cluster.api.env.get("MINIDROPBOX_DATABASE_URL") or \
        f"sqlite:///{cluster.tmp / 'api-data' / 'metadata.db'}"
    return sqlalchemy.create_engine(url)


def make_admin(cluster: TestCluster, username: str) -> None:
    """Promote a user the way an operator does: in the metadata database, not over HTTP."""
    engine = database(cluster)
    try:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("UPDATE users SET is_admin = true WHERE username = :u"),
                         {"u": username})
    finally:
        engine.dispose()


def secrets_of(data_dir: Path) -> dict[str, str]:
    """The secrets a server process generated into its data dir (name → value)."""
    folder = data_dir / "secrets"
    return {p.name: p.read_text().strip() for p in folder.iterdir()} if folder.exists() else {}


# Keys that would name internal rows, sessions or credentials if they showed up in a body.
INTERNAL_KEYS = re.compile(r"^(id|user_id|entry_id|namespace_id|session_id|sid|version_id|"
                           r"chunk_id|password_hash|refresh_hash|password|secret|node|nodes|"
                           r"replicas|url|node_url|disk_path|file_path)$")
