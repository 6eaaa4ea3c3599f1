"""Sharing commands: ``minidropbox share link|links|revoke``.

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
