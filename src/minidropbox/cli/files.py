"""File commands: ls, put, get, mkdir, mv, rm, versions, restore, trash, undelete.

The byte moving lives in ``minidropbox.client`` (``plans``: put/get of files and folders);
this module turns arguments into calls and answers into tables, one-line messages, or
``--json``.
"""

from __future__ import annotations

import os
import socket
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from minidropbox.cli.state import CliState, pass_state
from minidropbox.core import errors
from minidropbox.core.paths import join, lookup_path, name_of, normalize_path
from minidropbox.core.units import human_bytes

if TYPE_CHECKING:  # imported by the commands that use them: start-up stays fast
    from rich.table import Table

    from minidropbox.client.batch import BatchResult, TransferStats
    from minidropbox.client.excludes import Excludes

MAX_FAILURES_SHOWN = 10  # more would bury the summary; --json has them all


class PartialFailure(errors.MiniDropboxError):
    """Some files could not be transferred."""

    exit_code_varies = True  # ends with the exit code of the first file that failed


# -- formatting ---------------------------------------------------------------------------

def human_size(n: int | None) -> str:
    return "-" if n is None else human_bytes(n)


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


def _files(n: int) -> str:
    return f"{n:,} file{'s' if n != 1 else ''}"


def _summary(verb: str, stats: TransferStats) -> str:
    """One line: what moved, and what did not need to ("unchanged")."""
    upload = verb == "Uploaded"
    moved = stats.files - stats.unchanged if upload else stats.files
    if moved == 0 and stats.unchanged:
        where = "on the server" if upload else "here"
        return f"Unchanged: {_files(stats.unchanged)} already {where}; nothing " + \
            ("sent." if upload else "downloaded.")
    text = f"{verb} {_files(moved)} ({human_size(stats.bytes_total)})"
    if upload:
        text += (f"; sent {stats.chunks_sent:,} of {stats.chunks_total:,} chunks "
                 f"({human_size(stats.bytes_sent)})")
    if stats.unchanged:
        text += f"; {stats.unchanged:,} unchanged"
    return text + "."


def _finish(state: CliState, verb: str, result: BatchResult) -> None:
    """Print the outcome of put/get; failures go to stderr and make the exit code non-zero."""
    stats = result.stats
    text = _summary(verb, stats)
    state.emit(result.as_dict(), text)
    if not result.failures:
        return
    alone = len(result.failures) == 1 and not result.entries  # the error line says it all
    if not state.as_json and not alone:
        for failure in result.failures[:MAX_FAILURES_SHOWN]:
            state.err_console.print(f"failed: {failure.remote_path or failure.local_path}: "
                                    f"{failure.message}", markup=False, highlight=False)
        hidden = len(result.failures) - MAX_FAILURES_SHOWN
        if hidden > 0:
            state.err_console.print(f"... and {hidden} more (--json lists them all)",
                                    markup=False, highlight=False)
    if alone:
        err = PartialFailure(result.failures[0].message)
    else:
        err = PartialFailure(f"{len(result.failures)} file(s) could not be transferred.")
    err.exit_code = result.exit_code
    raise err


# -- commands -----------------------------------------------------------------------------

@click.command("ls")
@click.argument("path", default="/")
@click.option("-r", "--recursive", is_flag=True, help="Everything below, not just one level.")
@click.option("-l", "--long", "long_", is_flag=True,
              help="Size, modification time and version of each entry.")
@pass_state
def ls(state: CliState, path: str, recursive: bool, long_: bool) -> None:
    """List a folder (or show one file).

    Names in natural order (file2 before file10), one per line; -l adds size, time and
    version.

    Example: minidropbox ls -l /Photos"""
    from minidropbox.cli.listing import natural_key, plain_rows, shown_name

    path = lookup_path(path)
    with state.remote() as remote:
        entry = remote.metadata(path)
        entries = [entry] if entry.is_file else list(remote.list_folder(path, recursive))
    whole_path = recursive or entry.is_file
    entries.sort(key=lambda e: natural_key(e.path if whole_path else e.name))
    if state.as_json:
        state.emit({"path": path, "entries": [e.as_json() for e in entries]})
        return
    if state.quiet:
        return
    if not entries:
        state.info(f"{path} is empty.")
        return
    names = [shown_name(e.path if whole_path else e.name) + ("/" if e.is_folder else "")
             for e in entries]
    if not long_:
        click.echo("\n".join(names))
        return
    rows = [(human_size(e.size), human_time(e.modified), str(e.version or "-"), name)
            for e, name in zip(entries, names, strict=True)]
    if not sys.stdout.isatty():  # a pipe gets one line per entry, never a wrapped name
        click.echo("\n".join(plain_rows(rows, right=(0, 2))))
        return
    table = _table("size", "modified", "version", "name", right=("size", "version"))
    for row in rows:
        table.add_row(*row)
    state.console.print(table)


