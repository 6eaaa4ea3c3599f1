"""The HTML pages behind ``/s/<token>``: a file, a folder's listing, a file-drop form.

Plain server-rendered HTML with no script at all, in the web app's look (its stylesheet,
``web/static/app.css``, plus ``share-page.css``); every value is escaped. Links inside a page
are relative query strings (``?path=...``), so the token is never repeated in the markup and
the page works behind any prefix.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi.responses import HTMLResponse

from minidropbox.web.content import preview_type

# No scripts; the app's own stylesheets (same origin); forms post back here; never framed.
# Previews come from this origin only: images, audio and video elements, and frames for
# text and PDF (the file itself is served sandboxed, see ``preview``).
PAGE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; media-src 'self'; "
            "frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def _size(n: int | None) -> str:
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _href(**params: Any) -> str:
    return html.escape("?" + urlencode({k: v for k, v in params.items() if v is not None}))


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        "<meta name=color-scheme content='light dark'><meta name=robots content=noindex>"
        f"<title>{html.escape(title)} - Mini-Dropbox</title>"
        "<link rel=icon href=/static/icons/logo.svg type=image/svg+xml>"
        "<link rel=stylesheet href=/static/app.css>"
        "<link rel=stylesheet href=/static/share-page.css></head>"
        "<body><div class=share-page><header class=topbar><span class=brand>"
        "<img src=/static/icons/logo.svg alt='' width=28 height=28><span>Mini-Dropbox</span>"
        f"</span></header><main class=share-card>{body}</main></div></body></html>")
    return HTMLResponse(document, status_code=status, headers={
        "Content-Security-Policy": PAGE_CSP, "X-Robots-Tag": "noindex"})


def error_page(status: int, message: str) -> HTMLResponse:
    return page("Shared link", f"<h1>This link does not work</h1>"
                f"<p>{html.escape(message)}</p>", status)


def _owner_line(view: dict[str, Any]) -> str:
    owner = view.get("owner")
    return f"<div class=muted>Shared by {html.escape(owner)}</div>" if owner else ""


def _preview(name: str, src: str) -> str:
    """The element that previews a file of this name, given its escaped inline URL. What the
    element loads is served with a safe type under a sandboxing policy (``preview_type``):
    HTML or SVG sources show as text, and nothing of the file ever runs."""
    media = preview_type(name)
    if media.startswith("image/"):
        return f"<img class=preview alt='' src='{src}'>"
    if media.startswith("video/"):
        return f"<video class=preview controls preload=metadata src='{src}'></video>"
    if media.startswith("audio/"):
        return f"<audio class=preview controls preload=metadata src='{src}'></audio>"
    if media == "application/pdf":  # the browser's viewer: it will not run sandboxed
        return f"<iframe class='preview document' title='Preview' src='{src}'></iframe>"
    if media.startswith("text/"):
        return (f"<iframe class='preview document' title='Preview' sandbox "
                f"src='{src}'></iframe>")
    return ""


def link_page(view: dict[str, Any], limited: bool, sent: int | None = None) -> HTMLResponse:
    """The page for a link, at the entry ``view`` describes (``LinkService.describe``)."""
    name = html.escape(view["name"])
    if view["mode"] == "upload":
        done = (f"<p>Thank you: {sent} file(s) received.</p>" if sent else "")
        return page(view["name"], (
            f"<h1>Send files to {name}</h1>{_owner_line(view)}{done}"
            "<p class=muted>You can add files here; you cannot see what is in this folder."
            "</p><form method=post action='' enctype=multipart/form-data>"
            "<input type=file name=file multiple required aria-label='Files to send'> "
            "<button type=submit class=primary>Upload</button></form>"))
    entry = view["entry"]
    if entry["type"] == "file":
        path = None if view["path"] == "/" else view["path"]
        preview = "" if limited else _preview(entry["name"], _href(path=path, dl=1, inline=1))
        return page(entry["name"], (
            f"<h1>{html.escape(entry['name'])}</h1>{_owner_line(view)}"
            f"<div class=muted>{_size(entry['size'])} · {_when(entry['modified'])}</div>"
            f"<div class=actions><a class='button primary' href='{_href(path=path, dl=1)}'>"
            f"Download</a></div>{preview}"))
    rel = view["path"]
    crumbs = [f"<a href='{_href()}'>{name}</a>"]
    walked = ""
    for part in [p for p in rel.split("/") if p]:
        walked += "/" + part
        crumbs.append(f"<a href='{_href(path=walked)}'>{html.escape(part)}</a>")
    rows = []
    for child in view.get("entries") or []:
        label = html.escape(child["name"])
        if child["type"] == "folder":
            rows.append(f"<tr><td><a href='{_href(path=child['path'])}'>📁 {label}</a></td>"
                        f"<td></td><td>{_when(child['modified'])}</td></tr>")
        else:
            rows.append(f"<tr><td><a href='{_href(path=child['path'], dl=1)}'>{label}</a></td>"
                        f"<td>{_size(child['size'])}</td><td>{_when(child['modified'])}</td></tr>")
    listing = "".join(rows) or "<tr><td colspan=3 class=muted>This folder is empty.</td></tr>"
    zip_path = None if rel == "/" else rel
    return page(view["name"], (
        f"<h1>{' / '.join(crumbs)}</h1>{_owner_line(view)}"
        f"<div class=actions><a class='button primary' href='{_href(path=zip_path, dl=1)}'>"
        "Download all (.zip)</a></div>"
        f"<table><tr><th>Name</th><th>Size</th><th>Modified</th></tr>{listing}</table>"))
