"""Operator commands: ``minidropbox admin ...`` over the admin API, and
``minidropbox server grant-admin`` straight on the metadata database."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.table import Table

from minidropbox.cli import admin_users
from minidropbox.cli.files import human_size, human_time
from minidropbox.cli.state import CliState, pass_state
from minidropbox.client.admin_values import StorageNode
from minidropbox.core.errors import MiniDropboxError, NotFound


@click.group()
def admin() -> None:
    """Look after accounts and the storage cluster (needs an administrator account)."""


admin.add_command(admin_users.users)
admin.add_command(admin_users.invite_command)


@admin.command("nodes")
@pass_state
def nodes_command(state: CliState) -> None:
    """Storage nodes: state, used and free space, chunk and replica counts."""
    with state.remote() as remote:
        nodes = remote.storage_nodes()
    table = Table("node", "state", "used", "free", "chunks", "replicas", "bad", "restarts",
                  "last seen", box=None)
    for n in nodes:
        label = n.state + (" (draining)" if n.draining else "")
        if n.disk != "ok":
            label += f" (disk {n.disk.replace('_', '-')})"
        if not n.configured:
            label += " (removed)"
        table.add_row(n.name, label, human_size(n.used_bytes), human_size(n.free_bytes),
                      str(n.chunk_count if n.chunk_count is not None else "-"),
                      str(n.replicas), str(n.bad_replicas),
                      "-" if n.restarts is None else str(n.restarts),
                      human_time(n.last_seen))
    if state.as_json:
        state.emit({"nodes": [n.as_json() for n in nodes]})
    elif not state.quiet:
        state.console.print(table)


@admin.command("status")
@pass_state
def status_command(state: CliState) -> None:
    """Cluster health: under-replicated chunks, corrupt replicas, repair queue."""
    with state.remote() as remote:
        status = remote.storage_status()
    lines = [
        f"nodes up:          {status.nodes_up} of {status.nodes}"
        + (f" (draining: {', '.join(status.draining)})" if status.draining else ""),
        f"chunks:            {status.chunks} (want {status.replicas_wanted} replicas each)",
        f"under-replicated:  {status.under_replicated}",
        f"unreadable:        {status.unreadable}",
        f"corrupt replicas:  {status.corrupt_replicas}",
        f"repair queue:      {status.repair_queue}",
    ]
    sweep = status.last_orphan_sweep
    if sweep:
        lines.append(f"orphan sweep:      {sweep.found} found, {sweep.removed} removed "
                     f"({human_time(sweep.started_at)})")
    for p in status.processes:
        exit_note = f", last {p.last_exit} {human_time(p.last_exit_at)}" if p.last_exit else ""
        lines.append(f"process {p.name:<11} {p.state}, {p.restarts} restarts{exit_note}")
    state.emit(status.as_json(), "\n".join(lines))


@admin.command("drain")
@click.argument("node")
@click.option("--cancel", is_flag=True, help="Stop draining; the node takes new data again.")
@click.option("--wait", "wait_seconds", type=float, default=None, metavar="SECONDS",
              help="Wait up to SECONDS until the node holds no replicas.")
@pass_state
def drain_command(state: CliState, node: str, cancel: bool, wait_seconds: float | None) -> None:
    """Move every replica off NODE so it can be removed."""
    with state.remote() as remote:
        view = remote.drain_node(node, cancel=cancel)
        if cancel:
            state.emit(view.as_json(), f"{node} is no longer draining.")
            return
        deadline = time.monotonic() + (wait_seconds or 0)
        while wait_seconds is not None and view.replicas and time.monotonic() < deadline:
            time.sleep(1)
            view = _node(remote.storage_nodes(), node)
    if view.replicas == 0:
        state.emit(view.as_json(), f"{node} holds no replicas; it can be removed from the cluster.")
    elif wait_seconds is not None:
        raise DrainIncomplete(f"{node} still holds {view.replicas} replicas; "
                              "run `minidropbox admin status` to see why.")
    else:
        state.emit(view.as_json(), f"Draining {node}: {view.replicas} replicas to move. "
                                   "`minidropbox admin nodes` shows progress.")


class DrainIncomplete(MiniDropboxError):
    """The node still holds replicas."""

    exit_code = 7


def _node(nodes: list[StorageNode], name: str) -> StorageNode:
    for n in nodes:
        if n.name == name:
            return n
    raise NotFound(f"There is no storage node named {name}.")


@admin.command("rebalance")
@pass_state
def rebalance_command(state: CliState) -> None:
    """Move replicas so placement matches rendezvous order (throttled, in the background)."""
    with state.remote() as remote:
        started = remote.rebalance()
    state.emit({"started": started},
               "Rebalancing started; `minidropbox admin status` shows when it is done.")


@admin.command("repair")
@pass_state
def repair_command(state: CliState) -> None:
    """Run a repair pass now and show what it did."""
    with state.remote() as remote:
        done = remote.repair()
    state.emit(done.as_json(), f"Checked {done.checked} chunks: {done.copied} copies made, "
                               f"{done.dropped} dropped, {done.failed} failed, "
                               f"{done.waiting} waiting for a node.")


@admin.command("gc")
@click.option("--dry-run", is_flag=True, help="Only report what would be collected.")
@pass_state
def gc_command(state: CliState, dry_run: bool) -> None:
    """Delete chunks no version references (after the grace period)."""
    with state.remote() as remote:
        result = remote.collect_garbage(dry_run=dry_run)
    if dry_run:
        text = (f"{result.candidates} chunks ({human_size(result.freed_bytes)}) "
                "would be collected.")
    else:
        text = f"Collected {result.collected} chunks ({human_size(result.freed_bytes)})."
    state.emit(result.as_json(), text)


@admin.command("orphans")
@click.option("--dry-run", is_flag=True, help="Only count them.")
@pass_state
def orphans_command(state: CliState, dry_run: bool) -> None:
    """Delete chunk copies on the nodes that the metadata does not know (after a grace period)."""
    with state.remote() as remote:
        sweep = remote.sweep_orphans(dry_run=dry_run)
    done = "found" if dry_run else f"found, {sweep.removed} removed"
    skipped = f"; skipped (not up): {', '.join(sweep.skipped)}" if sweep.skipped else ""
    state.emit(sweep.as_json(), f"Listed {sweep.listed} copies on {len(sweep.nodes)} nodes: "
                                f"{sweep.found} orphans {done}{skipped}.")


@admin.command("check")
@click.option("--nodes", is_flag=True,
              help="Also ask each node for every copy the metadata records (paced at the "
                   "audit rate: minutes on a big cluster).")
@pass_state
def check_command(state: CliState, nodes: bool) -> None:
    """Check every invariant of the design; exit 9 if one whose breach loses data fails.

    MUST invariants failing mean data is lost or wrong; SHOULD ones are reported and left to
    repair and garbage collection."""
    with state.remote() as remote:
        result = remote.check_invariants(nodes=nodes)
    lines = []
    for f in result.findings:
        verdict = "ok" if not f.violations else f"{f.violations} violation(s)"
        lines.append(f"{f.level.upper():6} {f.name:24} {verdict:18} {f.rule}")
        lines += [f"         {example}" for example in f.sample]
    state.emit(result.as_json(), "\n".join(lines))
    broken = [f.name for f in result.findings if f.level == "must" and f.violations]
    if broken:
        raise InvariantsBroken(f"Broken: {', '.join(broken)}. See docs/DESIGN.md, "
                               "\"Invariants that run\", for what each means.")


class InvariantsBroken(MiniDropboxError):
    """An invariant whose breach loses data does not hold."""

    code = "invariants_broken"
    exit_code = 9


@click.command("grant-admin")
@click.argument("username")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
              help="The folder given to `server cluster --data` (or MINIDROPBOX_DATA_DIR / "
                   "DATABASE_URL).")
@click.option("--revoke", is_flag=True, help="Take administrator rights away instead.")
@click.option("--create", is_flag=True,
              help="Create the account first (how the first administrator gets in when "
                   "sign-up is by invitation only).")
@click.option("--password-stdin", is_flag=True, help="With --create: read the password "
                                                     "from standard input.")
def grant_admin(username: str, data_dir: Path | None, revoke: bool, create: bool,
                password_stdin: bool) -> None:
    """Make USERNAME an administrator, writing the metadata database directly.

    An operator command for the machine the API runs on: no API call can do this, so a
    stolen user session can never promote itself.

    Example: minidropbox server grant-admin alice --data ./data
    """
    import time as clock

    from sqlalchemy import update

    from minidropbox.cli.admin_users import read_new_password
    from minidropbox.cli.server import installation_settings
    from minidropbox.core.accounts import check_password, normalize_username
    from minidropbox.metadata.accounts import create_user
    from minidropbox.metadata.db import Database
    from minidropbox.metadata.tables import users
    from minidropbox.service.accounts import PASSWORD_HASHER
    from minidropbox.service.passwords import common_passwords

    settings = installation_settings(data_dir)
    name = normalize_username(username)
    hashed = None
    if create:
        password = read_new_password(password_stdin)
        check_password(password, common_passwords(), name)
        hashed = PASSWORD_HASHER.hash(password)
    db = Database(settings.effective_database_url)
    try:
        db.migrate()
        with db.write() as conn:
            if hashed is not None:
                create_user(conn, name, hashed, clock.time(), settings.quota_bytes)
            changed = conn.execute(update(users).where(users.c.username == name)
                                   .values(is_admin=not revoke)).rowcount
    finally:
        db.dispose()
    if not changed:
        raise NotFound(f"There is no user {name} in {settings.effective_database_url}.")
    click.echo(f"{name} is {'no longer' if revoke else 'now'} an administrator.")


COMMANDS = [admin]
