"""The CLI starts fast: nothing heavy is imported before a command needs it.

Importing every command group eagerly (SQLAlchemy, the server settings, the sync engine,
httpx, rich) cost about 1.5 s on an idle machine before any command could start. These tests
check which modules a command loads (exact, immune to load) and the start time as a ratio to
a bare interpreter that imports click (robust on a busy machine, and far from what eager
imports cost).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import click
import pytest

from minidropbox.cli.main import COMMANDS, cli
from tests.harness import BIN

HEAVY = ("sqlalchemy", "pydantic", "minidropbox.settings", "minidropbox.client.sync.engine",
         "httpx", "rich", "uvicorn", "fastapi")
PROBE = """
import json, sys
from minidropbox.cli.main import main
try:
    main({args!r})
except SystemExit:
    pass
print(json.dumps(sorted(m for m, mod in sys.modules.items() if mod is not None)),
      file=sys.stderr)
"""


def _modules_after(*args: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE.format(args=list(args))],
                          input="a password\n", capture_output=True, text=True, timeout=120)
    return set(json.loads(proc.stderr.strip().splitlines()[-1]))


def _loaded(modules: set[str], prefix: str) -> bool:
    return any(m == prefix or m.startswith(prefix + ".") for m in modules)


def test_help_and_version_import_nothing_heavy() -> None:
    for args in (["--help"], ["--version"], ["ls", "--help"], ["put", "--help"]):
        modules = _modules_after(*args)
        heavy = [h for h in HEAVY if _loaded(modules, h)]
        assert heavy == [], f"minidropbox {' '.join(args)} imported {heavy}"


def test_a_client_command_skips_the_server_and_sync_code() -> None:
    modules = _modules_after("--server", "http://127.0.0.1:9", "signup", "probe-user",
                             "--password-stdin")
    assert _loaded(modules, "httpx")  # it did reach for the network
    for heavy in ("sqlalchemy", "minidropbox.settings", "minidropbox.client.sync",
                  "uvicorn", "fastapi", "httpx._main", "pygments"):
        assert not _loaded(modules, heavy), heavy


def _best_of(args: list[str], runs: int = 5) -> float:
    """The least CPU time (user + system) the command took in ``runs`` runs: CPU time, not
    wall time, so other processes on a busy machine do not count (they slow a start only
    by taking turns, which wall time would charge to the command)."""
    best = float("inf")
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(args, capture_output=True, check=True, timeout=120)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return best


def test_help_starts_about_as_fast_as_a_bare_interpreter() -> None:
    # Best of several runs, as a ratio to `python -c "import click"`: load on the machine
    # slows both alike. Eager imports made this ratio about 6; lazy ones keep it near 1.5.
    bare = _best_of([sys.executable, "-c", "import click"])
    help_ = _best_of([str(BIN), "--help"])
    assert help_ < 3 * bare + 0.05, f"--help took {help_:.2f} s of CPU, bare click {bare:.2f} s"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_listing_matches_each_command(name: str) -> None:
    """``minidropbox --help`` shows stored one-liners; they must say what the command says."""
    command = COMMANDS[name].load(name)
    ctx = click.Context(cli, info_name="minidropbox")
    assert cli.get_command(ctx, name) is not None
    own = command.short_help or (command.help or "").split("\n\n")[0].replace("\n", " ")
    assert COMMANDS[name].short_help == own.strip()


def test_every_registered_command_is_listed() -> None:
    ctx = click.Context(cli, info_name="minidropbox")
    assert cli.list_commands(ctx) == list(COMMANDS)
