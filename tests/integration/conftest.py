"""Fixtures of the storage node's own integration tests (test_storage_node.py,
test_node_batch.py): a real node, an HTTP client holding the cluster secret, a disk that
fills up at 1 MiB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import ServerProcess
from tests.integration.node_process import AUTH, running_node
from tests.integration.storage_faults import tmpfs


@pytest.fixture
def node(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_node(tmp_path) as server:
        yield server


@pytest.fixture
def node_http(node: ServerProcess) -> Iterator[httpx.Client]:
    """``node``'s routes, every request carrying the cluster secret."""
    with httpx.Client(base_url=node.url, headers=AUTH, timeout=30) as client:
        yield client


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a 1 MiB tmpfs of its own (the test is skipped without root)."""
    with tmpfs(tmp_path / "tiny", "1m") as mount:
        yield mount
