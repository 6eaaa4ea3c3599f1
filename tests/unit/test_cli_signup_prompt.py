"""``signup`` states the password rule before it asks, and checks it before any request."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from minidropbox.cli.main import cli
from minidropbox.core.errors import InvalidInput


def test_rule_comes_before_the_prompt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    runner = CliRunner()
    # Port 9 answers nobody: the weak password must be refused before any request is made.
    result = runner.invoke(cli, ["--server", "127.0.0.1:9", "signup", "zed"],
                           input="short\nshort\n")
    out = result.output
    assert "at least 10 characters" in out and "Password" in out
    assert out.index("needs at least 10 characters") < out.index("Password:")
    assert isinstance(result.exception, InvalidInput), result.exception  # not ServerUnreachable
    assert "at least 10 characters" in result.exception.message
