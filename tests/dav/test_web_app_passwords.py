"""The web app's WebDAV page (real Chromium): create an app password, see it once, use it,
revoke it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec

from tests.browser.conftest import button, chromium, field, quit_browser, sign_up, wait
from tests.harness import TestCluster


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    driver = chromium(tmp_path)
    try:
        yield driver
    finally:
        quit_browser(driver)


def _propfind(base: str, user: str, password: str) -> int:
    return httpx.request("PROPFIND", f"{base}/dav/", auth=(user, password),
                         headers={"Depth": "0"}, timeout=30).status_code


def test_create_use_and_revoke_an_app_password(dav_cluster: TestCluster,
                                               browser: WebDriver) -> None:
    base = dav_cluster.url
    username = sign_up(browser, base, "webdav")
    browser.get(base + "/#/webdav/")
    assert f"{base}/dav/" in wait(browser).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, ".trash-view"))).text
    field(browser, "Device name").send_keys("phone")
    button(browser, "Create app password").click()
    secret = wait(browser).until(ec.visibility_of_element_located(
        (By.CSS_SELECTOR, "dialog code.app-password"))).text
    assert _propfind(base, username, secret) == 207
    button(browser, "Done").click()
    wait(browser).until(ec.visibility_of_element_located(
        (By.CSS_SELECTOR, "tr[data-name='phone']")))
    assert secret not in browser.page_source  # shown once, never listed
    button(browser, "Revoke phone").click()
    wait(browser).until(ec.invisibility_of_element_located(
        (By.CSS_SELECTOR, "tr[data-name='phone']")))
    assert _propfind(base, username, secret) == 401
