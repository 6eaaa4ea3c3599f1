"""Account commands: signup, login, logout, whoami, passwd."""

from __future__ import annotations

import socket
import sys

import click

from minidropbox.cli.state import CliState, pass_state
from minidropbox.client.config import clear_credentials, load_credentials, save_credentials
from minidropbox.core.errors import InvalidInput


def _read_password(password_stdin: bool, confirm: bool = False) -> str:
    if password_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            raise InvalidInput("No password on standard input.")
        return value
    result: str = click.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    return result


@click.command()
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_state
def signup(state: CliState, username: str, password_stdin: bool) -> None:
    """Create an account on the server."""
    password = _read_password(password_stdin, confirm=True)
    with state.anonymous_remote() as remote:
        user = remote.signup(username, password)
    state.emit(user.as_json(), f"Created account {user.username} on {state.server}.")


@click.command()
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_state
def login(state: CliState, username: str, password_stdin: bool) -> None:
    """Log in and remember the session for later commands."""
    password = _read_password(password_stdin)
    with state.anonymous_remote() as remote:
        creds = remote.api.login(username, password, device=socket.gethostname())
    save_credentials(creds)
    state.emit({"username": creds.username, "server": creds.server},
               f"Logged in to {creds.server} as {creds.username}.")


@click.command()
@pass_state
def logout(state: CliState) -> None:
    """End the session on the server and forget it here."""
    creds = load_credentials()
    if creds is None:
        state.emit({"logged_out": False}, "Not logged in.")
        return
    try:
        with state.remote() as remote:
            remote.logout()
    finally:
        clear_credentials()
    state.emit({"logged_out": True}, f"Logged out of {creds.server}.")


@click.command()
@pass_state
def whoami(state: CliState) -> None:
    """Show who is logged in, and where."""
    with state.remote() as remote:
        me = remote.me()
    state.emit({**me.as_json(), "server": remote.server}, f"{me.username} on {remote.server}")


@click.command()
@pass_state
def passwd(state: CliState) -> None:
    """Change the password; every other session is logged out."""
    old = click.prompt("Current password", hide_input=True)
    new = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    with state.remote() as remote:
        remote.change_password(old, new)
        if remote.api.credentials is not None:
            save_credentials(remote.api.credentials)
    state.emit({"changed": True}, "Password changed; other sessions were logged out.")


COMMANDS = [signup, login, logout, whoami, passwd]
