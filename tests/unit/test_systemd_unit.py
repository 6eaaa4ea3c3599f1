"""The systemd user unit in deploy/ names a command and options the CLI has."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from minidropbox.cli.main import cli

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "minidropbox-sync.service"


def test_the_unit_runs_an_existing_sync_command() -> None:
    lines = UNIT.read_text().splitlines()
    exec_start = next(line for line in lines if line.startswith("ExecStart="))
    argv = shlex.split(exec_start.removeprefix("ExecStart=").replace("%h", "/home/user"))
    assert argv[0].endswith("/minidropbox") and argv[1] == "sync"
    command = cli.get_command(click.Context(cli), "sync")  # the CLI loads commands lazily
    assert command is not None
    ctx = command.make_context("sync", argv[2:])  # raises on an unknown option
    assert isinstance(ctx, click.Context) and ctx.params["local_dir"] == Path("/home/user/Dropbox")
    assert "--daemon" not in argv  # systemd keeps the process in the foreground itself
    assert "RestartPreventExitStatus=2 3 5" in lines
