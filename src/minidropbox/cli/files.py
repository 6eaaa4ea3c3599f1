"""File commands: ls, put, get, mkdir, mv, rm, versions, restore, trash, undelete.

The byte moving lives in ``minidropbox.client`` (``plans``: put/get of files and folders);
this module turns arguments into calls and answers into tables, one-line messages, or
``--json``.
"""

from __future__ import annotations

import socket
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from minidropbox.cli.state import CliState, pass_state
from minidropbox.core import errors
from minidropbox.core.paths import join, lookup_path, name_of, normalize_path

if TYPE_CHECKING:  # imported by the commands that use them: start-up stays fast
    from rich.table import Table

    from minidropbox.client.batch import BatchResult

MAX_FAILURES_SHOWN = 10  # more would bury the summary; --json has them all


class PartialFailure(errors.MiniDropboxError):
    """Some files could not be transferred."""

    exit_code_varies = True  # ends with the exit code of the first file that failed


# -- formatting ---------------------------------------------------------------------------

def human_size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_time(value: Any) -> str:
    """Epoch seconds or an ISO timestamp, in local time to the minute."""
    if value is None or value == "":
        return "-"
    try:
        if isinstance(value, int | float):
            moment = datetime.fromtimestamp(float(value))
        else:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            if moment.tzinfo is not None:
                moment = moment.astimezone()
    except (ValueError, OverflowError, OSError):
        return str(value)
    return moment.strftime("%Y-%m-%d %H:%M")


def _table(*columns: str, right: tuple[str, ...] = ()) -> Table:
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left",
                         overflow="fold")
    return table


def _finish(state: CliState, verb: str, result: BatchResult) -> None:
    """Print the outcome of put/get; failures go to stderr and make the exit code non-zero."""
    stats = result.stats
    text = (f"{verb} {stats.files} file{'s' if stats.files != 1 else ''} "
            f"({human_size(stats.bytes_total)})")
    if verb == "Uploaded":
        text += (f"; sent {stats.chunks_sent} of {stats.chunks_total} chunks "
                 f"({human_size(stats.bytes_sent)})")
    state.emit(result.as_dict(), text + ".")
    if not result.failures:
        return
    if not state.as_json:
        for failure in result.failures[:MAX_FAILURES_SHOWN]:
            state.err_console.print(f"failed: {failure.remote_path or failure.local_path}: "
                                    f"{failure.message}", markup=False, highlight=False)
        hidden = len(result.failures) - MAX_FAILURES_SHOWN
        if hidden > 0:
            state.err_console.print(f"... and {hidden} more (--json lists them all)",
                                    markup=False, highlight=False)
    if len(result.failures) == 1 and not result.entries:
        err = PartialFailure(result.failures[0].message)
    else:
        err = PartialFailure(f"{len(result.failures)} file(s) could not be transferred.")
    err.exit_code = result.exit_code
    raise err


# -- commands -----------------------------------------------------------------------------

@click.command("ls")
@click.argument("path", default="/")
@click.option("-r", "--recursive", is_flag=True, help="Everything below, not just one level.")
@pass_state
def ls(state: CliState, path: str, recursive: bool) -> None:
    """List a folder (or show one file)."""
    path = lookup_path(path)
    with state.remote() as remote:
        entry = remote.metadata(path)
        entries = [entry] if entry.is_file else list(remote.list_folder(path, recursive))
    table = _table("size", "modified", "version", "name", right=("size", "version"))
    for e in entries:
        shown = e.path if recursive or entry.is_file else e.name
        if e.is_folder:
            shown += "/"
        table.add_row(human_size(e.size), human_time(e.modified), str(e.version or "-"), shown)
    if state.as_json:
        state.emit({"path": path, "entries": [e.as_json() for e in entries]})
    elif not state.quiet:
        if entries:
            state.console.print(table)
        else:
            state.info(f"{path} is empty.")


@click.command()
@click.argument("args", nargs=-1, required=True, metavar="LOCAL... [REMOTE]")
@pass_state
def put(state: CliState, args: tuple[str, ...]) -> None:
    """Upload files and folders; only chunks the server lacks are sent.

    With two or more arguments the last one is the remote destination (as with cp). A file
    that exists remotely gets a new version on top of its current one.
    """
    from minidropbox.cli.progress import ProgressBar
    from minidropbox.client.plans import plan_put, run_put

    sources, remote = (list(args[:-1]), args[-1]) if len(args) > 1 else (list(args), None)
    with state.remote() as server:
        plan = plan_put(server, sources, remote)
        with ProgressBar(state, "upload", plan.total_bytes) as bar:
            result = run_put(server, plan, bar, device=socket.gethostname())
    _finish(state, "Uploaded", result)


@click.command()
@click.argument("remote")
@click.argument("local", required=False, type=click.Path(path_type=Path))
@click.option("--version", "version", type=int, default=None,
              help="Fetch this version of a file instead of the current one.")
@pass_state
def get(state: CliState, remote: str, local: Path | None, version: int | None) -> None:
    """Download a file or a folder (recursively) from the server."""
    from minidropbox.cli.progress import ProgressBar
    from minidropbox.client.plans import plan_get, run_get

    with state.remote() as server:
        plan = plan_get(server, remote, local)
        if version is not None and (len(plan.files) != 1 or plan.folders):
            raise errors.InvalidInput("--version works on a single file, not a folder.")
        with ProgressBar(state, "download", plan.total_bytes) as bar:
            result = run_get(server, plan, bar, version=version)
    _finish(state, "Downloaded", result)


