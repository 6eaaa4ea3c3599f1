"""``minidropbox sync LOCAL_DIR`` and ``minidropbox status``.

The work happens in ``minidropbox.client.sync``; this module reads the options, builds the
``SyncClient``, and turns Ctrl-C or SIGTERM into a clean stop after the current step.
``--daemon`` starts the same command in the background (its own session, output to
``LOCAL_DIR/.minidropbox/sync.log``, rotated by size: ``client/sync/log_file.py``) and returns
once it runs, or with its error.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import click

from minidropbox.cli.state import CliState, pass_state
from minidropbox.client.bandwidth import parse_rate
from minidropbox.client.config import load_credentials
from minidropbox.client.sync.client import SyncClient
from minidropbox.client.sync.engine import SyncOptions
from minidropbox.client.sync.errors import SyncError
from minidropbox.client.sync.folder_lock import check_not_nested, holder_pid
from minidropbox.client.sync.log_file import rotate_if_full, send_output_to
from minidropbox.client.sync.running import LOG_FILE, STATUS_FILE, running_syncs
from minidropbox.client.sync.state import STATE_DIR
from minidropbox.client.sync.status import Status
from minidropbox.core.errors import Unauthorized
from minidropbox.core.reconcile import Action, Op
from minidropbox.logs import configure_logging

DAEMON_START_TIMEOUT = 60.0  # seconds for a background sync to take its folder's lock


@click.command("sync")
@click.argument("local_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--remote", "remote_root", default="/", show_default=True,
              help="The server folder to keep in sync with LOCAL_DIR.")
@click.option("--once", is_flag=True, help="Reconcile once and exit (0 when both sides agree).")
@click.option("--dry-run", is_flag=True,
              help="Show what one round would do, and change nothing anywhere.")
@click.option("--daemon", is_flag=True,
              help="Run in the background; `minidropbox status` shows it, the log is in "
                   f"LOCAL_DIR/{LOG_FILE}.")
@click.option("--bwlimit", default=None, metavar="RATE",
              help="At most RATE bytes/s of file data, up and down together (500K, 2M).")
@click.option("--allow-mass-delete", is_flag=True,
              help="Go ahead even if more than 100 files, or more than half of the folder "
                   "(from 4 files up), would be deleted.")
@click.option("--device", envvar="MINIDROPBOX_DEVICE", default=None,
              help="Name used in conflicted copies (default: this computer's name).")
@click.option("--verbose", "-v", is_flag=True, help="Also log skipped steps and retries.")
@click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path), hidden=True,
              help="Write all output to this file, rotated by size (what --daemon uses).")
@pass_state
def sync(state: CliState, local_dir: Path, remote_root: str, once: bool, dry_run: bool,
         daemon: bool, bwlimit: str | None, allow_mass_delete: bool, device: str | None,
         verbose: bool, log_file: Path | None) -> None:
    """Keep LOCAL_DIR and a server folder in sync, both ways, until stopped (or --once).

    Example: minidropbox sync ~/Dropbox --daemon"""
    if log_file is not None:
        send_output_to(log_file)
    rate = parse_rate(bwlimit) if bwlimit else None
    creds = load_credentials()
    if creds is None:
        raise Unauthorized("Not logged in; run `minidropbox login` first.")
    if state.server_option and state.server_option.rstrip("/") != creds.server:
        raise Unauthorized(f"Logged in to {creds.server}, not {state.server_option}; "
                           "log in there first.")
    if daemon:
        if once or dry_run:
            raise click.UsageError("--daemon runs until stopped: not with --once or --dry-run.")
        _start_in_background(state, local_dir.absolute())
        return
    configure_logging(level=logging.INFO if verbose else logging.WARNING)
    status = Status(quiet=state.quiet or state.as_json)
    options = SyncOptions(root=local_dir.absolute(), remote_root=remote_root,
                          device=device or socket.gethostname().split(".")[0],
                          allow_mass_delete=allow_mass_delete, dry_run=dry_run, bwlimit=rate)
    client = SyncClient(creds, options, status, watch=not (once or dry_run))

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        client.request_stop()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        client.open()
        if dry_run:
            actions = client.preview().actions
            state.emit({"root": str(options.root), "remote": remote_root,
                        "actions": [_action_json(a) for a in actions]},
                       "\n".join([*(describe(a) for a in actions),
                                  f"dry run: {len(actions)} action(s), nothing changed."]))
        elif once:
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


WHAT = {Op.UPLOAD: "upload", Op.DOWNLOAD: "download", Op.MKDIR_LOCAL: "create here",
        Op.MKDIR_REMOTE: "create on the server", Op.MOVE_LOCAL: "move here",
        Op.MOVE_REMOTE: "move on the server", Op.DELETE_LOCAL: "delete here",
        Op.DELETE_REMOTE: "delete on the server (to the trash)",
        Op.CONFLICT: "keep both (conflicted copy)", Op.AGREE: "record as in sync",
        Op.FORGET: "forget (gone on both sides)"}


def describe(action: Action) -> str:
    """One dry-run line: ``would upload /a.txt``, ``would move here /a -> /b``."""
    line = f"would {WHAT[action.op]} {action.path}"
    return line + f" -> {action.dest}" if action.dest else line


def _action_json(action: Action) -> dict[str, str | None]:
    return {"op": action.op.value, "path": action.path, "kind": action.kind,
            "dest": action.dest}


def _start_in_background(state: CliState, root: Path) -> None:
    """Start this same command without ``--daemon`` in a session of its own, output to the
    folder's log, and wait until it holds the folder's lock (running) or has exited (its
    error, from the log, becomes ours)."""
    if not root.is_dir():
        raise SyncError(f"{root} does not exist or is not a folder.")
    check_not_nested(root)
    running = holder_pid(root)
    if running is not None:
        raise SyncError(f"{root} is already being synced (pid {running}); "
                        "`minidropbox status` shows it.")
    (root / STATE_DIR).mkdir(exist_ok=True)
    log_path = root / LOG_FILE
    # The child rotates its log as it grows; rotating a full one here first keeps the
    # offset below valid for reading the child's own first lines.
    rotate_if_full(log_path)
    argv = [a for a in sys.argv[1:] if a != "--daemon"] + ["--log-file", str(log_path)]
    with open(log_path, "ab") as log, open(os.devnull, "rb") as devnull:
        start = log.tell()
        proc = subprocess.Popen([sys.executable, "-m", "minidropbox", *argv], stdin=devnull,
                                stdout=log, stderr=log, start_new_session=True, cwd=os.getcwd())
    deadline = time.monotonic() + DAEMON_START_TIMEOUT
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            with open(log_path, "rb") as log:
                log.seek(start)
                lines = log.read().decode(errors="replace").strip().splitlines()
            reason = lines[-1] if lines else f"exited with {code}"
            raise SyncError(f"The background sync stopped at once: "
                            f"{reason.removeprefix('Error: ')}")
        if _started(root, proc.pid):
            state.emit({"ok": True, "root": str(root), "pid": proc.pid, "log": str(log_path)},
                       f"Syncing {root} in the background (pid {proc.pid}); "
                       f"`minidropbox status` shows it, the log is {log_path}.")
            return
        time.sleep(0.05)
    raise SyncError(f"The background sync (pid {proc.pid}) did not start within "
                    f"{DAEMON_START_TIMEOUT:.0f} s; see {log_path}.")


def _started(root: Path, pid: int) -> bool:
    """The background sync ``pid`` passed its checks: it holds the folder's lock and has
    written its first status (``SyncClient.open`` writes it only once open succeeded)."""
    try:
        info = json.loads((root / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return False
    return (info.get("pid") == pid and info.get("state") != "stopped"
            and holder_pid(root) == pid)


@click.command("status")
@pass_state
def status(state: CliState) -> None:
    """Each sync running on this computer: its state, last error, queue and skipped files.

    Example: minidropbox status --json"""
    syncs = running_syncs()
    lines: list[str] = []
    for s in syncs:
        info = s.status
        where = f"{info.get('server', '?')}{info.get('remote', '')}"
        if s.running:
            head = f"{s.root} <-> {where}: {info.get('state', 'starting')} (pid {s.pid})"
        else:
            head = (f"{s.root} <-> {where}: not running (it stopped; last state: "
                    f"{info.get('state', 'unknown')})")
        lines.append(head)
        if info.get("queue"):
            lines.append(f"  queue: {info['queue']} action(s) in this round")
        if info.get("last_error"):
            when = time.strftime("%Y-%m-%d %H:%M:%S",
                                 time.localtime(float(info.get("last_error_at") or 0)))
            lines.append(f"  last error ({when}): {info['last_error']}")
        skipped = info.get("skipped") or []
        if skipped:
            lines.append(f"  cannot sync {info.get('skipped_count', len(skipped))} file(s):")
            lines += [f"    {line}" for line in skipped]
    if not syncs:
        lines.append("No sync is running (start one with `minidropbox sync DIR --daemon`).")
    state.emit([{"root": s.root, "running": s.running, "pid": s.pid, **s.status}
                for s in syncs], "\n".join(lines))