EXCLUDE_HELP = ("Leave out what matches PATTERN (gitignore syntax, relative to the folder; "
                "`*.log`, `build/`); repeatable.")


def _say_excluded(state: CliState, exclude: Excludes) -> None:
    if exclude.count:
        state.info(f"Left out {exclude.count:,} file(s) matching --exclude.")


@click.command()
@click.argument("args", nargs=-1, required=True, metavar="LOCAL... [REMOTE]")
@click.option("--exclude", "excludes", multiple=True, metavar="PATTERN", help=EXCLUDE_HELP)
@pass_state
def put(state: CliState, args: tuple[str, ...], excludes: tuple[str, ...]) -> None:
    """Upload files and folders; only chunks the server lacks are sent.

    With two or more arguments the last one is the remote destination (as with cp). A file
    that exists remotely gets a new version on top of its current one.
    """
    from minidropbox.cli.progress import ProgressBar
    from minidropbox.client.batch import TransferStats
    from minidropbox.client.excludes import Excludes
    from minidropbox.client.plans import plan_put, run_put

    sources, remote = (list(args[:-1]), args[-1]) if len(args) > 1 else (list(args), None)
    if "-" in sources:
        _put_stdin(state, sources, remote)
        return
    exclude = Excludes(excludes)
    with state.remote() as server:
        plan = plan_put(server, sources, remote, exclude)
        _say_excluded(state, exclude)
        stats = TransferStats()
        with ProgressBar(state, "upload", plan.total_bytes, files_total=len(plan.items),
                         files_done=lambda: stats.files_sent,
                         current=lambda: stats.current) as bar:
            result = run_put(server, plan, bar, device=socket.gethostname(), stats=stats)
    _finish(state, "Uploaded", result)


@click.command()
@click.argument("remote")
@click.argument("local", required=False, type=click.Path(path_type=Path))
@click.option("--version", "version", type=int, default=None,
              help="Fetch this version of a file instead of the current one.")
@click.option("--force", is_flag=True,
              help="Replace local files even when they hold changes the server never had.")
@click.option("--exclude", "excludes", multiple=True, metavar="PATTERN", help=EXCLUDE_HELP)
@pass_state
def get(state: CliState, remote: str, local: Path | None, version: int | None,
        force: bool, excludes: tuple[str, ...]) -> None:
    """Download a file or a folder (recursively) from the server."""
    from minidropbox.cli.progress import ProgressBar
    from minidropbox.client.batch import TransferStats
    from minidropbox.client.excludes import Excludes
    from minidropbox.client.plans import plan_get, run_get

    if local is not None and str(local) == "-":
        _cat(state, remote, version)
        return
    exclude = Excludes(excludes)
    with state.remote() as server:
        plan = plan_get(server, remote, local, exclude)
        _say_excluded(state, exclude)
        if version is not None and (len(plan.files) != 1 or plan.folders):
            raise errors.InvalidInput("--version works on a single file, not a folder.")
        stats = TransferStats()
        with ProgressBar(state, "download", plan.total_bytes, files_total=len(plan.files),
                         files_done=lambda: stats.files + stats.unchanged,
                         current=lambda: stats.current) as bar:
            result = run_get(server, plan, bar, version=version, force=force, stats=stats)
    _finish(state, "Downloaded", result)


@click.command("cat")
@click.argument("remote")
@click.option("--version", "version", type=int, default=None,
              help="Print this version instead of the current one.")
