"""A real Chromium (Debian's ``chromium`` + ``chromium-driver``) driving the web app of a real
cluster. One cluster and one Chromium per test process serve all its browser tests; each test
starts as a fresh visitor (no cookie, nothing stored, a desktop-sized page) and makes its own
account."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.wait import WebDriverWait

from tests.browser.chromium import (
    ChromiumMissing,
    chromium,
    quit_browser,
    upload_states,
    viewport,
)
from tests.conftest import PASSWORD
from tests.harness import TestCluster

# `make screenshots` refreshes the README's pictures; otherwise they go to a temp folder, so
# a test run leaves the checkout clean.
SCREENSHOTS = Path(os.environ.get("MINIDROPBOX_SCREENSHOTS")
                   or tempfile.gettempdir() + "/minidropbox-screenshots")
WAIT = 20  # seconds: generous, the machine may be busy
QUOTA = 1024 ** 3


@pytest.fixture(scope="session")
def web_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    # A quota, so that the page shows storage used of total.
    with TestCluster(tmp_path_factory.mktemp("web"), nodes=2, replicas=2,
                     env={"quota_bytes": QUOTA}) as c:
        yield c


@pytest.fixture(scope="session")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="session")
def shared_chromium(downloads: Path) -> Iterator[WebDriver]:
    try:
        driver = chromium(downloads)
    except ChromiumMissing as exc:
        pytest.fail(str(exc))
    try:
        yield driver
    finally:
        quit_browser(driver)


@pytest.fixture
def browser(shared_chromium: WebDriver, web_cluster: TestCluster) -> WebDriver:
    """The shared Chromium as a fresh visitor of the app's origin: whatever the test before
    left (a session cookie, interrupted uploads in localStorage, a phone-sized page, an open
    "Leave site?" prompt) is gone."""
    forget_everything(shared_chromium, web_cluster.url)
    return shared_chromium


def forget_everything(driver: WebDriver, base_url: str) -> None:
    with contextlib.suppress(NoAlertPresentException):
        driver.switch_to.alert.accept()
    # A page of the origin that runs no app code, to reach the origin's cookie and storage.
    driver.get(base_url + "/static/icons/logo.svg")
    with contextlib.suppress(NoAlertPresentException):
        driver.switch_to.alert.accept()  # "Leave site?" from an upload still running
        driver.get(base_url + "/static/icons/logo.svg")
    driver.delete_all_cookies()
    driver.execute_script("localStorage.clear(); sessionStorage.clear();")
    viewport(driver, 1280, 800)
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})  # light mode
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {  # online, unthrottled
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    driver.execute_cdp_cmd("Network.disable", {})


def wait(driver: WebDriver, timeout: float = WAIT,
         poll: float = 0.1) -> WebDriverWait:  # type: ignore[type-arg]
    return WebDriverWait(driver, timeout, poll_frequency=poll,
                         ignored_exceptions=(StaleElementReferenceException,))


def button(driver: WebDriver | WebElement, name: str) -> WebElement:
    """The visible, enabled button whose accessible name (text or aria-label) is ``name``."""
    xpath = (f".//button[(normalize-space(.)={_lit(name)} and not(@aria-label)) "
             f"or @aria-label={_lit(name)}] | .//a[normalize-space(.)={_lit(name)}]")
    def find(_: object) -> WebElement | bool:
        for el in driver.find_elements(By.XPATH, xpath):
            if el.is_displayed() and el.is_enabled():
                return el
        return False
    return wait(driver if isinstance(driver, WebDriver) else driver.parent).until(find)


def field(driver: WebDriver, label: str) -> WebElement:
    """The input labelled ``label`` (a <label for> or aria-label)."""
    return wait(driver).until(ec.visibility_of_element_located((By.XPATH,
        f"//input[@aria-label={_lit(label)}] | "
        f"//input[@id=//label[normalize-space(.)={_lit(label)}]/@for]")))


def row(driver: WebDriver, name: str) -> WebElement:
    """The list row of the entry called ``name`` in the open folder."""
    return wait(driver).until(ec.visibility_of_element_located((By.XPATH,
        f"//div[@role='option'][.//button[contains(@class,'name')][normalize-space(.)={_lit(name)}]]")))


def select(driver: WebDriver, name: str) -> None:
    """Click the row's icon (the name would open it). Rows are redrawn when the folder
    changes (live updates), so a click on a row that just went stale is made again."""
    click_in_row(driver, name, "img.icon")


def open_entry(driver: WebDriver, name: str) -> None:
    click_in_row(driver, name, "button.name")


def click_in_row(driver: WebDriver, name: str, css: str) -> None:
    def click(_: object) -> bool:
        row(driver, name).find_element(By.CSS_SELECTOR, css).click()
        return True
    wait(driver).until(click)


def rows(driver: WebDriver) -> list[str]:
    return [el.text for el in driver.find_elements(
        By.CSS_SELECTOR, "[role=option] button.name")]


def _lit(text: str) -> str:
    """An XPath string literal for any text (quotes included)."""
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    return "concat(" + ", \"'\", ".join(f"'{part}'" for part in text.split("'")) + ")"


def sign_up(driver: WebDriver, base_url: str, prefix: str = "web") -> str:
    """Sign up a new account through the page; returns the username, logged in."""
    username = f"{prefix}-{uuid.uuid4().hex[:8]}"
    driver.get(base_url + "/")
    button(driver, "Sign up").click()
    field(driver, "Username").send_keys(username)
    field(driver, "Password").send_keys(PASSWORD)
    button(driver, "Sign up").click()
    wait(driver).until(ec.visibility_of_element_located((By.XPATH,
        "//button[normalize-space(.)='Log out']")))
    return username


def enable_network_domain(driver: WebDriver) -> None:
    """DevTools' network domain, for its connection emulation, without request bodies or
    response buffers in its events. While it is on, big uploads from the page stall the
    driver: turn it off again (``forget_everything`` does)."""
    driver.execute_cdp_cmd("Network.enable", {"maxPostDataSize": 0, "maxTotalBufferSize": 0,
                                              "maxResourceBufferSize": 0})


def click(driver: WebDriver, name: str) -> None:
    """Click the button ``name``, again if it was redrawn in between (the upload panel
    redraws itself five times a second)."""
    def clicked(_: object) -> bool:
        button(driver, name).click()
        return True
    wait(driver).until(clicked)


def log_in(driver: WebDriver, base_url: str, username: str, route: str = "/") -> None:
    """Log in through the page (the browser fixture has already dropped any session)."""
    driver.get(base_url + route)
    field(driver, "Username").send_keys(username)
    field(driver, "Password").send_keys(PASSWORD, Keys.ENTER)
    button(driver, "Log out")


def wait_uploaded(driver: WebDriver, *paths: str, timeout: float = 120) -> None:
    """Wait until the upload panel shows each of ``paths`` done (fail on any failure)."""
    def done(_: object) -> bool:
        states = upload_states(driver)
        failed = [s for s in states.values() if "failed" in s]
        assert not failed, failed
        return all("done" in states.get(p, "") for p in paths)
    wait(driver, timeout).until(done)


def downloaded(folder: Path, name: str, timeout: float = 120) -> Path:
    """The file ``name`` in the browser's download folder, once Chromium has finished it."""
    target = folder / name
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if target.exists() and not list(folder.glob("*.crdownload")):
            return target
        time.sleep(0.1)
    raise AssertionError(f"{name} was not downloaded: {os.listdir(folder)}")


def screenshot(driver: WebDriver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
