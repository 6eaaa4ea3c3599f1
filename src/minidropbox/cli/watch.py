"""``minidropbox watch``: print each change to the account's files as the server announces it.

Notifications arrive over the WebSocket (long-polling when that does not get through); each
one is only a hint, and the changes themselves are read from ``/changes`` starting at the
cursor this command keeps, so a dropped connection never skips a change.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from types import FrameType

import click

from minidropbox.cli.state import CliState, pass_state
from minidropbox.client.remote import Remote
from minidropbox.client.values import Change
from minidropbox.core.backoff import Backoff
from minidropbox.core.errors import CursorReset


def format_change(change: Change) -> str:
    """One line per change: local time, operation, path (``from -> to`` for moves), version."""
    when = datetime.fromtimestamp(change.time).strftime("%Y-%m-%d %H:%M:%S")
    slash = "/" if change.type == "folder" else ""
    path = change.path + slash
    if change.from_path:
        path = f"{change.from_path}{slash} -> {path}"
    version = f"  v{change.version}" if change.version is not None else ""
    return f"{when}  {change.op:<8}  {path}{version}"


@click.command()
@click.option("--json", "json_lines", is_flag=True, help="One JSON object per change and line.")
@click.option("--poll", is_flag=True, help="Long-poll instead of using the WebSocket.")
@pass_state
def watch(state: CliState, json_lines: bool, poll: bool) -> None:
    """Print each change to your files as it happens, until Ctrl-C."""
    # Imported here: the WebSocket library is slow to import, and only this command needs it.
    from minidropbox.client.changes import notifications

    as_json = json_lines or state.as_json

    def show(change: Change) -> None:
        line = json.dumps(change.as_json(), sort_keys=True) if as_json else format_change(change)
        click.echo(line)
        sys.stdout.flush()  # one line per change, even when piped into another program

    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, _interrupt)
    remote = state.remote()
    try:
        cursor = remote.latest_cursor()
        if not state.quiet:  # on stderr, so it never mixes with --json lines
            click.echo(f"Watching {remote.server} for changes (Ctrl-C stops).", err=True)
        def connection(up: bool, why: str) -> None:
            if state.quiet:  # on stderr, so it never mixes with --json lines
                return
            if up:
                click.echo(f"Connected again to {remote.server}; catching up.", err=True)
            else:
                click.echo(f"Lost the connection to {remote.server} ({why}); reconnecting "
                           "(changes made meanwhile are shown once it is back).", err=True)

        for hint in notifications(remote, stop=stop, websocket=not poll,
                                  on_connection=connection):
            if hint != cursor:
                cursor = _print_since(remote, cursor, show, state, stop)
    except KeyboardInterrupt:
        pass  # Ctrl-C (or SIGTERM) is how this command ends
    finally:
        stop.set()
        signal.signal(signal.SIGTERM, previous)
        remote.close()


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _print_since(remote: Remote, cursor: str, show: Callable[[Change], None],
                 state: CliState, stop: threading.Event) -> str:
    """Print every change after ``cursor``; returns the cursor after the last one printed.

    Retries through server restarts: the notification that brought us here may not repeat.
    """
    from minidropbox.client.changes import is_transient

    backoff = Backoff()
    while not stop.is_set():
        try:
            for change in remote.changes_since(cursor):
                show(change)
                cursor = change.cursor
            return cursor
        except CursorReset as exc:
            state.info(f"{exc.message.split(';')[0]}; following new changes from now on.")
            return remote.latest_cursor()
        except Exception as exc:
            if not is_transient(exc):
                raise
            delay = backoff.next_delay()
            state.info(f"Could not read the changes ({exc}); retrying in {delay:.0f} s.")
            stop.wait(delay)
    return cursor
