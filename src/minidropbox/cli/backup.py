"""Operator commands: ``minidropbox backup now|list|verify|restore|prune``.

These act on a backup repository (``--repo`` or ``MINIDROPBOX_BACKUP_REPO``) and read the
server's settings (``--data`` or ``MINIDROPBOX_DATA_DIR``, ``MINIDROPBOX_NODES``,
``MINIDROPBOX_CLUSTER_SECRET``), never a user's login. Progress goes to stderr as log lines;
the result goes to stdout (``--json`` for scripts). Problems end with one ``Error:`` line and
a non-zero exit: 9 when a backup is incomplete or the repository fails verification.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from minidropbox.backup.errors import BackupIncomplete, RepositoryDamaged
from minidropbox.backup.repository import Repository
from minidropbox.cli.server import SERVER_UMASK
from minidropbox.cli.state import CliState, pass_state
from minidropbox.core.units import human_bytes
from minidropbox.logs import configure_logging

repo_option = click.option("--repo", "repo_path", envvar="MINIDROPBOX_BACKUP_REPO",
                           type=click.Path(path_type=Path), required=True,
                           help="Backup repository directory (or MINIDROPBOX_BACKUP_REPO).")
data_option = click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
                           help="The folder given to `server cluster --data` (or "
                                "MINIDROPBOX_DATA_DIR).")


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _emit(state: CliState, data: Any, text: str) -> None:
    """Like ``state.emit``, but long lines are never wrapped (ids and paths get copied)."""
    if state.as_json:
        state.emit(data)
    elif not state.quiet:
        click.echo(text)


def _logs(state: CliState) -> None:
    configure_logging(level=logging.WARNING if state.quiet or state.as_json else logging.INFO)


@click.group("backup")
def backup() -> None:
    """Back up the metadata and chunks, verify backups, restore a data directory."""
    os.umask(SERVER_UMASK)  # backups and restored data dirs hold every user's files


@backup.command("now")
@repo_option
@data_option
@click.option("--prune", "then_prune", is_flag=True, help="Apply retention afterwards.")
@click.option("--allow-empty", is_flag=True,
              help="Snapshot a database with no users and no files even after ones with data.")
@pass_state
def now_command(state: CliState, repo_path: Path, data_dir: Path | None,
                then_prune: bool, allow_empty: bool) -> None:
    """Take a snapshot now (creates the repository on first use)."""
    from minidropbox.backup.retention import prune
    from minidropbox.backup.service import snapshot_options
    from minidropbox.backup.snapshot import take_snapshot
    from minidropbox.cli.server import installation_settings

    _logs(state)
    settings = installation_settings(data_dir)
    repo = Repository.init(repo_path)
    options = snapshot_options(settings)
    options.allow_empty = allow_empty
    manifest = take_snapshot(repo, options)
    c = manifest["chunks"]
    _emit(state, manifest, f"snapshot {manifest['id']}: {c['copied']} chunks copied "
                         f"({human_bytes(c['copied_bytes'])}), {c['skipped']} skipped "
                         f"({human_bytes(c['skipped_bytes'])}), {c['missing_count']} missing, "
                         f"{manifest['duration']:.1f} s")
    if then_prune:
        prune(repo, settings.backup_keep_last, settings.backup_keep_daily)
    if c["missing_count"]:
        raise BackupIncomplete(f"{c['missing_count']} chunk(s) were on no storage node; "
                               f"snapshot {manifest['id']} lists them (see the log).")


@backup.command("list")
@repo_option
@pass_state
def list_command(state: CliState, repo_path: Path) -> None:
    """Complete snapshots, oldest first (interrupted ones are not shown)."""
    repo = Repository.open(repo_path)
    snaps = repo.snapshots()
    from minidropbox.cli.files import human_size

    rows: list[dict[str, Any]] = [s.manifest for s in snaps]
    lines = [f"{'ID':<24} {'TIME':<21} {'USERS':>6} {'FILES':>8} {'SIZE':>9} {'CHUNKS':>7} "
             f"{'COPIED':>7} {'MISSING':>7}"]
    for m in rows:
        c = m["chunks"]
        held = m.get("contents")  # snapshots taken before it was recorded have none
        users, files, size = ((str(held["users"]), str(held["files"]), human_size(held["bytes"]))
                              if held else ("?", "?", "?"))
        lines.append(f"{m['id']:<24} {_stamp(m['time']):<21} {users:>6} {files:>8} {size:>9} "
                     f"{c['referenced']:>7} {c['copied']:>7} {c['missing_count']:>7}")
    _emit(state, {"snapshots": rows}, "\n".join(lines) if rows else "No snapshots yet.")


@backup.command("verify")
@repo_option
@click.argument("snapshot", required=False)
@click.option("--read-data", is_flag=True, help="Re-read and re-hash every chunk.")
@pass_state
def verify_command(state: CliState, repo_path: Path, snapshot: str | None,
                   read_data: bool) -> None:
    """Check one snapshot (or all): metadata, chunk presence, with --read-data every byte."""
    from minidropbox.backup.verify import verify

    _logs(state)
    repo = Repository.open(repo_path)
    snaps = [repo.snapshot(snapshot)] if snapshot else repo.snapshots()
    report = verify(repo, snaps, read_data)
    summary = (f"verified {report.snapshots} snapshot(s), {report.chunks_checked} chunks"
               + (f", {human_bytes(report.bytes_read)} re-hashed" if read_data else "")
               + f", {len(report.problems)} problem(s), in {report.duration:.1f} s")
    _emit(state, {"ok": report.ok, "snapshots": report.snapshots,
                "chunks": report.chunks_checked, "bytes_read": report.bytes_read,
                "problems": report.problems},
               "\n".join([*report.problems, summary]))
    if not report.ok:
        raise RepositoryDamaged(f"{len(report.problems)} problem(s) found; the first: "
                                f"{report.problems[0]}")


@backup.command("restore")
@repo_option
@click.argument("snapshot")
@click.option("--to", "target", type=click.Path(path_type=Path), required=True,
              help="New, empty data directory to build.")
@click.option("--nodes", type=click.IntRange(1, 32), default=3, show_default=True)
@click.option("--replicas", type=click.IntRange(1, 8), default=2, show_default=True)
@click.option("--s3-url", default=None, metavar="s3://BUCKET/PREFIX?endpoint=URL",
              help="Put the chunks into this bucket instead of DIR/nodes (credentials: "
                   "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or MINIDROPBOX_S3_CREDENTIALS_FILE).")
@pass_state
def restore_command(state: CliState, repo_path: Path, snapshot: str, target: Path,
                    nodes: int, replicas: int, s3_url: str | None) -> None:
    """Build a data directory from SNAPSHOT (an id, a unique prefix, or `latest`)."""
    import os

    from minidropbox.backup.restore import restore

    _logs(state)
    repo = Repository.open(repo_path)
    credentials = os.environ.get("MINIDROPBOX_S3_CREDENTIALS_FILE")
    report = restore(repo, repo.snapshot(snapshot), target, nodes, replicas, s3_url=s3_url,
                     s3_credentials_file=Path(credentials) if credentials else None)
    start = (f"--storage s3 --s3-url '{s3_url}'" if s3_url
             else f"--nodes {nodes} --replicas {replicas}")
    _emit(state, {"snapshot": report.snapshot, "target": str(report.target),
                "chunks": report.chunks, "bytes": report.bytes,
                "unrecoverable": report.unrecoverable, "generation": report.generation},
               f"restored snapshot {report.snapshot} into {report.target}: {report.chunks} "
               f"chunks ({human_bytes(report.bytes)}), {len(report.unrecoverable)} unrecoverable, "
               f"{report.duration:.1f} s\nstart it with: minidropbox server cluster --data "
               f"{report.target} {start}")
    if report.unrecoverable:
        raise RepositoryDamaged(f"{len(report.unrecoverable)} chunk(s) could not be restored; "
                                "files using them will not download.")


@backup.command("prune")
@repo_option
@click.option("--keep-last", type=click.IntRange(0), default=None,
              help="Newest snapshots to keep (default: setting backup_keep_last).")
@click.option("--keep-daily", type=click.IntRange(0), default=None,
              help="Days to keep one snapshot for (default: setting backup_keep_daily).")
@pass_state
def prune_command(state: CliState, repo_path: Path, keep_last: int | None,
                  keep_daily: int | None) -> None:
    """Forget snapshots retention does not keep, then chunks nothing references."""
    from minidropbox.backup.retention import prune
    from minidropbox.cli.server import load_settings

    _logs(state)
    settings = load_settings()
    report = prune(Repository.open(repo_path),
                   settings.backup_keep_last if keep_last is None else keep_last,
                   settings.backup_keep_daily if keep_daily is None else keep_daily)
    _emit(state, {"kept": report.kept, "removed": report.removed,
                "chunks_removed": report.chunks_removed, "bytes_freed": report.bytes_freed},
               f"kept {len(report.kept)} snapshot(s), removed {len(report.removed)}; "
               f"removed {report.chunks_removed} chunks ({human_bytes(report.bytes_freed)})")


COMMANDS = [backup]
