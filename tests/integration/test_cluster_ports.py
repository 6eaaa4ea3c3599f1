"""``server cluster`` on a port something else holds: one clear line and a non-zero exit
before any banner, instead of a readiness probe that reaches the other server and says
"running"."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.harness import BIN


@pytest.mark.parametrize("offset", [0, 2])  # the API's port, then a storage node's
def test_a_taken_port_is_one_line_and_nothing_starts(tmp_path: Path, offset: int) -> None:
    # Only the held port is ours: another test's server may take one of the other three of
    # the block first (the line then names that port, rightly). Such a run says nothing
    # about this test: try a new block, a few times.
    for attempt in range(5):
        data = tmp_path / f"d{attempt}"
        taken, proc = _cluster_on_a_held_port(data, offset)
        lines = proc.stderr.strip().splitlines()
        others = [f"Port {taken - offset + i} on" for i in range(4) if i != offset]
        if not (len(lines) == 1 and any(o in lines[0] for o in others)):
            break
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "running at" not in proc.stdout and "Starting" not in proc.stdout
    assert len(lines) == 1 and f"Port {taken} on 127.0.0.1 is in use" in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (data / "logs" / "api.log").exists()  # nothing was started


def _cluster_on_a_held_port(data: Path, offset: int
                            ) -> tuple[int, subprocess.CompletedProcess[str]]:
    """``server cluster`` whose port ``offset`` of the block is held here; (that port, the
    finished process)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MINIDROPBOX_")}
        proc = subprocess.run([str(BIN), "server", "cluster", "--data", str(data),
                               "--port", str(taken - offset), "--no-backup"], env=env,
                              capture_output=True, text=True, timeout=120)
    return taken, proc
