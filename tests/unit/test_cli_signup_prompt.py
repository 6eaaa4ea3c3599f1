"""``signup`` at a terminal states the password rule before it asks, and checks it before
any request; without a terminal it says how to give the password instead of hanging."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from pathlib import Path

from tests.harness import BIN


def _read_until(fd: int, marker: bytes, seen: bytearray, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while marker not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} in {bytes(seen)!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the other end closed
                chunk = b""
            assert chunk, f"no {marker!r} in {bytes(seen)!r}"
            seen += chunk


def test_rule_comes_before_the_prompt(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "NO_COLOR": "1"}
    master, slave = pty.openpty()
    # Port 9 answers nobody: the weak password must be refused before any request is made.
    proc = subprocess.Popen([str(BIN), "--server", "127.0.0.1:9", "signup", "zed"],
                            stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    seen = bytearray()
    try:
        _read_until(master, b"Password:", seen)
        os.write(master, b"short\n")
        _read_until(master, b"Repeat", seen)
        os.write(master, b"short\n")
        _read_until(master, b"Error:", seen)
        assert proc.wait(60) == 2
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = seen.decode()
    assert text.index("needs at least 10 characters") < text.index("Password:")
    assert "Password must be at least 10 characters" in text
    assert "Cannot reach" not in text


def test_without_a_terminal_it_says_how(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    proc = subprocess.run([str(BIN), "--server", "127.0.0.1:9", "signup", "zed"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: No terminal to ask for the password on"), proc.stderr
    assert "--password-stdin" in last and "Traceback" not in proc.stderr