@click.option("--range", "byte_range", default=None, metavar="START-END",
              help="Only bytes START to END (inclusive, from 0; START- to the end).")
@pass_state
def cat(state: CliState, remote: str, version: int | None, byte_range: str | None) -> None:
    """Write a file's content to standard output (same as get REMOTE -).

    Checked against the file's content hash at the end (exit 7 if it does not match); with
    --range, each chunk the range touches is checked against its hash.

    Example: minidropbox cat /notes/todo.txt | grep urgent
    Example: minidropbox cat /video.mp4 --range 1048576-2097151 > part.bin"""
    _cat(state, remote, version, parse_byte_range(byte_range) if byte_range else None)


def parse_byte_range(text: str) -> tuple[int, int | None]:
    """``START-END`` or ``START-`` as (start, end or None); ``InvalidInput`` otherwise."""
    first, sep, last = text.partition("-")
    if not sep or not first.isdigit() or (last and not last.isdigit()) or (
            last and int(last) < int(first)):
        raise errors.InvalidInput(
            f"--range {text!r}: give START-END (bytes, inclusive, from 0) or START-.")
    return int(first), int(last) if last else None


def _cat(state: CliState, remote: str, version: int | None,
         byte_range: tuple[int, int | None] | None = None) -> None:
    from minidropbox.client.batch import TransferStats
    from minidropbox.client.fetch import fetch_range
    from minidropbox.client.stream import stream_to

    out = sys.stdout.buffer
    if out.isatty() and not state.quiet:
        state.info("(writing the file to the terminal; pipe it or use `get` to save it)")
    try:
        with state.remote() as server:
            if byte_range is not None:
                fetch_range(server, lookup_path(remote), version, *byte_range, out,
                            stats=TransferStats())
                out.flush()
                return
            stream_to(server, lookup_path(remote), out, version=version)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as cat does.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - nothing must flush to the pipe
        sys.exit(141)


def _put_stdin(state: CliState, sources: list[str], remote: str | None) -> None:
    from minidropbox.cli.progress import ProgressBar
    from minidropbox.client.batch import BatchResult
    from minidropbox.client.stream import upload_stream

    if sources != ["-"] or remote is None or remote.endswith("/"):
        raise click.UsageError("Standard input needs a file name: put - REMOTE_FILE.")
    result = BatchResult()
    with state.remote() as server, ProgressBar(state, "upload", 0) as bar:
        before = server.find(normalize_path(remote))
        entry = upload_stream(server, sys.stdin.buffer, remote, progress=bar,
                              stats=result.stats, device=socket.gethostname())
    result.entries.append(entry)
    if before is not None and before.version == entry.version:
        result.stats.add(unchanged=1)
    _finish(state, "Uploaded", result)


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


@click.command("cp")
@click.argument("source")
@click.argument("dest")
@pass_state
def cp(state: CliState, source: str, dest: str) -> None:
    """Copy a file or folder on the server; into DEST if DEST is a folder.

    No bytes are uploaded or downloaded: the copy shares the original's chunks, so inside
    your own files (or one shared folder) it takes no quota space; into or out of a shared
    folder, the bytes new to the destination's owner count against their quota.

    Example: minidropbox cp /Projects/plan.txt /Archive/"""
    source, target = lookup_path(source), normalize_path(dest)
    with state.remote() as remote:
        existing = remote.find(target)
        if existing is not None and existing.is_folder and target != source:
            target = join(target, name_of(source))
        entry = remote.copy(source, target)
    kind = "folder" if entry.is_folder else "file"
    state.emit(entry.as_json(), f"Copied {source} to {entry.path} (a new {kind}; no bytes "
                                "moved).")


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
    entries = f"{count} entr{'y' if count == 1 else 'ies'}"
    if answer.unshared:  # the owner deleted a shared folder: say who lost it
        text = (f"Moved {path} to the trash ({entries}) and unshared it: "
                f"{answer.unshared} member(s) lost it; `undelete` brings it back unshared.")
    else:
        text = f"Moved {path} to the trash ({entries}); `undelete` brings it back."
    state.emit(answer.as_json(), text)


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


COMMANDS = [ls, cat, put, get, mkdir, mv, cp, rm, versions, restore, trash, undelete]
