"""Account commands: signup, login, logout, whoami, passwd."""

from __future__ import annotations

import socket
import sys

import click

from minidropbox.cli.state import CliState, pass_state
from minidropbox.client.config import (
    clear_credentials,
    load_credentials,
    remember_server,
    save_credentials,
)
from minidropbox.core.accounts import (
    MIN_DISTINCT_CHARACTERS,
    MIN_PASSWORD_LENGTH,
    check_password,
    normalize_username,
)
from minidropbox.core.errors import (
    InvalidInput,
    MiniDropboxError,
    StorageUnavailable,
    Unauthorized,
)


def _read_password(password_stdin: bool, confirm: bool = False) -> str:
    if password_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            raise InvalidInput("No password on standard input.")
        return value
    if not sys.stdin.isatty():
        raise InvalidInput("No terminal to ask for the password on; pipe it in with "
                           "--password-stdin.")
    result: str = click.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    return result


PASSWORD_RULE = (f"The password needs at least {MIN_PASSWORD_LENGTH} characters, "
                 f"{MIN_DISTINCT_CHARACTERS} of them different, without your username, and "
                 "not one of the most common passwords.")


@click.command()
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--no-login", is_flag=True, help="Only create the account; do not log in.")
@click.option("--invite", default=None, metavar="CODE",
              help="An invite code (servers where sign-up is by invitation only).")
@pass_state
def signup(state: CliState, username: str, password_stdin: bool, no_login: bool,
           invite: str | None) -> None:
    """Create an account on the server.

    Logs in as the new account right away (unless --no-login).

    Example: minidropbox --server nas.local:8000 signup alice"""
    name = normalize_username(username)  # before the password: a bad name fails first
    if not password_stdin:
        state.info(PASSWORD_RULE)
    password = _read_password(password_stdin, confirm=True)
    check_password(password, username=name)  # the server also refuses common passwords
    with state.anonymous_remote() as remote:
        user = remote.signup(name, password, invite)
        if no_login:
            state.emit({**user.as_json(), "server": state.server, "logged_in": False},
                       f"Created account {user.username} on {state.server}. Next: "
                       f"`minidropbox login {user.username}`.")
            return
        try:
            creds = remote.api.login(name, password, device=socket.gethostname())
        except MiniDropboxError as exc:
            state.emit({**user.as_json(), "server": state.server, "logged_in": False},
                       f"Created account {user.username} on {state.server}, but could not "
                       f"log in ({exc.message}). Next: `minidropbox login {user.username}`.")
            return
    save_credentials(creds)
    state.emit({**user.as_json(), "server": creds.server, "logged_in": True},
               f"Created account {user.username} on {creds.server}; logged in. Next: "
               "`minidropbox put FILE`, or `minidropbox sync FOLDER`.")


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
    from minidropbox.client.api import ServerUnreachable

    ended_on_server = True
    try:
        with state.remote() as remote:
            remote.logout()
    except (ServerUnreachable, Unauthorized, StorageUnavailable):
        # Forgetting the session here is what matters; the server lets it expire.
        ended_on_server = False
    finally:
        clear_credentials()
        remember_server(creds.server)
    note = "" if ended_on_server else (" (the server could not be told; the session "
                                       "was forgotten here and expires there on its own)")
    state.emit({"logged_out": True, "server": creds.server,
                "ended_on_server": ended_on_server}, f"Logged out of {creds.server}{note}.")


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
