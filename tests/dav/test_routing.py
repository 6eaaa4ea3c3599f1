"""``/dav/`` is the app's first route: a WebDAV request is not tried against every API route
before its mount (that matching was a tenth of a small PUT's CPU)."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import Mount

from minidropbox.api.app import create_app
from minidropbox.settings import Settings


def test_the_dav_mount_is_matched_first(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))  # not started: only its route table
    first = app.router.routes[0]
    assert isinstance(first, Mount) and first.path == "/dav"
    others = [r for r in app.router.routes[1:] if getattr(r, "path", "").startswith("/dav")]
    assert not others, "a route under /dav/ would now be shadowed by the WebDAV mount"
