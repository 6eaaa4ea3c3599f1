"""``minidropbox app-password``: per-device passwords for WebDAV (create, list, revoke)."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from minidropbox.cli.state import CliState, pass_state


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "never"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M")


@click.group("app-password")
def app_password() -> None:
    """Passwords for WebDAV clients (rclone, Finder, Explorer, davfs2), one per device."""


@app_password.command()
@click.argument("name")
@pass_state
def create(state: CliState, name: str) -> None:
    """Create an app password called NAME and print it (it is shown only this once)."""
    with state.remote() as remote:
        created = remote.create_app_password(name)
    shown = {"name": created.name, "username": created.username, "password": created.password,
             "created_at": created.created_at, "webdav_url": f"{remote.server}/dav/"}
    state.emit(shown, f"{created.password}\n"
                      f"WebDAV: {shown['webdav_url']} as user {created.username} "
                      "with this password. It is not shown again.")


@app_password.command("list")
@pass_state
def list_all(state: CliState) -> None:
    """List the account's app passwords (names and dates only)."""
    with state.remote() as remote:
        rows = remote.app_passwords()
    lines = [f"{r.name}\tcreated {_when(r.created_at)}\tlast used {_when(r.last_used_at)}"
             for r in rows]
    state.emit([{"name": r.name, "created_at": r.created_at, "last_used_at": r.last_used_at}
                for r in rows], "\n".join(lines) if lines else "No app passwords.")


@app_password.command()
@click.argument("name")
@pass_state
def revoke(state: CliState, name: str) -> None:
    """Revoke the app password called NAME; it stops working at once."""
    with state.remote() as remote:
        remote.revoke_app_password(name)
    state.emit({"revoked": name}, f"Revoked {name}.")
