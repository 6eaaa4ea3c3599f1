"""Fixtures shared by every test directory."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import ServerProcess, TestCluster, drop_created_databases, start_api
from tests.seaweedfs import SeaweedFS, seaweedfs

PASSWORD = "correct horse battery"


@pytest.fixture(scope="session", autouse=True)
def _drop_test_databases() -> Iterator[None]:
    """PostgreSQL databases made for this session's servers go when the session ends."""
    yield
    drop_created_databases()


@pytest.fixture
def api_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A real API process with no storage nodes (accounts and sessions only)."""
    server = start_api(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def module_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One API process with no storage nodes for the tests of a module that only read what
    it serves (pages, assets) or act as accounts of their own."""
    server = start_api(tmp_path_factory.mktemp("module-api"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def http(api_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_server.url, timeout=30) as client:
        yield client


def signup_and_login(client: httpx.Client, username: str,
                     password: str = PASSWORD) -> dict[str, str]:
    """Create a user and return their login response (tokens)."""
    r = client.post("/api/v1/auth/signup", json={"username": username, "password": password})
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    body: dict[str, str] = r.json()
    return body


def bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """One real SeaweedFS (S3) per test worker, with a bucket "contract"."""
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        server.create_bucket("contract")
        yield server


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[TestCluster]:
    """A real API with 3 real storage nodes (R=2), each its own process."""
    with TestCluster(tmp_path) as c:
        yield c


@pytest.fixture
def cluster_http(cluster: TestCluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cluster.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def module_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    """One real cluster (API + 3 nodes, R=2) for the tests of a module that act only as
    users: each signs up accounts of its own (``unique_name``), so they see nothing of each
    other, and the processes are started once per module rather than once per test. A test
    that kills, pauses or inspects nodes, or counts what the whole cluster holds, takes
    ``cluster`` (its own). Stopping it still checks the invariants of everything the module
    left behind."""
    with TestCluster(tmp_path_factory.mktemp("module-cluster")) as c:
        yield c


@pytest.fixture
def module_http(module_cluster: TestCluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=module_cluster.url, timeout=60) as client:
        yield client


def unique_name(prefix: str) -> str:
    """An account name no other test on a shared cluster uses (usernames: 32 at most)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"[:32]
