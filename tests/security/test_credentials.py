"""The CLI's credentials: 0600 in a 0700 folder whatever the umask, never printed, and a file
others can read is refused with a clear message rather than used."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.harness import BIN, TestCluster


def _cli(config: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINIDROPBOX_")}
    env.update({"XDG_CONFIG_HOME": str(config), "NO_COLOR": "1"})
    return subprocess.run([str(BIN), *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=60,
                          # The most permissive umask: modes must be set, not inherited.
                          preexec_fn=lambda: os.umask(0))


@pytest.fixture
def logged_in(sec_cluster: TestCluster, tmp_path: Path) -> Path:
    config = tmp_path / "config"
    name = "cred-" + os.urandom(4).hex()
    for command in ("signup", "login"):
        proc = _cli(config, "--server", sec_cluster.url, command, name, "--password-stdin",
                    stdin=PASSWORD + "\n")
        assert proc.returncode == 0, proc.stderr
    return config / "minidropbox" / "credentials.json"


def test_credentials_are_private(logged_in: Path) -> None:
    assert stat.S_IMODE(logged_in.stat().st_mode) == 0o600
    assert stat.S_IMODE(logged_in.parent.stat().st_mode) == 0o700
    tokens = json.loads(logged_in.read_text())
    proc = _cli(logged_in.parent.parent, "--json", "whoami")
    assert proc.returncode == 0, proc.stderr
    for secret in (tokens["access_token"], tokens["refresh_token"]):
        assert secret not in proc.stdout + proc.stderr
    assert not [p for p in logged_in.parent.iterdir() if p != logged_in]  # no temp left over


def test_readable_credentials_are_refused(logged_in: Path) -> None:
    for mode in (0o644, 0o640, 0o604):
        os.chmod(logged_in, mode)
        proc = _cli(logged_in.parent.parent, "whoami")
        assert proc.returncode == 3, (oct(mode), proc.stdout + proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
        assert "readable by other users" in lines[0] and "chmod 600" in lines[0]
    os.chmod(logged_in, 0o600)
    assert _cli(logged_in.parent.parent, "whoami").returncode == 0
