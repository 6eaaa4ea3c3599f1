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
    token: str = ""

    def ok(self, method: str, url: str, status: int = 200, **kwargs: Any) -> Any:
        r = self.http.request(method, url, **kwargs)
        assert r.status_code == status, f"{method} {url}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def get(self, path: str) -> bytes:
        r = self.http.get("/api/v1/files/content", params={"path": path})
        assert r.status_code == 200, r.text
        return r.content

    def paths(self, folder: str = "/") -> list[str]:
        page = self.ok("GET", "/api/v1/files/list", params={"path": folder, "recursive": "true"})
        return [e["path"] for e in page["entries"]]

    def share(self, path: str, other: Person, role: str = "editor",
              as_path: str | None = None) -> dict[str, Any]:
        """Invite ``other`` to ``path`` and have them accept (at ``as_path``)."""
        self.ok("POST", "/api/v1/shares/folders", 201,
                json={"path": path, "username": other.name, "role": role})
        invite = other.ok("GET", "/api/v1/shares/invites")["invites"][-1]
        body: dict[str, Any] = other.ok("POST", f"/api/v1/shares/invites/{invite['invite_id']}"
                                        "/accept", 201, json={"as_path": as_path})
        return body

    def changes(self, cursor: str) -> list[dict[str, Any]]:
        page = self.ok("GET", "/api/v1/changes", params={"cursor": cursor})
        entries: list[dict[str, Any]] = page["entries"]
        return entries

    def cursor(self) -> str:
        return str(self.ok("GET", "/api/v1/changes")["cursor"])

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
        return Person(name, client, tokens["access_token"])

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

