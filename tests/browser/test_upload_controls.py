"""The upload panel's promises and the trash's last step, in a real Chromium: uploads started
while the connection is lost say so, wait, and carry on by themselves when it is back;
"Cancel" stops one and nothing of it is committed; "Delete forever" asks, then purges.

The connection is Chromium's own network emulation (DevTools): offline and online as the page
sees them in a browser, requests failing as they would.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser.chromium import upload_states
from tests.browser.conftest import (
    button,
    click,
    enable_network_domain,
    log_in,
    rows,
    wait,
    wait_uploaded,
)
from tests.conftest import bearer, signup_and_login
from tests.harness import TestCluster

MiB = 1024 * 1024
WAITING = ("Offline: waiting", "Retrying in")  # what an upload row says meanwhile


def network(driver: WebDriver, offline: bool) -> None:
    enable_network_domain(driver)
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})


def waiting(driver: WebDriver, path: str) -> bool:
    state = upload_states(driver).get(path, "")
    return "uploading" in state and any(note in state for note in WAITING)


def pick(driver: WebDriver, file: Path) -> None:
    driver.find_element(By.CSS_SELECTOR, "input[data-role=upload-files]").send_keys(str(file))


def test_uploads_wait_out_a_lost_connection_cancel_and_purge(
        web_cluster: TestCluster, browser: WebDriver, tmp_path: Path) -> None:
    d = browser
    first, second = tmp_path / "first.bin", tmp_path / "second.bin"
    first.write_bytes(os.urandom(5 * MiB))
    second.write_bytes(os.urandom(5 * MiB))
    with httpx.Client(base_url=web_cluster.url, timeout=60) as c:
        username = f"controls-{uuid.uuid4().hex[:8]}"
        auth = bearer(signup_and_login(c, username))
        r = c.put("/api/v1/files/content", headers=auth, params={"path": "/old.txt"},
                  content=b"old")
        assert r.status_code == 201, r.text
        assert c.delete("/api/v1/files", headers=auth,
                        params={"path": "/old.txt"}).status_code == 200
        log_in(d, web_cluster.url, username)
        try:
            network(d, offline=True)
            wait(d).until(lambda _: "You are offline" in d.find_element(By.ID, "toasts").text)
            pick(d, first)
            pick(d, second)
            wait(d, 60).until(lambda _: waiting(d, "/first.bin") and waiting(d, "/second.bin"))
            click(d, "Cancel second.bin")
            wait(d).until(lambda _: "cancelled" in upload_states(d).get("/second.bin", ""))
        finally:
            network(d, offline=False)
            d.execute_cdp_cmd("Network.disable", {})
        wait(d).until(lambda _: "You are offline" not in d.find_element(By.ID, "toasts").text)
        wait_uploaded(d, "/first.bin")
        got = c.get("/api/v1/files/content", headers=auth, params={"path": "/first.bin"})
        assert hashlib.sha256(got.content).digest() == hashlib.sha256(first.read_bytes()).digest()
        wait(d).until(lambda _: rows(d) == ["first.bin"])
        assert "cancelled" in upload_states(d)["/second.bin"]
        assert c.get("/api/v1/files/metadata", headers=auth,
                     params={"path": "/second.bin"}).status_code == 404

        # Delete forever: asked first, then gone from the trash for good.
        d.find_element(By.LINK_TEXT, "Trash").click()
        trashed = wait(d).until(lambda _: d.find_element(By.XPATH, "//tr[@data-path='/old.txt']"))
        button(trashed, "Delete forever").click()
        dialog = wait(d).until(lambda _: d.find_element(By.CSS_SELECTOR, "dialog[open]"))
        assert "cannot be undone" in dialog.text
        button(dialog, "Delete forever").click()
        wait(d).until(lambda _: not d.find_elements(By.XPATH, "//tr[@data-path='/old.txt']"))
        assert c.get("/api/v1/trash", headers=auth).json()["entries"] == []
