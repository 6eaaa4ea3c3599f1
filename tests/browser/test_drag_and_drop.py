"""Drag and drop in a real Chromium. Files and a whole folder (with a folder inside) dropped
from the computer are uploaded where they land: the open folder, or the folder row they are
dropped on. Entries dragged onto a folder row or a breadcrumb move there.

The drops are Chromium's own: DevTools' ``Input.dispatchDragEvent`` carries paths on disk, and
the page receives what a file manager's drop gives it (``DataTransfer`` items whose
file-system entries are read folder by folder), through the same dragenter / dragover / drop
events at a point on the screen.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from tests.browser.conftest import log_in, open_entry, row, rows, wait, wait_uploaded
from tests.conftest import bearer, signup_and_login
from tests.harness import TestCluster

DRAG_TYPE = "application/x-minidropbox-paths"  # entries dragged inside the app (list.js)
COPY, MOVE = 1, 16  # DevTools' drag operation bits


def drop(driver: WebDriver, target: WebElement, data: dict[str, object]) -> None:
    """Drag ``data`` over the middle of ``target`` and drop it there."""
    x, y = driver.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return [r.left + r.width / 2, r.top + r.height / 2];", target)
    for kind in ("dragEnter", "dragOver", "drop"):
        driver.execute_cdp_cmd("Input.dispatchDragEvent",
                               {"type": kind, "x": x, "y": y, "data": data})


def drop_files(driver: WebDriver, target: WebElement, *paths: Path) -> None:
    drop(driver, target, {"items": [], "files": [str(p) for p in paths],
                          "dragOperationsMask": COPY})


def drop_entries(driver: WebDriver, target: WebElement, *paths: str) -> None:
    drop(driver, target, {"items": [{"mimeType": DRAG_TYPE, "data": json.dumps(paths)},
                                    {"mimeType": "text/plain", "data": "\n".join(paths)}],
                          "dragOperationsMask": MOVE})


def tree(c: httpx.Client, auth: dict[str, str]) -> dict[str, str]:
    """Every file of the account: path -> contents."""
    listing = c.get("/api/v1/files/list", headers=auth,
                    params={"path": "/", "recursive": "true"}).json()
    assert listing["cursor"] is None
    return {e["path"]: c.get("/api/v1/files/content", headers=auth,
                              params={"path": e["path"]}).text
            for e in listing["entries"] if e["type"] == "file"}


def test_drop_files_and_folders_to_upload_and_drag_entries_to_move(
        web_cluster: TestCluster, browser: WebDriver, tmp_path: Path) -> None:
    d = browser
    desktop = tmp_path / "desktop"
    (desktop / "Photos" / "2024").mkdir(parents=True)
    (desktop / "one.txt").write_text("one")
    (desktop / "Photos" / "a.txt").write_text("in the folder")
    (desktop / "Photos" / "2024" / "b.txt").write_text("a folder deeper")
    (desktop / "two.txt").write_text("two")

    with httpx.Client(base_url=web_cluster.url, timeout=60) as c:
        username = f"drop-{uuid.uuid4().hex[:8]}"
        auth = bearer(signup_and_login(c, username))
        log_in(d, web_cluster.url, username)

        # A file and a whole folder dropped onto the (empty) home folder.
        empty = wait(d).until(lambda _: d.find_element(By.CSS_SELECTOR, ".files .empty"))
        wait(d).until(lambda _: empty.is_displayed())
        drop_files(d, empty, desktop / "one.txt", desktop / "Photos")
        wait_uploaded(d, "/one.txt", "/Photos/a.txt", "/Photos/2024/b.txt")
        wait(d).until(lambda _: rows(d) == ["Photos", "one.txt"])

        # A file dropped onto a folder's row goes into that folder.
        drop_files(d, row(d, "Photos"), desktop / "two.txt")
        wait_uploaded(d, "/Photos/two.txt")

        # An entry dragged onto a folder's row moves into it...
        drop_entries(d, row(d, "Photos"), "/one.txt")
        wait(d).until(lambda _: rows(d) == ["Photos"])
        # ...and one dragged onto the "Home" breadcrumb moves up to the home folder.
        open_entry(d, "Photos")
        wait(d).until(lambda _: rows(d) == ["2024", "a.txt", "one.txt", "two.txt"])
        drop_entries(d, d.find_element(By.LINK_TEXT, "Home"), "/Photos/two.txt")
        wait(d).until(lambda _: rows(d) == ["2024", "a.txt", "one.txt"])

        assert tree(c, auth) == {"/Photos/a.txt": "in the folder",
                                 "/Photos/2024/b.txt": "a folder deeper",
                                 "/Photos/one.txt": "one", "/two.txt": "two"}
