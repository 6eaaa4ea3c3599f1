"""What the sharing tests share: one real cluster (API + 2 storage nodes) per worker, and
fresh users with an HTTP client each."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import bearer, signup_and_login
from tests.harness import TestCluster


@pytest.fixture(scope="session")
def share_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    with TestCluster(tmp_path_factory.mktemp("sharing"), nodes=2, replicas=2,
                     env={"link_password_failures_per_link": 5}) as c:
        yield c


@dataclass
class Person:
    name: str
    http: httpx.Client  # carries this person's bearer token

    def put(self, path: str, data: bytes) -> dict[str, Any]:
        r = self.http.put("/api/v1/files/content", params={"path": path}, content=data)
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    def link(self, path: str, **options: Any) -> dict[str, Any]:
        r = self.http.post("/api/v1/shares/links", json={"path": path, **options})
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body


@pytest.fixture
def person(share_cluster: TestCluster) -> Iterator[Any]:
    """``person("alice")`` → a new account with its own client (unique name)."""
    clients: list[httpx.Client] = []

    def make(prefix: str = "user") -> Person:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        with httpx.Client(base_url=share_cluster.url, timeout=60) as anon:
            tokens = signup_and_login(anon, name)
        client = httpx.Client(base_url=share_cluster.url, timeout=60, headers=bearer(tokens))
        clients.append(client)
        return Person(name, client)

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def anon(share_cluster: TestCluster) -> Iterator[httpx.Client]:
    """A visitor with no account."""
    with httpx.Client(base_url=share_cluster.url, timeout=60) as c:
        yield c


def token_of(link: dict[str, Any]) -> str:
    return str(link["share_url"]).rsplit("/", 1)[-1]

