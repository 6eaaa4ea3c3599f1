"""A `get` past a hung storage node ends when its file is whole, not at the node's timeout.

A hedge fetches a chunk from the next holder when the first is slow; the request to the hung
node is given up on but stays stuck until its timeout (``GET_TIMEOUT``, 10 s). The command
used to wait for it before exiting: the file was whole after 1.4 s and `get` ended at 10.4 s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from minidropbox.client.nodes import GET_TIMEOUT
from tests.e2e.test_cli_files import Cli
from tests.harness import BIN, TestCluster

MiB = 1024 * 1024


def test_a_get_past_a_hung_node_ends_when_its_file_is_whole(cluster: TestCluster,
                                                             tmp_path: Path) -> None:
    cli = Cli(cluster.url, tmp_path / "home").signup_and_login("hedger")
    data = os.urandom(16 * MiB)  # a dozen chunks or so: node-1 is first holder of several
    (tmp_path / "f.bin").write_bytes(data)
    cli.run("put", tmp_path / "f.bin", "/f.bin")
    out = tmp_path / "out"
    out.mkdir()

    hung = cluster.nodes[0]
    hung.signal(signal.SIGSTOP)  # takes connections, never answers
    try:
        proc = subprocess.Popen([str(BIN), "get", "/f.bin", str(out)], env=cli.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not (out / "f.bin").exists() and proc.poll() is None:
            assert time.monotonic() < deadline, "the download never finished"
            time.sleep(0.01)
        whole = time.monotonic()
        _, err = proc.communicate(timeout=120)
        lingered = time.monotonic() - whole
    finally:
        hung.signal(signal.SIGCONT)

    assert proc.returncode == 0, err
    assert (out / "f.bin").read_bytes() == data
    assert lingered < GET_TIMEOUT / 2, f"exited {lingered:.1f} s after the file was whole"
