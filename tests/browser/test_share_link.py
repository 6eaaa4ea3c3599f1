"""Sharing in a real Chromium: the Share dialog makes a link; the link opened without an
account (no cookie, nothing stored) shows the file in the app's look and downloads it; the
Shared view lists the link with its use and revokes it."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec

from tests.browser.conftest import (
    button,
    downloaded,
    field,
    forget_everything,
    log_in,
    row,
    sign_up,
    wait,
)
from tests.conftest import PASSWORD, bearer
from tests.harness import TestCluster


def test_share_a_file_by_link_and_download_it_elsewhere(
        browser: WebDriver, web_cluster: TestCluster, downloads: Path) -> None:
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

    # The link opened by someone without an account: the same browser with no cookie and
    # nothing stored for the app's origin.
    forget_everything(browser, web_cluster.url)
    browser.get(url)
    wait(browser).until(ec.visibility_of_element_located(
        (By.XPATH, "//h1[normalize-space(.)='holiday.bin']")))
    assert username not in browser.page_source  # the owner is not shown
    styles = [el.get_attribute("href") for el in
              browser.find_elements(By.CSS_SELECTOR, "link[rel=stylesheet]")]
    assert any(s and s.endswith("/static/app.css") for s in styles)  # the app's look
    button(browser, "Download").click()
    assert downloaded(downloads, "holiday.bin").read_bytes() == data

    log_in(browser, web_cluster.url, username)
    browser.get(web_cluster.url + "/#/shared/")
    table = wait(browser).until(ec.visibility_of_element_located(
        (By.XPATH, "//table[@aria-label='Links']")))
    wait(browser).until(lambda _: "/holiday.bin" in table.text and "1" in table.text)
    button(table, "Revoke").click()
    wait(browser).until(lambda _: "No links." in browser.find_element(
        By.XPATH, "//table[@aria-label='Links']").text)
    assert httpx.get(url, params={"dl": 1}).status_code == 404
