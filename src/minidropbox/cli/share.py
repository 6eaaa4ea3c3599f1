"""Sharing commands: ``minidropbox share ...`` (links, and folders shared between accounts).

Links print their URL once, when made: the server keeps only a hash of the token.
"""

from __future__ import annotations

import sys

import click

from minidropbox.cli.files import _table, human_time
from minidropbox.cli.state import CliState, pass_state
from minidropbox.core.errors import InvalidInput
from minidropbox.core.paths import normalize_path
from minidropbox.core.retention import parse_interval


@click.group()
def share() -> None:
    """Share files and folders: links anyone can open, folders shared between accounts."""


@share.command()
@click.argument("path")
@click.option("--password-stdin", is_flag=True,
              help="Protect the link with a password read from standard input.")
@click.option("--expires", default=None, metavar="DURATION",
              help="The link stops working after this long (30m, 12h, 7d).")
@click.option("--max-downloads", type=click.IntRange(min=1), default=None,
              help="The link stops working after this many downloads.")
@click.option("--upload-only", is_flag=True,
              help="A file drop: anyone with the link can add files to the folder, and "
                   "sees nothing in it.")
@click.option("--show-owner", is_flag=True, help="Show your user name on the link's page.")
@pass_state
def link(state: CliState, path: str, password_stdin: bool, expires: str | None,
         max_downloads: int | None, upload_only: bool, show_owner: bool) -> None:
    """Make a link to PATH and print its URL (with --json: the whole link)."""
    expires_in = None
    if expires is not None:
        try:
            expires_in = parse_interval(expires)
        except ValueError as exc:
            raise InvalidInput(f"--expires: {exc}.") from None
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise InvalidInput("No password on standard input.")
    with state.remote() as remote:
        made = remote.create_link(normalize_path(path), password=password,
                                  expires_in=expires_in, max_downloads=max_downloads,
                                  upload_only=upload_only, show_owner=show_owner)
    state.emit(made.as_json(), made.share_url)


@share.command()
@click.argument("path", required=False)
@pass_state
def links(state: CliState, path: str | None) -> None:
    """Your links in force (to PATH only, if given), with how often they were used."""
    with state.remote() as remote:
        found = remote.links(normalize_path(path) if path else None)
    if state.as_json or state.quiet:
        state.emit({"links": [item.as_json() for item in found]})
        return
    if not found:
        state.info("No links.")
        return
    table = _table("id", "path", "mode", "password", "expires", "downloads", "last used",
                   right=("downloads",))
    for item in found:
        limit = item.max_downloads
        table.add_row(item.link_id, item.path, item.mode,
                      "yes" if item.password_protected else "no", human_time(item.expires_at),
                      f"{item.downloads}" + (f"/{limit}" if limit else ""),
                      human_time(item.last_used_at))
    state.console.print(table)


@share.command()
@click.argument("link_id", metavar="ID")
@pass_state
def revoke(state: CliState, link_id: str) -> None:
    """Revoke link ID at once (see `share links`)."""
    with state.remote() as remote:
        remote.revoke_link(link_id)
    state.emit({"revoked": link_id}, f"Revoked link {link_id}.")


# -- shared folders -------------------------------------------------------------------------

@share.command()
@click.argument("path")
@click.argument("username")
@click.option("--role", type=click.Choice(["editor", "viewer"]), default="editor",
              show_default=True, help="Editors change files; viewers only read them.")
@pass_state
def folder(state: CliState, path: str, username: str, role: str) -> None:
    """Share the folder PATH with USERNAME (run again to change their role)."""
    with state.remote() as remote:
        answer = remote.share_folder(normalize_path(path), username, role)
    verb = "Invited" if answer.state == "invited" else "Made"
    state.emit(vars(answer), f"{verb} {answer.username} {answer.role} of {answer.path}"
               + (" (they accept with `minidropbox share accept`)."
                  if answer.state == "invited" else "."))


@share.command()
@click.argument("path")
@pass_state
def members(state: CliState, path: str) -> None:
    """Who is in the shared folder PATH, and as what."""
    with state.remote() as remote:
        answer = remote.folder_members(normalize_path(path))
    if state.as_json or state.quiet:
        state.emit(answer.as_json())
        return
    table = _table("user", "role", "state")
    for member in answer.members if isinstance(answer.members, tuple) else ():
        table.add_row(member.username, member.role, member.state)
    state.console.print(table)


@share.command()
@click.argument("path")
@click.argument("username")
@pass_state
def remove(state: CliState, path: str, username: str) -> None:
    """Take USERNAME out of the shared folder PATH (or withdraw the invitation)."""
    with state.remote() as remote:
        remote.remove_member(normalize_path(path), username)
    state.emit({"removed": username}, f"Removed {username} from {path}.")


@share.command()
@click.argument("path")
@pass_state
def leave(state: CliState, path: str) -> None:
    """Leave the shared folder PATH: it goes from your files (the owner keeps it)."""
    with state.remote() as remote:
        remote.leave_folder(normalize_path(path))
    state.emit({"left": path}, f"Left {path}.")


@share.command()
@click.argument("path")
@pass_state
def unshare(state: CliState, path: str) -> None:
    """Stop sharing PATH: everyone else loses it; you keep it as a plain folder."""
    with state.remote() as remote:
        remote.unshare_folder(normalize_path(path))
    state.emit({"unshared": path}, f"{path} is no longer shared.")


@share.command()
@pass_state
def folders(state: CliState) -> None:
    """The shared folders in your files, and your role in each."""
    with state.remote() as remote:
        found = remote.shared_folders()
    if state.as_json or state.quiet:
        state.emit({"folders": [item.as_json() for item in found]})
        return
    if not found:
        state.info("No shared folders.")
        return
    table = _table("path", "owner", "role", "members", right=("members",))
    for item in found:
        table.add_row(item.path, item.owner, item.role, str(item.members))
    state.console.print(table)


@share.command()
@pass_state
def invites(state: CliState) -> None:
    """Invitations to shared folders waiting for you."""
    with state.remote() as remote:
        waiting = remote.invites()
    if state.as_json or state.quiet:
        state.emit({"invites": [vars(item) for item in waiting]})
        return
    if not waiting:
        state.info("No invitations.")
        return
    table = _table("id", "folder", "from", "role", "sent", right=("id",))
    for item in waiting:
        table.add_row(str(item.invite_id), item.name, item.owner, item.role,
                      human_time(item.created_at))
    state.console.print(table)


@share.command()
@click.argument("invite_id", metavar="ID", type=int)
@click.option("--as", "as_path", default=None, metavar="PATH",
              help="Where the folder goes in your files (default: its name, at the root).")
@pass_state
def accept(state: CliState, invite_id: int, as_path: str | None) -> None:
    """Accept invitation ID: the folder appears in your files."""
    with state.remote() as remote:
        answer = remote.accept_invite(invite_id, normalize_path(as_path) if as_path else None)
    mounted = {"path": answer.path, "name": answer.name, "owner": answer.owner,
               "role": answer.role}
    state.emit(mounted, f"{answer.owner}'s {answer.name} is now at {answer.path} "
                        f"({answer.role}).")


@share.command()
@click.argument("invite_id", metavar="ID", type=int)
@pass_state
def decline(state: CliState, invite_id: int) -> None:
    """Decline invitation ID."""
    with state.remote() as remote:
        remote.decline_invite(invite_id)
    state.emit({"declined": invite_id}, f"Declined invitation {invite_id}.")
