"""The web app: the whole product in a browser, served by the API at ``/``.

- ``pages``: the app's one HTML page and its static assets (ES modules and CSS, no build
  step, no third-party code), under a strict Content-Security-Policy.
- ``session``: log in and out with an HttpOnly cookie (``api/browser_session.py``).
- ``content``: files as the browser needs them: previews that cannot script the app, and
  folders as streamed zip files.
"""

from __future__ import annotations

from fastapi import FastAPI

from minidropbox.web import content, pages, session


def install(app: FastAPI) -> None:
    """Add the web app's routes to the API app."""
    app.include_router(session.router)
    app.include_router(content.router)
    pages.install(app)