@click.command()
@click.argument("path")
@pass_state
def mkdir(state: CliState, path: str) -> None:
    """Create a folder (and any missing parents)."""
    with state.remote() as remote:
        entry = remote.make_folder(normalize_path(path))
    state.emit(entry.as_json(), f"Created {entry.path}/")


@click.command()
@click.argument("source")
@click.argument("dest")
@pass_state
def mv(state: CliState, source: str, dest: str) -> None:
    """Move or rename a file or folder; into DEST if DEST is a folder."""
    source, target = lookup_path(source), lookup_path(dest)
    with state.remote() as remote:
        existing = remote.find(target)
        if existing is not None and existing.is_folder and target != source:
            target = join(target, name_of(source))
        entry = remote.move(source, target)
    state.emit(entry.as_json(), f"Moved {source} to {entry.path}")


@click.command()
@click.argument("path")
@pass_state
def rm(state: CliState, path: str) -> None:
    """Move a file or folder (with its contents) to the trash."""
    path = lookup_path(path)
    if path == "/":
        raise errors.InvalidPath("Refusing to delete the root folder.")
    with state.remote() as remote:
        answer = remote.delete(path)
    count = answer.deleted
    state.emit(answer.as_json(), f"Moved {path} to the trash ({count} "
                       f"entr{'y' if count == 1 else 'ies'}); `undelete` brings it back.")


@click.command()
@click.argument("path")
@pass_state
def versions(state: CliState, path: str) -> None:
    """List every version of a file, newest first."""
    path = lookup_path(path)
    with state.remote() as remote:
        history = remote.versions(path)
    if state.as_json or state.quiet:
        state.emit({"versions": [v.as_json() for v in history]})
        return
    table = _table("version", "size", "modified", "uploaded", "device",
                   right=("version", "size"))
    for v in history:
        table.add_row(str(v.version), human_size(v.size), human_time(v.modified),
                      human_time(v.created_at), v.device or "-")
    state.console.print(table)


@click.command()
@click.argument("path")
@click.option("--version", "version", type=int, required=True, help="The version to bring back.")
@pass_state
def restore(state: CliState, path: str, version: int) -> None:
    """Make an old version current again, as a new version (history is kept)."""
    path = lookup_path(path)
    with state.remote() as remote:
        entry = remote.restore(path, version)
    state.emit(entry.as_json(), f"Restored {path} to the content of version {version} "
                                f"(now version {entry.version}).")


@click.command()
@click.option("--purge", "purge_path", default=None, metavar="PATH",
              help="Delete PATH (and what was deleted under it) from the trash for good.")
@click.option("--purge-all", is_flag=True, help="Empty the whole trash for good (asks first).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before --purge-all.")
@pass_state
def trash(state: CliState, purge_path: str | None, purge_all: bool, yes: bool) -> None:
    """List what is in the trash, or empty it (--purge PATH, --purge-all).

    Example: minidropbox trash --purge /old-photos"""
    if purge_path is not None or purge_all:
        if purge_path is not None and purge_all:
            raise click.UsageError("Give --purge PATH or --purge-all, not both.")
        target = normalize_path(purge_path) if purge_path is not None else None
        with state.remote() as remote:
            if purge_all and not yes and not _confirm_purge_all(remote.trash()):
                state.emit({"purged": 0}, "Nothing deleted.")
                return
            count = remote.purge_trash(target)
        state.emit({"purged": count}, f"Deleted {count} entr{'y' if count == 1 else 'ies'} "
                                      "from the trash for good.")
        return
    with state.remote() as remote:
        entries = remote.trash()
    if state.as_json or state.quiet:
        state.emit({"entries": [e.as_json() for e in entries]})
        return
    if not entries:
        state.info("The trash is empty.")
        return
    table = _table("deleted", "size", "path", right=("size",))
    for e in entries:
        shown = e.path + ("/" if e.type == "folder" else "")
        table.add_row(human_time(e.deleted_at), human_size(e.size), shown)
    state.console.print(table)


def _confirm_purge_all(entries: list[Any]) -> bool:
    """Ask before emptying the trash; without a terminal to ask on, refuse (``--yes``)."""
    size = sum(e.size or 0 for e in entries)
    what = (f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'} "
            f"({human_size(size)})")
    if not sys.stdin.isatty():
        raise errors.InvalidInput(f"--purge-all deletes {what} for good; add --yes to "
                                  "confirm (no terminal to ask on).")
    return click.confirm(f"Delete {what} from the trash for good? They cannot be brought "
                         "back", default=False, err=True)


@click.command()
@click.argument("path")
@pass_state
def undelete(state: CliState, path: str) -> None:
    """Bring back the most recently deleted entry at PATH (with a folder's contents)."""
    path = lookup_path(path)
    with state.remote() as remote:
        entry = remote.undelete(path)
    state.emit(entry.as_json(), f"Restored {entry.path} from the trash.")


COMMANDS = [ls, put, get, mkdir, mv, rm, versions, restore, trash, undelete]
