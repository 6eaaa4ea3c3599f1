"""The web app's upload: a big file picked in a real Chromium, sent by the page's script
through the chunk protocol (4 MiB pieces, hashed in the browser), next to the CLI's upload of
a file of the same size in the same run."""

from __future__ import annotations

import time

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.wait import WebDriverWait
from tests.browser.chromium import chromium, quit_browser, upload_states

from bench.scenarios import Context, Row, random_file
from bench.system import PASSWORD, User, timed

MiB = 1024 * 1024
UPLOAD_TIMEOUT = 3600.0


def browser_upload(ctx: Context) -> list[Row]:
    size = ctx.big_mib * MiB
    size_mb = size / 1e6
    web, cli = [], []
    for run in range(ctx.runs):
        name = f"web{run}"
        httpx.post(f"{ctx.system.url}/api/v1/auth/signup",
                   json={"username": name, "password": PASSWORD}, timeout=60).raise_for_status()
        big = random_file(ctx.workdir / "web-big.bin", size, seed=500 + run)
        driver = chromium(ctx.workdir / "web-downloads")
        try:
            driver.get(ctx.system.url + "/")
            wait = WebDriverWait(driver, 60)
            wait.until(ec.visibility_of_element_located((By.ID, "username"))).send_keys(name)
            driver.find_element(By.ID, "password").send_keys(PASSWORD, Keys.ENTER)
            picker = wait.until(ec.presence_of_element_located(
                (By.CSS_SELECTOR, "input[data-role=upload-files]")))
            started = time.perf_counter()
            picker.send_keys(str(big))
            while True:
                state = upload_states(driver).get("/web-big.bin", "upload queued")
                status = state.split()[1]  # the row's class: "upload <status>"
                if status == "done":
                    break
                if status == "failed":
                    raise RuntimeError(f"browser upload failed: {state}")
                if time.perf_counter() - started > UPLOAD_TIMEOUT:
                    raise RuntimeError("browser upload timed out")
                time.sleep(0.05)
            web.append(size_mb / (time.perf_counter() - started))
        finally:
            quit_browser(driver)
            big.unlink()
        other = random_file(ctx.workdir / "web-cli.bin", size, seed=600 + run)
        user = User(ctx.workdir, f"webcli{run}", ctx.system.url)
        cli.append(size_mb / timed(user.run, "put", str(other), "/web-cli.bin"))
        other.unlink()
    return [Row(f"upload {ctx.big_mib} MiB from the web app (Chromium, 4 MiB pieces)", "MB/s",
                web, "the CLI's put, same size, same run", cli, "≥ 0.5 × CLI")]


WEB_SCENARIOS = {"web": browser_upload}
