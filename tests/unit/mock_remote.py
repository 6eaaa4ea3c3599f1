"""A ``Remote`` whose HTTP goes to an in-process handler (``httpx.MockTransport``)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from minidropbox.client.api import ApiClient
from minidropbox.client.config import Credentials
from minidropbox.client.remote import Remote, RetryPolicy

Handler = Callable[[httpx.Request], httpx.Response]


def mock_remote(handler: Handler, *, direct: bool = False) -> Remote:
    """``direct``: the remote asks for grants and read plans (the handler must answer them);
    by default it speaks only the API's proxy routes, as against a server without nodes."""
    creds = Credentials("http://fake", "alice", "token", "refresh", time.time() + 3600)
    api = ApiClient("http://fake", creds, persist=False, transport=httpx.MockTransport(handler))
    return Remote(api, RetryPolicy(base_delay=0.0), direct=direct)
