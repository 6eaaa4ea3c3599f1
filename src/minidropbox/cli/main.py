"""The ``minidropbox`` entry point: global options, command groups, error handling."""

from __future__ import annotations

import sys

import click

from minidropbox import __version__
from minidropbox.cli import account, admin, files, usage
from minidropbox.cli.app_password import app_password
from minidropbox.cli.backup import backup
from minidropbox.cli.server import server
from minidropbox.cli.share import share
from minidropbox.cli.state import CliState
from minidropbox.cli.sync import sync
from minidropbox.cli.watch import watch
from minidropbox.core.errors import MiniDropboxError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="minidropbox")
@click.option("--server", "server_option", envvar="MINIDROPBOX_SERVER", default=None,
              help="API URL (default: the one you logged in to, else http://127.0.0.1:8000).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--quiet", "-q", is_flag=True, help="No progress or chatter.")
@click.pass_context
def cli(ctx: click.Context, server_option: str | None, as_json: bool, quiet: bool) -> None:
    """Mini-Dropbox: your files on every machine, every version kept."""
    ctx.obj = CliState(server_option=server_option, as_json=as_json, quiet=quiet)


for command in account.COMMANDS:
    cli.add_command(command)
for command in files.COMMANDS:
    cli.add_command(command)
cli.add_command(usage.du)
cli.add_command(usage.du, name="quota")
cli.add_command(server)
cli.add_command(sync)
cli.add_command(admin.admin)
server.add_command(admin.grant_admin)
cli.add_command(watch)
cli.add_command(backup)
cli.add_command(share)
cli.add_command(app_password)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except MiniDropboxError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
