"""Account and global-option comfort, run as a user runs the CLI: the real ``minidropbox`` in a
subprocess against a real API process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from minidropbox.cli.main import error_message, hoist_global_flags
from minidropbox.core.errors import TooManyRequests
from tests.conftest import PASSWORD
from tests.e2e.test_cli_files import Cli
from tests.harness import ServerProcess, start_api


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_api(tmp_path_factory.mktemp("comfort-api"))
    try:
        yield server
    finally:
        server.stop()


def test_signup_states_the_rule_and_logs_in(api: ServerProcess, tmp_path: Path) -> None:
    cli = Cli(api.url, tmp_path)
    host_port = api.url.removeprefix("http://")  # no scheme: http:// is meant
    weak = cli.run("--server", host_port, "signup", "dana", "--password-stdin",
                   input="short\n", ok=False)
    assert weak.returncode == 2 and "at least 10 characters" in weak.stderr
    done = cli.run("--server", host_port, "signup", "dana", "--password-stdin",
                   input=PASSWORD + "\n")
    assert "logged in" in done.stdout
    assert json.loads(cli.run("whoami", "--json").stdout)["username"] == "dana"


def test_logout_succeeds_when_the_server_is_down_and_keeps_the_server(
        tmp_path: Path) -> None:
    own = start_api(tmp_path / "own")
    cli = Cli(own.url, tmp_path / "erin").signup_and_login("erin")
    own.stop()
    out = cli.run("logout")  # exit 0 although nobody answers
    assert "forgotten here" in out.stdout
    assert cli.fails("whoami", exit_code=3).startswith("Error: Not logged in")
    # The next login goes back to the same server without --server.
    own.start()
    try:
        cli.run("login", "erin", "--password-stdin", input=PASSWORD + "\n")
        assert cli.json("whoami")["server"] == own.url
    finally:
        own.stop()


def test_json_anywhere_and_errors_as_json(api: ServerProcess, tmp_path: Path) -> None:
    cli = Cli(api.url, tmp_path).signup_and_login("fred")
    assert json.loads(cli.run("whoami", "--json").stdout)["username"] == "fred"
    failed = cli.run("ls", "/nowhere", "--json", ok=False)
    assert failed.returncode == 4 and failed.stdout == ""
    body = json.loads(failed.stderr)
    assert body["error"]["code"] == "not_found" and body["error"]["exit_code"] == 4
    usage = cli.run("ls", "--no-such-option", "--json", ok=False)
    assert usage.returncode == 2 and json.loads(usage.stderr)["error"]["code"] == "usage"
    # After "--" it is a name, not the option.
    assert hoist_global_flags(["put", "--", "--json"]) == ["put", "--", "--json"]


def test_profiles_keep_two_accounts_apart(api: ServerProcess, tmp_path: Path) -> None:
    cli = Cli(api.url, tmp_path)
    config = tmp_path / "config" / "minidropbox"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(
        f'default_profile = "home"\n[profiles.home]\nserver = "{api.url}"\n'
        f'[profiles.work]\nserver = "{api.url.removeprefix("http://")}"\n')
    for profile, user in (("home", "gina"), ("work", "hank")):
        cli.run("--profile", profile, "signup", user, "--password-stdin",
                input=PASSWORD + "\n")
    assert cli.json("whoami")["username"] == "gina"  # the default profile
    assert cli.json("--profile", "work", "whoami")["username"] == "hank"
    cli.run("--profile", "work", "logout")
    assert cli.json("whoami")["username"] == "gina"  # the other profile is untouched
    assert cli.fails("--profile", "Bad Name", "whoami", exit_code=2)


def test_trash_purge_all_asks_or_needs_yes(api: ServerProcess, tmp_path: Path) -> None:
    cli = Cli(api.url, tmp_path).signup_and_login("ivan")
    cli.run("mkdir", "/gone")
    cli.run("rm", "/gone")
    refused = cli.fails("trash", "--purge-all", exit_code=2)  # no terminal to ask on
    assert "--yes" in refused
    assert cli.json("trash")["entries"]
    assert cli.json("trash", "--purge-all", "--yes")["purged"] == 1


def test_rate_limit_says_how_long_to_wait() -> None:
    assert error_message(TooManyRequests("Too many failed logins; try again later.",
                                         retry_after=38)) == \
        "Too many failed logins; try again in 38 s."
    assert error_message(TooManyRequests("Too many requests; slow down.",
                                         retry_after=125)) == \
        "Too many requests; slow down; try again in 2 min 5 s."
