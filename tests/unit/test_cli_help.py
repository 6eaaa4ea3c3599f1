"""Every command's ``--help`` ends with an example; ``minidropbox --help`` with first steps;
shell completion works as README.md documents it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import click

from minidropbox.cli.examples import EXAMPLES
from minidropbox.cli.main import COMMANDS, cli
from tests.harness import BIN


def _leaves(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None
            yield from _leaves(sub, f"{path} {name}")
    else:
        yield path, command


def _all_commands() -> list[tuple[str, click.Command]]:
    ctx = click.Context(cli, info_name="minidropbox")
    found = []
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        found += list(_leaves(command, name))
    return found


def test_every_command_has_an_example() -> None:
    missing = [path for path, command in _all_commands() if "Example:" not in (command.help or "")]
    assert missing == [], f"add an example to cli/examples.py for: {missing}"
    for path, command in _all_commands():
        example = (command.help or "").rsplit("Example:", 1)[1].strip()
        assert example.startswith("minidropbox "), (path, example)
        words = example.split()
        # It shows the command itself (an alias, such as quota for du, shows the original).
        assert path.split()[0] in words or command.name in words, (path, example)


def test_examples_name_only_commands_that_exist() -> None:
    paths = {path for path, _ in _all_commands()}
    assert set(EXAMPLES) <= paths, set(EXAMPLES) - paths


def test_top_level_help_has_first_steps() -> None:
    out = subprocess.run([str(BIN), "--help"], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    assert "First steps:" in out and "_MINIDROPBOX_COMPLETE=bash_source" in out


def test_shell_completion_as_documented() -> None:
    env = {**os.environ, "_MINIDROPBOX_COMPLETE": "bash_source"}
    script = subprocess.run([str(BIN)], capture_output=True, text=True, env=env, timeout=60)
    assert script.returncode == 0 and "complete -o nosort -F" in script.stdout
    env = {**os.environ, "_MINIDROPBOX_COMPLETE": "bash_complete",
           "COMP_WORDS": "minidropbox sh", "COMP_CWORD": "1"}
    words = subprocess.run([str(BIN)], capture_output=True, text=True, env=env, timeout=60)
    assert words.stdout.split() == ["plain,share"]
    env["COMP_WORDS"], env["COMP_CWORD"] = "minidropbox share li", "2"
    words = subprocess.run([str(BIN)], capture_output=True, text=True, env=env, timeout=60)
    assert words.stdout.split() == ["plain,link", "plain,links"]
