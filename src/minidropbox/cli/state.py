"""What every CLI command shares: the server URL, output mode, and an authenticated client."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import click

from minidropbox.client.config import load_credentials, profile_server, remembered_server
from minidropbox.core.errors import Unauthorized

if TYPE_CHECKING:  # imported when first used: each costs tenths of a second at start-up
    from rich.console import Console

    from minidropbox.client.api import ApiClient
    from minidropbox.client.remote import Remote

DEFAULT_SERVER = "http://127.0.0.1:8000"


def normalize_server(value: str) -> str:
    """``host:port`` (or ``host``) means ``http://host:port``, as curl reads it; no trailing
    slash, so the same server is always spelled the same way."""
    value = value.strip().rstrip("/")
    if "://" not in value:
        value = "http://" + value
    return value


@dataclass
class CliState:
    server_option: str | None = None
    as_json: bool = False
    quiet: bool = False

    @cached_property
    def console(self) -> Console:
        from rich.console import Console

        return Console(stderr=False, highlight=False)

    @cached_property
    def err_console(self) -> Console:
        from rich.console import Console

        return Console(stderr=True, highlight=False)

    @property
    def server(self) -> str:
        """``--server``, else the session's server, else the profile's in ``config.toml``,
        else the one last logged out of, else the local default."""
        if self.server_option:
            return normalize_server(self.server_option)
        creds = load_credentials()
        if creds:
            return creds.server
        configured = profile_server() or remembered_server()
        return normalize_server(configured) if configured else DEFAULT_SERVER

    def anonymous_remote(self) -> Remote:
        from minidropbox.client.api import ApiClient
        from minidropbox.client.remote import Remote

        return Remote(ApiClient(self.server))

    def remote(self) -> Remote:
        """The logged-in account on its server, with one method per endpoint; file bytes
        paced to ``MINIDROPBOX_BWLIMIT`` (e.g. ``2M``) when it is set."""
        client = self.client()  # not logged in: said before the network code is imported
        from minidropbox.client.bandwidth import Bandwidth, parse_rate
        from minidropbox.client.remote import Remote

        limit = os.environ.get("MINIDROPBOX_BWLIMIT")
        return Remote(client, bandwidth=Bandwidth(parse_rate(limit)) if limit else None)

    def client(self) -> ApiClient:
        creds = load_credentials()
        if creds is None:
            raise Unauthorized("Not logged in; run `minidropbox login` first.")
        if self.server_option and normalize_server(self.server_option) != creds.server:
            raise Unauthorized(
                f"Logged in to {creds.server}, not {self.server_option}; log in there first."
            )
        from minidropbox.client.api import ApiClient

        return ApiClient(creds.server, creds)

    def emit(self, data: Any, text: str | None = None) -> None:
        """Print a result: JSON with ``--json``, else the human text (unless ``--quiet``)."""
        if self.as_json:
            sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        elif text is not None and not self.quiet:
            self.console.print(text, markup=False, soft_wrap=True)  # a pipe gets whole lines

    def info(self, message: str) -> None:
        if not self.quiet and not self.as_json:
            self.err_console.print(message, markup=False, soft_wrap=True)


pass_state = click.make_pass_decorator(CliState)
