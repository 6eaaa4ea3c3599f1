"""``minidropbox sync LOCAL_DIR``: keep a local folder and a server folder the same.

The work happens in ``minidropbox.client.sync``; this module reads the options, builds the
``SyncClient``, and turns Ctrl-C or SIGTERM into a clean stop after the current step.
"""

from __future__ import annotations

import logging
import signal
import socket
from pathlib import Path
from types import FrameType

import click

from minidropbox.cli.state import CliState, pass_state
from minidropbox.client.config import load_credentials
from minidropbox.client.sync.client import SyncClient
from minidropbox.client.sync.engine import SyncOptions
from minidropbox.client.sync.status import Status
from minidropbox.core.errors import Unauthorized
from minidropbox.logs import configure_logging


@click.command("sync")
@click.argument("local_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--remote", "remote_root", default="/", show_default=True,
              help="The server folder to keep in sync with LOCAL_DIR.")
@click.option("--once", is_flag=True, help="Reconcile once and exit (0 when both sides agree).")
@click.option("--allow-mass-delete", is_flag=True,
              help="Go ahead even if more than 100 files, or half the folder, would be deleted.")
@click.option("--device", envvar="MINIDROPBOX_DEVICE", default=None,
              help="Name used in conflicted copies (default: this computer's name).")
@click.option("--verbose", "-v", is_flag=True, help="Also log skipped steps and retries.")
@pass_state
def sync(state: CliState, local_dir: Path, remote_root: str, once: bool,
         allow_mass_delete: bool, device: str | None, verbose: bool) -> None:
    """Keep LOCAL_DIR and a server folder in sync, both ways, until stopped (or --once)."""
    configure_logging(level=logging.INFO if verbose else logging.WARNING)
    creds = load_credentials()
    if creds is None:
        raise Unauthorized("Not logged in; run `minidropbox login` first.")
    if state.server_option and state.server_option.rstrip("/") != creds.server:
        raise Unauthorized(f"Logged in to {creds.server}, not {state.server_option}; "
                           "log in there first.")
    status = Status(quiet=state.quiet or state.as_json)
    options = SyncOptions(root=local_dir.absolute(), remote_root=remote_root,
                          device=device or socket.gethostname().split(".")[0],
                          allow_mass_delete=allow_mass_delete)
    client = SyncClient(creds, options, status, watch=not once)

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        client.request_stop()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        client.open()
        if once:
            client.run_once()
            state.emit({"ok": True, "root": str(options.root), "remote": remote_root},
                       f"{options.root} and {remote_root} are in sync.")
        else:
            status.action(f"syncing {options.root} with {creds.server}{remote_root} "
                          "(Ctrl-C stops)")
            client.run_forever()
    except KeyboardInterrupt:
        client.request_stop()
    finally:
        signal.signal(signal.SIGTERM, previous)
        client.close()
        status.close()
