"""Debian's Chromium under chromedriver, headless, with a fresh profile: for the web app's
tests and for ``make bench``'s browser upload."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# The upload panel's rows, by path: class (queued/uploading/done/failed/...) and text.
UPLOAD_STATES = """return Object.fromEntries([...document.querySelectorAll('.uploads li.upload')]
    .map((li) => [li.dataset.path, li.className + ' ' + li.textContent]));"""


class ChromiumMissing(RuntimeError):
    pass


def chromium(download_dir: Path, width: int = 1280, height: int = 800) -> WebDriver:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        raise ChromiumMissing("Debian's chromium and chromium-driver are needed "
                              "(make test installs them)")
    profile = tempfile.mkdtemp(prefix="minidropbox-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage", "--force-prefers-reduced-motion",
                 f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(download_dir), "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.profile_dir = profile  # type: ignore[attr-defined]
    driver.set_script_timeout(60)
    viewport(driver, width, height)
    return driver


def viewport(driver: WebDriver, width: int, height: int, mobile: bool = False) -> None:
    """The page's size, exactly (a headless window's is the screen's, less its frame)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})


def quit_browser(driver: WebDriver) -> None:
    driver.quit()
    shutil.rmtree(driver.profile_dir, ignore_errors=True)  # type: ignore[attr-defined]


def upload_states(driver: WebDriver) -> dict[str, str]:
    states: dict[str, str] = driver.execute_script(UPLOAD_STATES)
    return states
