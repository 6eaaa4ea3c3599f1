"""One storage node as a real process, for the tests of the node itself (its routes, its disk
store, the clients the API and the tools use against it): the cluster secret they hold, and a
node that, whatever a test did, must never have written that secret to its log."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.harness import ServerProcess, start_node

SECRET = "node-test-cluster-secret-0123456789"
AUTH = {"Authorization": f"Bearer {SECRET}"}


@contextmanager
def running_node(tmp: Path, name: str = "node") -> Iterator[ServerProcess]:
    """A node keeping its chunks in ``tmp/name``, stopped on leaving; then its log is read for
    the secret."""
    server = start_node(tmp, name, SECRET)
    try:
        yield server
    finally:
        server.stop()
        assert SECRET not in server.log_path.read_text(errors="replace")
