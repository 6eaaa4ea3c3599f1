"""The ``minidropbox`` entry point: global options, command groups, error handling.

Commands are loaded lazily: this module names each command's module and one-line help, and
imports a module only when its command runs (or its own ``--help`` is asked for). Importing
every command group eagerly pulled in the server, SQLAlchemy and the sync engine and cost
about 1.5 s before any command could start; ``tests/unit/test_cli_startup.py`` keeps it so.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from typing import Any, NoReturn

import click

from minidropbox import __version__
from minidropbox.cli import interrupt
from minidropbox.cli.examples import FIRST_STEPS, add_examples
from minidropbox.cli.state import CliState, normalize_server
from minidropbox.core.errors import InvalidInput, MiniDropboxError, TooManyRequests
from minidropbox.core.units import human_duration

# httpx imports its own command-line tool (rich, pygments, click) on ``import httpx`` when
# those are installed, which is a third of its import time; this CLI never uses it. httpx
# falls back to a stub when the import fails, which a None entry makes it do.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


class LazyCommand:
    """Where a command lives and the one line ``minidropbox --help`` shows for it."""

    def __init__(self, target: str, short_help: str, extra: tuple[str, ...] = ()) -> None:
        self.target = target  # "module:attribute"
        self.short_help = short_help
        self.extra = extra  # commands added to this group when it loads

    def load(self, name: str) -> click.Command:
        command = _import(self.target)
        if isinstance(command, click.Group):
            for target in self.extra:
                sub = _import(target)
                command.add_command(sub, sub.name)
        add_examples(command, name)
        return command


def _import(target: str) -> click.Command:
    module, _, attribute = target.partition(":")
    command = getattr(importlib.import_module(module), attribute)
    assert isinstance(command, click.Command), target
    return command


# The order is the order of ``minidropbox --help``. The short help must match each command's
# own (a test compares them), so the listing never needs to import the command.
_A, _F = "minidropbox.cli.account", "minidropbox.cli.files"
COMMANDS: dict[str, LazyCommand] = {
    "signup": LazyCommand(f"{_A}:signup", "Create an account on the server."),
    "login": LazyCommand(f"{_A}:login", "Log in and remember the session for later commands."),
    "logout": LazyCommand(f"{_A}:logout", "End the session on the server and forget it here."),
    "whoami": LazyCommand(f"{_A}:whoami", "Show who is logged in, and where."),
    "passwd": LazyCommand(f"{_A}:passwd",
                          "Change the password; every other session is logged out."),
    "ls": LazyCommand(f"{_F}:ls", "List a folder (or show one file)."),
    "cat": LazyCommand(f"{_F}:cat", "Write a file's content to standard output (same as get "
                       "REMOTE -)."),
    "put": LazyCommand(f"{_F}:put",
                       "Upload files and folders; only chunks the server lacks are sent."),
    "get": LazyCommand(f"{_F}:get", "Download a file or a folder (recursively) from the server."),
    "mkdir": LazyCommand(f"{_F}:mkdir", "Create a folder (and any missing parents)."),
    "mv": LazyCommand(f"{_F}:mv",
                      "Move or rename a file or folder; into DEST if DEST is a folder."),
    "cp": LazyCommand(f"{_F}:cp", "Copy a file or folder on the server; into DEST if DEST "
                      "is a folder."),
    "rm": LazyCommand(f"{_F}:rm", "Move a file or folder (with its contents) to the trash."),
    "versions": LazyCommand(f"{_F}:versions", "List every version of a file, newest first."),
    "restore": LazyCommand(f"{_F}:restore", "Make an old version current again, as a new "
                           "version (history is kept)."),
    "trash": LazyCommand(f"{_F}:trash", "List what is in the trash, or empty it (--purge "
                         "PATH, --purge-all)."),
    "undelete": LazyCommand(f"{_F}:undelete", "Bring back the most recently deleted entry at "
                            "PATH (with a folder's contents)."),
    "du": LazyCommand("minidropbox.cli.usage:du", "Show the quota: used and free space, older "
                      "versions and the trash."),
    "quota": LazyCommand("minidropbox.cli.usage:du", "Show the quota: used and free space, "
                         "older versions and the trash."),
    "sync": LazyCommand("minidropbox.cli.sync:sync", "Keep LOCAL_DIR and a server folder in "
                        "sync, both ways, until stopped (or --once)."),
    "status": LazyCommand("minidropbox.cli.sync:status", "Each sync running on this computer: "
                          "its state, last error, queue and skipped files."),
    "watch": LazyCommand("minidropbox.cli.watch:watch",
                         "Print each change to your files as it happens, until Ctrl-C."),
    "share": LazyCommand("minidropbox.cli.share:share", "Share files and folders: links "
                         "anyone can open, folders shared between accounts."),
    "app-password": LazyCommand("minidropbox.cli.app_password:app_password", "Passwords for "
                                "WebDAV clients (rclone, Finder, Explorer, davfs2), one per "
                                "device."),
    "server": LazyCommand("minidropbox.cli.server:server", "Run the server processes (API, "
                          "storage node, backup, the whole cluster).",
                          extra=("minidropbox.cli.admin:grant_admin",)),
    "admin": LazyCommand("minidropbox.cli.admin:admin", "Look after accounts and the storage "
                         "cluster (needs an administrator account)."),
    "backup": LazyCommand("minidropbox.cli.backup:backup", "Back up the metadata and chunks, "
                          "verify backups, restore a data directory."),
}


class LazyGroup(click.Group):
    """A group whose commands are imported only when needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS) + sorted(set(self.commands) - set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        lazy = COMMANDS.get(cmd_name)
        if lazy is None:
            return None
        command = lazy.load(cmd_name)
        self.commands[cmd_name] = command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name].short_help) for name in COMMANDS]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=FIRST_STEPS)
