"""Sharing in a real Chromium: the Share dialog makes a link; the link opened in a fresh
browser profile (no account, no cookie) shows the file in the app's look and downloads it;
the Shared view lists the link with its use and revokes it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec

from tests.browser.conftest import (
    button,
    chromium,
    field,
    quit_browser,
    row,
    sign_up,
    wait,
)
from tests.conftest import PASSWORD, bearer
from tests.harness import TestCluster


def test_share_a_file_by_link_and_download_it_elsewhere(
        browser: WebDriver, web_cluster: TestCluster, tmp_path: Path) -> None:
    username = sign_up(browser, web_cluster.url, "sharer")
    data = os.urandom(200_000)
    with httpx.Client(base_url=web_cluster.url, timeout=30) as http:
        tokens = http.post("/api/v1/auth/login", json={"username": username,
                                                       "password": PASSWORD}).json()
        r = http.put("/api/v1/files/content", headers=bearer(tokens),
                     params={"path": "/holiday.bin"}, content=data)
        assert r.status_code == 201, r.text
    browser.get(web_cluster.url + "/#/files/")
    browser.refresh()  # the file was put through the API meanwhile
    # Select the row (its size cell: the name itself opens the preview).
    row(browser, "holiday.bin").find_element(By.CSS_SELECTOR, ".size").click()
    button(browser, "Share").click()
    button(browser, "Create link").click()
    url = field(browser, "Link URL").get_attribute("value")
    assert url and url.startswith(web_cluster.url + "/s/")
    button(browser, "Done").click()

    downloads = tmp_path / "visitor-downloads"
    downloads.mkdir()
    visitor = chromium(downloads)  # a fresh profile: no session, no cookie
    try:
        visitor.get(url)
        wait(visitor).until(ec.visibility_of_element_located(
            (By.XPATH, "//h1[normalize-space(.)='holiday.bin']")))
        assert username not in visitor.page_source  # the owner is not shown
        styles = [el.get_attribute("href") for el in
                  visitor.find_elements(By.CSS_SELECTOR, "link[rel=stylesheet]")]
        assert any(s and s.endswith("/static/app.css") for s in styles)  # the app's look
        button(visitor, "Download").click()
        target = downloads / "holiday.bin"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
                target.exists() and target.stat().st_size == len(data)):
            time.sleep(0.1)
        assert target.read_bytes() == data
    finally:
        quit_browser(visitor)

    browser.get(web_cluster.url + "/#/shared/")
    table = wait(browser).until(ec.visibility_of_element_located(
        (By.XPATH, "//table[@aria-label='Links']")))
    wait(browser).until(lambda _: "/holiday.bin" in table.text and "1" in table.text)
    button(table, "Revoke").click()
    wait(browser).until(lambda _: "No links." in browser.find_element(
        By.XPATH, "//table[@aria-label='Links']").text)
    assert httpx.get(url, params={"dl": 1}).status_code == 404
