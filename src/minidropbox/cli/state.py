"""What every CLI command shares: the server URL, output mode, and an authenticated client."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any

import click
from rich.console import Console

from minidropbox.client.api import ApiClient
from minidropbox.client.config import load_credentials
from minidropbox.client.remote import Remote
from minidropbox.core.errors import Unauthorized

DEFAULT_SERVER = "http://127.0.0.1:8000"


@dataclass
class CliState:
    server_option: str | None = None
    as_json: bool = False
    quiet: bool = False
    console: Console = field(default_factory=lambda: Console(stderr=False, highlight=False))
    err_console: Console = field(default_factory=lambda: Console(stderr=True, highlight=False))

    @property
    def server(self) -> str:
        if self.server_option:
            return self.server_option.rstrip("/")
        creds = load_credentials()
        return creds.server if creds else DEFAULT_SERVER

    def anonymous_remote(self) -> Remote:
        return Remote(ApiClient(self.server))

    def remote(self) -> Remote:
        """The logged-in account on its server, with one method per endpoint."""
        return Remote(self.client())

    def client(self) -> ApiClient:
        creds = load_credentials()
        if creds is None:
            raise Unauthorized("Not logged in; run `minidropbox login` first.")
        if self.server_option and self.server_option.rstrip("/") != creds.server:
            raise Unauthorized(
                f"Logged in to {creds.server}, not {self.server_option}; log in there first."
            )
        return ApiClient(creds.server, creds)

    def emit(self, data: Any, text: str | None = None) -> None:
        """Print a result: JSON with ``--json``, else the human text (unless ``--quiet``)."""
        if self.as_json:
            sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        elif text is not None and not self.quiet:
            self.console.print(text, markup=False)

    def info(self, message: str) -> None:
        if not self.quiet and not self.as_json:
            self.err_console.print(message, markup=False)


pass_state = click.make_pass_decorator(CliState)
