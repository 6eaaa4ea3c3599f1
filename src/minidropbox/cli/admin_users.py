"""``minidropbox admin users ...`` and ``admin invite``: accounts, for administrators."""

from __future__ import annotations

import sys

import click
from rich.table import Table

from minidropbox.cli.state import CliState, pass_state
from minidropbox.client.admin_values import UserInfo
from minidropbox.client.bandwidth import parse_rate
from minidropbox.core.errors import InvalidInput
from minidropbox.core.units import human_bytes

DURATIONS = {"m": 60, "h": 3600, "d": 86400}


def read_new_password(password_stdin: bool) -> str:
    if password_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            raise InvalidInput("No password on standard input.")
        return value
    result: str = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    return result


def _line(user: UserInfo) -> str:
    quota = "no quota" if user.quota_bytes is None else f"quota {human_bytes(user.quota_bytes)}"
    flags = (" (admin)" if user.is_admin else "") + (" (disabled)" if user.disabled else "")
    return f"{user.username}{flags}: {human_bytes(user.used_bytes)} used, {quota}"


@click.group("users")
def users() -> None:
    """Accounts: list, create, disable, enable, delete, reset-password, quota."""


@users.command("list")
@pass_state
def list_command(state: CliState) -> None:
    """Every account, with its usage and quota."""
    found: list[UserInfo] = []
    with state.remote() as remote:
        page = remote.users()
        while page:
            found += page
            page = remote.users(after=page[-1].username)
    table = Table("user", "used", "quota", "admin", "disabled", box=None)
    for u in found:
        table.add_row(u.username, human_bytes(u.used_bytes),
                      "-" if u.quota_bytes is None else human_bytes(u.quota_bytes),
                      "yes" if u.is_admin else "", "yes" if u.disabled else "")
    if state.as_json:
        state.emit({"users": [u.as_json() for u in found]})
    elif not state.quiet:
        state.console.print(table)


@users.command("create")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_state
def create_command(state: CliState, username: str, password_stdin: bool) -> None:
    """Create an account (also when sign-up is by invitation only)."""
    password = read_new_password(password_stdin)
    with state.remote() as remote:
        user = remote.create_user(username, password)
    state.emit(user.as_json(), f"Created {_line(user)}.")


@users.command("disable")
@click.argument("username")
@pass_state
def disable_command(state: CliState, username: str) -> None:
    """Lock an account out: its sessions end now; no login or app password works."""
    with state.remote() as remote:
        user = remote.set_user_disabled(username, True)
    state.emit(user.as_json(), f"Disabled {user.username}; their sessions have ended.")


@users.command("enable")
@click.argument("username")
@pass_state
def enable_command(state: CliState, username: str) -> None:
    """Let a disabled account log in again."""
    with state.remote() as remote:
        user = remote.set_user_disabled(username, False)
    state.emit(user.as_json(), f"Enabled {user.username}.")


@users.command("delete")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def delete_command(state: CliState, username: str, yes: bool) -> None:
    """Delete an account with all its files, versions and trash, for good."""
    if not yes:
        if not sys.stdin.isatty():
            raise InvalidInput(f"Deleting {username} deletes all their files for good; "
                               "add --yes to confirm.")
        click.confirm(f"Delete {username} and all their files for good?", abort=True)
    with state.remote() as remote:
        remote.delete_user(username)
    state.emit({"deleted": username}, f"Deleted {username} and their files.")


@users.command("reset-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_state
def reset_password_command(state: CliState, username: str, password_stdin: bool) -> None:
    """Set a new password for an account; all its sessions end."""
    password = read_new_password(password_stdin)
    with state.remote() as remote:
        remote.reset_password(username, password)
    state.emit({"username": username}, f"New password set for {username}; their sessions "
                                       "have ended.")


@users.command("quota")
@click.argument("username")
@click.argument("size")
@pass_state
def quota_command(state: CliState, username: str, size: str) -> None:
    """Set an account's quota: SIZE like 10G or 500M, or `none` for no quota."""
    quota = None if size.lower() in ("none", "unlimited") else parse_size(size)
    with state.remote() as remote:
        user = remote.set_user_quota(username, quota)
    state.emit(user.as_json(), f"{_line(user)}.")


def parse_size(text: str) -> int:
    """``10G``, ``500M``, ``1.5GiB``, ``0`` → bytes."""
    if text.strip() == "0":
        return 0
    try:
        return parse_rate(text.removesuffix("/s"))
    except InvalidInput:
        raise InvalidInput(f"{text!r} is not a size: use e.g. 500M, 10G or none.") from None


@click.command("invite")
@click.option("--expires", default="7d", show_default=True, metavar="DURATION",
              help="How long the code works: 30m, 12h, 7d (at most 90d).")
@pass_state
def invite_command(state: CliState, expires: str) -> None:
    """Make a sign-up code, for servers where sign-up is by invitation (SIGNUP=invite)."""
    unit = expires[-1:].lower()
    if unit not in DURATIONS or not expires[:-1].isdigit():
        raise InvalidInput(f"{expires!r} is not a duration: use e.g. 30m, 12h or 7d.")
    with state.remote() as remote:
        code, expires_at = remote.create_invite(int(expires[:-1]) * DURATIONS[unit])
    state.emit({"code": code, "expires_at": expires_at},
               f"Invite code (shown once): {code}\n"
               f"Sign up with: minidropbox --server {state.server} signup NAME --invite {code}")
