"""``minidropbox app-password``: per-device passwords for WebDAV (create, list, revoke)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

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
    with state.client() as api:
        created = api.request_json("POST", "/api/v1/app-passwords", json={"name": name})
    created["webdav_url"] = f"{api.server}/dav/"
    state.emit(created, f"{created['password']}\n"
                        f"WebDAV: {created['webdav_url']} as user {created['username']} "
                        "with this password. It is not shown again.")


@app_password.command("list")
@pass_state
def list_all(state: CliState) -> None:
    """List the account's app passwords (names and dates only)."""
    with state.client() as api:
        rows = api.request_json("GET", "/api/v1/app-passwords")["app_passwords"]
    lines = [f"{r['name']}\tcreated {_when(r['created_at'])}\tlast used {_when(r['last_used_at'])}"
             for r in rows]
    state.emit(rows, "\n".join(lines) if lines else "No app passwords.")


@app_password.command()
@click.argument("name")
@pass_state
def revoke(state: CliState, name: str) -> None:
    """Revoke the app password called NAME; it stops working at once."""
    with state.client() as api:
        api.request("DELETE", f"/api/v1/app-passwords/{quote(name, safe='')}")
    state.emit({"revoked": name}, f"Revoked {name}.")