@click.version_option(__version__, prog_name="minidropbox")
@click.option("--server", "server_option", envvar="MINIDROPBOX_SERVER", default=None,
              help="API URL, or host:port (default: the one you logged in to, else "
                   "http://127.0.0.1:8000).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--quiet", "-q", is_flag=True, help="No progress or chatter.")
@click.option("--profile", default=None, metavar="NAME",
              help="Use this profile's session and server (several servers or accounts; "
                   "see config.toml). Also MINIDROPBOX_PROFILE.")
@click.pass_context
def cli(ctx: click.Context, server_option: str | None, as_json: bool, quiet: bool,
        profile: str | None) -> None:
    """Mini-Dropbox: your files on every machine, every version kept."""
    if profile is not None:
        # Through the environment, so a sync daemon started from here keeps the profile.
        os.environ["MINIDROPBOX_PROFILE"] = profile
    server = normalize_server(server_option) if server_option else None
    ctx.obj = CliState(server_option=server, as_json=as_json, quiet=quiet)


def hoist_global_flags(args: list[str]) -> list[str]:
    """``--json`` and ``--server URL`` are accepted anywhere on the line (``minidropbox ls /
    --json``), the way scripts write them: moved in front of the command, where the group's
    options read them. Nothing after ``--`` moves (it may be a file named ``--json``)."""
    end = args.index("--") if "--" in args else len(args)
    head, tail = args[:end], args[end:]
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(head):
        arg = head[i]
        if arg == "--json":
            front.insert(0, arg)
        elif arg == "--server" and i + 1 < len(head):
            front += [arg, head[i + 1]]
            i += 1
        elif arg.startswith("--server="):
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest + tail


def error_message(exc: MiniDropboxError) -> str:
    """The line a user sees: a rate limit says how long to wait, from the server's
    ``Retry-After`` ("try again in 38 s"), instead of "later"."""
    message = exc.message
    if isinstance(exc, TooManyRequests):
        when = f"try again in {human_duration(exc.retry_after)}"
        if "try again later" in message:
            message = message.replace("try again later", when)
        else:
            message = f"{message.rstrip('.')}; {when}."
    return message


def _fail(exc: MiniDropboxError, as_json: bool) -> NoReturn:
    """One line on stderr, or under ``--json`` one JSON object: scripts parse both ways."""
    if as_json:
        body = {"error": {"code": exc.code, "message": error_message(exc),
                          "exit_code": exc.exit_code, **_jsonable(exc.details)}}
        click.echo(json.dumps(body), err=True)
    else:
        click.echo(f"Error: {error_message(exc)}", err=True)
    sys.exit(exc.exit_code)


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in details.items()
            if isinstance(v, str | int | float | bool) or v is None}


def main(argv: list[str] | None = None) -> Any:
    """The ``minidropbox`` command. A client command's process ends without waiting for
    workers the command gave up on (``interrupt.leave_abandoned_workers``); the servers shut
    down their own way."""
    args = hoist_global_flags(list(sys.argv[1:] if argv is None else argv))
    client = _command_name(args) != "server"
    try:
        result = _main(args)
    except SystemExit as exc:
        if client and (exc.code is None or isinstance(exc.code, int)):
            interrupt.leave_abandoned_workers(exc.code or 0)
        raise
    if client:
        interrupt.leave_abandoned_workers(0)
    return result


def _command_name(args: list[str]) -> str | None:
    """The command word of hoisted ``args``: the first word that is no option (``--server``
    and its URL come first)."""
    i = 0
    while i < len(args):
        if args[i] == "--server":
            i += 2
            continue
        if not args[i].startswith("-"):
            return args[i]
        i += 1
    return None


def _main(args: list[str]) -> Any:
    interrupt.install()
    as_json = args[:1] == ["--json"]
    try:
        cli.main(args, prog_name="minidropbox", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt) as exc:
        if isinstance(exc.__context__, EOFError):  # a prompt met the end of its input
            click.echo(err=True)  # end the prompt's line
            _fail(InvalidInput("No input for the prompt (standard input ended); give the "
                               "value on the command line or standard input."), as_json)
        interrupt.exit_interrupted()
    except click.ClickException as exc:
        if as_json:
            usage = MiniDropboxError(exc.format_message())
            usage.code, usage.exit_code = "usage", exc.exit_code
            _fail(usage, as_json)
        exc.show()
        sys.exit(exc.exit_code)
    except MiniDropboxError as exc:
        _fail(exc, as_json)
