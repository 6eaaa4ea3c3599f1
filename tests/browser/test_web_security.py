"""Hostile names and hostile pages against the web app, in a real Chromium: names carrying
HTML or script render as text everywhere; another site can neither post to the API with the
session cookie nor frame the app; a user's own files cannot script it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from selenium.common.exceptions import NoAlertPresentException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec

from tests.browser.conftest import button, field, log_in, open_entry, rows, select, wait
from tests.conftest import bearer, signup_and_login
from tests.harness import TestCluster, free_port
from tests.security.routes import upload_small

# Each would set window.__xss (or raise an alert) if it were ever parsed as HTML.
HOSTILE = [
    '<img src=x onerror="window.__xss=1;alert(1)">.txt',
    "\"quoted' & <b>bold.txt",
]
# A right-to-left override would show "\u202etxt.exe" as "exe.txt". Paths refuse it
# (core/paths.py); a device name is free text, and the app shows it spelled out.
RTL_OVERRIDE = "\u202etxt.exe"
RTL_SHOWN = "[U+202E]txt.exe"
HOSTILE_FOLDER = '<svg onload="window.__xss=2">'
XSS_STATE = """return {xss: window.__xss === undefined ? null : window.__xss,
    injected: document.querySelectorAll('img[src="x"], b, svg[onload]').length};"""


class AttackerSite:
    """A page on another site (``localhost`` is another site than ``127.0.0.1``)."""

    def __init__(self) -> None:
        self.pages: dict[str, bytes] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path, b"not found")
                self.send_response(200 if self.path in pages else 404)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://localhost:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def attacker() -> Iterator[AttackerSite]:
    site = AttackerSite()
    try:
        yield site
    finally:
        site.close()


def assert_no_script_ran(driver: WebDriver) -> None:
    state = driver.execute_script(XSS_STATE)
    assert state == {"xss": None, "injected": 0}, state
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018 - raises when there is none


def test_hostile_names_render_as_text_everywhere(web_cluster: TestCluster,
                                                 browser: WebDriver) -> None:
    d = browser
    with httpx.Client(base_url=web_cluster.url, timeout=60) as c:
        username = f"names-{uuid.uuid4().hex[:8]}"
        auth = bearer(signup_and_login(c, username))
        for name in HOSTILE:
            upload_small(c, auth, f"/{name}", b"first")
        upload_small(c, auth, f"/{HOSTILE[0]}", b"second", parent=1, device=HOSTILE[1])
        upload_small(c, auth, f"/{HOSTILE[0]}", b"third", parent=2, device=RTL_OVERRIDE)
        with pytest.raises(AssertionError, match="invalid_path"):
            upload_small(c, auth, f"/{RTL_OVERRIDE}", b"refused")
        upload_small(c, auth, f"/{HOSTILE_FOLDER}/{HOSTILE[1]}", b"inside")
        upload_small(c, auth, f"/{HOSTILE_FOLDER}/gone-{HOSTILE[0]}", b"trash me")
        assert c.delete("/api/v1/files", headers=auth, params={
            "path": f"/{HOSTILE_FOLDER}/gone-{HOSTILE[0]}"}).status_code == 200

    log_in(d, web_cluster.url, username)
    wait(d).until(lambda _: sorted(rows(d)) == sorted([HOSTILE_FOLDER, *HOSTILE]))
    assert_no_script_ran(d)

    # The versions dialog (hostile device names too) and the preview's title.
    select(d, HOSTILE[0])
    button(d, "Versions").click()
    dialog = wait(d).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "dialog[open]")))
    wait(d).until(lambda _: all(text in dialog.text for text in (*HOSTILE, RTL_SHOWN)))
    assert "\u202e" not in dialog.text
    assert_no_script_ran(d)
    button(dialog, "Close").click()
    open_entry(d, HOSTILE[1])
    dialog = wait(d).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "dialog[open]")))
    assert dialog.find_element(By.TAG_NAME, "h2").text == HOSTILE[1]
    button(dialog, "Close").click()

    # Inside the hostile folder: breadcrumbs and rows; then search and the trash.
    open_entry(d, HOSTILE_FOLDER)
    wait(d).until(lambda _: rows(d) == [HOSTILE[1]])
    crumbs = d.find_element(By.CSS_SELECTOR, "nav.crumbs").text
    assert HOSTILE_FOLDER in crumbs
    assert d.title.startswith(HOSTILE_FOLDER)
    assert_no_script_ran(d)
    d.find_element(By.LINK_TEXT, "Home").click()
    # The search box of the home folder's view, not the one being replaced.
    wait(d).until(lambda _: sorted(rows(d)) == sorted([HOSTILE_FOLDER, *HOSTILE]))
    field(d, "Search").send_keys("quoted", Keys.ENTER)
    wait(d).until(lambda _: rows(d) == [HOSTILE[1], HOSTILE[1]])
    assert_no_script_ran(d)
    d.find_element(By.LINK_TEXT, "Trash").click()
    wait(d).until(lambda _: f"gone-{HOSTILE[0]}" in d.find_element(By.CSS_SELECTOR, "table").text)
    assert_no_script_ran(d)


def test_other_sites_cannot_post_or_frame(web_cluster: TestCluster, browser: WebDriver,
                                          attacker: AttackerSite) -> None:
    d = browser
    with httpx.Client(base_url=web_cluster.url, timeout=60) as c:
        username = f"csrf-{uuid.uuid4().hex[:8]}"
        auth = bearer(signup_and_login(c, username))
        log_in(d, web_cluster.url, username)
        # A form on another site posting JSON-looking text with the victim's cookie, and a
        # frame of the app (clickjacking).
        attacker.pages["/post"] = f"""<!doctype html><form id=f method=POST
            action="{web_cluster.url}/api/v1/files/folder" enctype="text/plain">
            <input name='{{"path":"/pwned","x":"' value='"}}'></form>
            <script>document.getElementById('f').submit()</script>""".encode()
        attacker.pages["/frame"] = f"""<!doctype html>
            <iframe id=app src="{web_cluster.url}/" width=800 height=600></iframe>""".encode()
        d.get(attacker.url + "/post")
        wait(d).until(lambda _: d.current_url.startswith(web_cluster.url))
        assert "pwned" not in c.get("/api/v1/files/list", headers=auth).text
        assert d.find_element(By.TAG_NAME, "body").text.count("error") >= 1

        d.get(attacker.url + "/frame")
        frame = wait(d).until(ec.presence_of_element_located((By.ID, "app")))
        d.switch_to.frame(frame)
        try:
            assert not d.find_elements(By.ID, "username")
            assert not d.find_elements(By.CSS_SELECTOR, "button")
        finally:
            d.switch_to.default_content()


def test_users_files_cannot_script_the_app(web_cluster: TestCluster,
                                           browser: WebDriver) -> None:
    d = browser
    with httpx.Client(base_url=web_cluster.url, timeout=60) as c:
        username = f"content-{uuid.uuid4().hex[:8]}"
        auth = bearer(signup_and_login(c, username))
        upload_small(c, auth, "/page.html",
                     b"<h1>hi</h1><script>window.__xss=3; top.__xss=3;</script>")
        upload_small(c, auth, "/pic.svg", b'<svg xmlns="http://www.w3.org/2000/svg" '
                     b'onload="top.__xss=4"><script>top.__xss=5</script>'
                     b'<rect width="10" height="10"/></svg>')
    log_in(d, web_cluster.url, username)
    # Previewed in the app: the SVG as an image, the HTML as its source text.
    open_entry(d, "pic.svg")
    wait(d).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "img.preview-image")))
    button(d, "Close").click()
    open_entry(d, "page.html")
    pre = wait(d).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "pre.preview-text")))
    wait(d).until(lambda _: "<script>" in pre.text)
    button(d, "Close").click()
    assert_no_script_ran(d)
    # Opened on their own (a link, a new tab): text, and a sandboxed SVG whose script is off.
    d.get(f"{web_cluster.url}/api/v1/files/view?path=/page.html")
    assert "<script>" in d.find_element(By.TAG_NAME, "body").text
    d.get(f"{web_cluster.url}/api/v1/files/view?path=/pic.svg")
    assert d.execute_script("return window.__xss === undefined")
    # A unique origin: even the page's own cookies are out of its reach.
    with pytest.raises(WebDriverException, match="sandboxed"):
        d.execute_script("return document.cookie")
