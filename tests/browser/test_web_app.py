"""The web app end to end in a real Chromium: sign up, upload (one file of 50 MiB), list,
preview, rename, move, delete and restore from the trash, restore an older version, download
byte-identical, see a change made with the CLI without a reload, log out and find nothing
private behind the back button. Screenshots of the main screens go to docs/screenshots/."""

from __future__ import annotations

import hashlib
import os
import re
import struct
import uuid
import zipfile
import zlib
from pathlib import Path

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec

from tests.browser.chromium import viewport
from tests.browser.conftest import (
    button,
    downloaded,
    field,
    log_in,
    open_entry,
    row,
    rows,
    screenshot,
    select,
    sign_up,
    wait,
    wait_uploaded,
)
from tests.conftest import PASSWORD, bearer, signup_and_login
from tests.e2e.test_cli_files import Cli
from tests.harness import TestCluster

MiB = 1024 * 1024


def png(width: int, height: int) -> bytes:
    """A small RGB gradient as a PNG file."""
    raw = b"".join(b"\x00" + bytes(v for x in range(width)
                                   for v in (x * 255 // width, y * 255 // height, 160))
                   for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def upload(driver: WebDriver, *paths: Path) -> None:
    """Pick files with the Upload button's file input (what the file chooser fills in)."""
    picker = driver.find_element(By.CSS_SELECTOR, "input[data-role=upload-files]")
    picker.send_keys("\n".join(str(p) for p in paths))


# Reloads the page as soon as the chunks the server has taken hold more than ``arguments[0]``
# bytes, as if "Leave site?" had been answered (a capturing listener runs before the app's
# own). Counted from the chunk uploads' own answers, not from the progress bar: the panel is
# drawn five times a second, and on a fast machine the draw after half-way can be the one
# that shows the upload done, too late to interrupt it.
RELOAD_MIDWAY = """window.addEventListener('beforeunload',
        (e) => e.stopImmediatePropagation(), true);
    const enough = arguments[0];
    let stored = 0, reloading = false;
    const send = XMLHttpRequest.prototype.send;
    XMLHttpRequest.prototype.send = function (body) {
      const size = body ? (body.byteLength ?? body.size ?? 0) : 0;
      this.addEventListener('load', () => {
        if (this.status < 300 && this.responseURL.includes('/api/v1/chunks/')) {
          stored += size;
          if (stored > enough && !reloading) { reloading = true; location.reload(); }
        }
      });
      return send.call(this, body);
    };"""
BIG_PROGRESS = """const p = document.querySelector(".uploads li[data-path='/big.bin'] progress");
    return p ? p.value / p.max : 0;"""


def brightness(driver: WebDriver, css: str) -> float:
    """The background of the first element matching ``css``, from 0 (black) to 1 (white)."""
    color: str = driver.execute_script(
        "return getComputedStyle(document.querySelector(arguments[0])).backgroundColor", css)
    red, green, blue = (float(v) for v in re.findall(r"[\d.]+", color)[:3])  # rgb(r, g, b)
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


def chunk_bytes_received(cluster: TestCluster) -> float:
    """Request bytes the API has read on the chunk upload route, from its /metrics."""
    text = httpx.get(f"{cluster.url}/metrics", timeout=30).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("minidropbox_http_received_bytes_total{")
               and 'route="/api/v1/chunks/{chunk_hash}"' in line)


def open_dialog(driver: WebDriver) -> object:
    return wait(driver).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "dialog[open]")))


def dialog_closed(driver: WebDriver) -> None:
    wait(driver).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "dialog[open]"))


def test_the_whole_product_in_a_browser(web_cluster: TestCluster, browser: WebDriver,
                                        downloads: Path, tmp_path: Path) -> None:
    d = browser
    username = sign_up(d, web_cluster.url)

    # Upload three files: two small ones, then one of 50 MiB. Past half of it, the page
    # reloads itself (a hook in the page, so that it happens mid-upload however fast the
    # machine): the upload is listed as interrupted, and picking the file again sends only
    # what the server lacks. (The small ones are done first: picked with the big one, they
    # could finish after it, and then no reload would come.)
    photo = tmp_path / "photo.png"
    photo.write_bytes(png(320, 200))
    notes = tmp_path / "notes.txt"
    notes.write_text("Hello from Mini-Dropbox\n<b>not bold</b>\n")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(50 * MiB))
    upload(d, photo, notes)
    wait_uploaded(d, "/photo.png", "/notes.txt")
    received_before = chunk_bytes_received(web_cluster)
    d.execute_script(RELOAD_MIDWAY, big.stat().st_size // 2)
    upload(d, big)
    def resumable(_: object) -> WebElement | bool:
        found = d.find_elements(By.CSS_SELECTOR,
                                "input[data-role=resume][data-path='/big.bin']")
        return found[0] if found else False
    wait(d, 60, poll=0.02).until(
        lambda _: d.execute_script(BIG_PROGRESS) > 0.2 or resumable(_))
    screenshot(d, "upload")  # mid-upload, unless the reload came first
    resume = wait(d, 60).until(resumable)
    button(d, "Resume big.bin")
    resume.send_keys(str(big))
    wait_uploaded(d, "/big.bin")
    resent = chunk_bytes_received(web_cluster) - received_before - big.stat().st_size
    assert resent < 0.5 * big.stat().st_size, f"{resent} bytes sent twice"
    wait(d).until(lambda _: sorted(rows(d)) == ["big.bin", "notes.txt", "photo.png"])
    assert "52.4 MB" in row(d, "big.bin").text  # 50 MiB in decimal units

    # Preview an image and a text file.
    open_entry(d, "photo.png")
    dialog = open_dialog(d)
    image = dialog.find_element(By.CSS_SELECTOR, "img.preview-image")
    wait(d).until(lambda _: d.execute_script("return arguments[0].naturalWidth", image) == 320)
    button(d, "Close").click()
    dialog_closed(d)
    open_entry(d, "notes.txt")
    pre = wait(d).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "pre.preview-text")))
    wait(d).until(lambda _: "Hello from Mini-Dropbox" in pre.text)
    assert "<b>not bold</b>" in pre.text  # text, not markup
    button(d, "Close").click()
    dialog_closed(d)

    # Rename, then a new folder, then move into it.
    select(d, "notes.txt")
    button(d, "Rename").click()
    dialog = open_dialog(d)
    name_field = field(d, "New name")
    name_field.send_keys(Keys.CONTROL, "a")
    name_field.send_keys("readme.txt")
    button(dialog, "Rename").click()
    wait(d).until(lambda _: "readme.txt" in rows(d) and "notes.txt" not in rows(d))
    button(d, "New folder").click()
    open_dialog(d)
    field(d, "Folder name").send_keys("Archive", Keys.ENTER)
    wait(d).until(lambda _: "Archive" in rows(d))
    select(d, "readme.txt")
    button(d, "Move").click()
    dialog = open_dialog(d)
    button(dialog, "Archive").click()
    wait(d).until(lambda _: "/Archive" in dialog.find_element(By.CSS_SELECTOR, ".where").text)
    button(dialog, "Move here").click()
    wait(d).until(lambda _: "readme.txt" not in rows(d))
    open_entry(d, "Archive")
    wait(d).until(lambda _: rows(d) == ["readme.txt"])
    d.back()
    wait(d).until(lambda _: "photo.png" in rows(d))

    # Delete to the trash, restore from it.
    select(d, "photo.png")
    button(d, "Delete").click()
    wait(d).until(lambda _: "photo.png" not in rows(d))
    d.find_element(By.LINK_TEXT, "Trash").click()
    trashed = wait(d).until(ec.visibility_of_element_located(
        (By.XPATH, "//tr[@data-path='/photo.png']")))
    screenshot(d, "trash")
    button(trashed, "Restore").click()
    wait(d).until(lambda _: not d.find_elements(By.XPATH, "//tr[@data-path='/photo.png']"))
    d.find_element(By.LINK_TEXT, "Files").click()
    wait(d).until(lambda _: "photo.png" in rows(d))

    # A second version of the photo, then restore the first.
    edited = tmp_path / "v2" / "photo.png"
    edited.parent.mkdir()
    edited.write_bytes(png(160, 100))
    upload(d, edited)
    wait_uploaded(d, "/photo.png")  # the jobs before the reload are gone from the panel
    select(d, "photo.png")
    button(d, "Versions").click()
    dialog = open_dialog(d)
    first = wait(d).until(ec.visibility_of_element_located((By.XPATH, "//tr[@data-version='1']")))
    screenshot(d, "versions")
    button(first, "Restore").click()
    wait(d).until(lambda _: d.find_elements(By.XPATH, "//tr[@data-version='3']"))
    button(dialog, "Close").click()
    dialog_closed(d)

    # A whole folder picked with "Upload folder", then downloaded as one zip.
    album = tmp_path / "Album"
    (album / "2024").mkdir(parents=True)
    (album / "a.txt").write_text("first")
    (album / "2024" / "b.txt").write_text("second")
    d.find_element(By.CSS_SELECTOR, "input[data-role=upload-folder]").send_keys(str(album))
    wait_uploaded(d, "/Album/a.txt", "/Album/2024/b.txt")
    wait(d).until(lambda _: "Album" in rows(d))
    select(d, "Album")
    button(d, "Download").click()
    with zipfile.ZipFile(downloaded(downloads, "Album.zip")) as archive:
        assert archive.read("Album/a.txt") == b"first"
        assert archive.read("Album/2024/b.txt") == b"second"

    # Download: the restored photo and the 50 MiB file, byte-identical.
    select(d, "photo.png")
    button(d, "Download").click()
    assert downloaded(downloads, "photo.png").read_bytes() == photo.read_bytes()
    select(d, "big.bin")
    button(d, "Download").click()
    got = downloaded(downloads, "big.bin")
    assert hashlib.sha256(got.read_bytes()).digest() == hashlib.sha256(big.read_bytes()).digest()

    # A change made with the CLI shows up in the open page, without a reload.
    marker = d.execute_script("window.__sameDocument = true; return 1")
    cli = Cli(web_cluster.url, tmp_path / "cli")
    cli.run("--server", web_cluster.url, "login", username, "--password-stdin",
            input=PASSWORD + "\n")
    from_cli = tmp_path / "from-cli.txt"
    from_cli.write_text("made in a terminal\n")
    cli.run("put", from_cli, "/")
    wait(d, 30).until(lambda _: "from-cli.txt" in rows(d))
    assert marker == 1 and d.execute_script("return window.__sameDocument") is True
    screenshot(d, "browser")

    assert "of 1.1 GB used" in d.find_element(By.CSS_SELECTOR, ".quota").text

    # Phone width.
    viewport(d, 360, 740, mobile=True)
    wait(d).until(lambda _: "from-cli.txt" in rows(d))
    screenshot(d, "phone")
    viewport(d, 1280, 800)

    # Dark mode, when the system asks for it.
    d.execute_cdp_cmd("Emulation.setEmulatedMedia", {
        "features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    wait(d).until(lambda _: brightness(d, "body") < 0.2 and brightness(d, ".list") < 0.2)
    screenshot(d, "dark")
    d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    wait(d).until(lambda _: brightness(d, "body") > 0.8)

    # Log out; the back button shows nothing private.
    button(d, "Log out").click()
    field(d, "Username")
    d.back()
    field(d, "Username")
    page = d.page_source
    for private in ("photo.png", "big.bin", "Archive", "from-cli.txt", username):
        assert private not in page, private
    assert d.execute_script("return document.cookie") == ""


def test_a_folder_of_10000_entries(web_cluster: TestCluster, browser: WebDriver) -> None:
    """Listed whole, drawn a screenful at a time, and walked with the keyboard."""
    d = browser
    with httpx.Client(base_url=web_cluster.url, timeout=120) as c:
        username = f"many-{uuid.uuid4().hex[:8]}"
        auth = bearer(signup_and_login(c, username))
        for batch in range(10):
            r = c.post("/api/v1/files/commit_batch", headers=auth, json={"commits": [
                {"path": f"/Many/file-{batch * 1000 + i:05}.txt", "size": 0, "chunks": [],
                 "parent_version": None} for i in range(1000)]})
            assert r.status_code == 200 and all(x["ok"] for x in r.json()["results"]), r.text
    log_in(d, web_cluster.url, username, "/#/files/Many")
    wait(d, 60).until(lambda _: d.find_element(By.CSS_SELECTOR, ".status").text
                      == "10000 items")
    assert len(d.find_elements(By.CSS_SELECTOR, "[role=option]")) < 60
    listbox = d.find_element(By.CSS_SELECTOR, "[role=listbox]")
    listbox.send_keys(Keys.END)
    wait(d).until(lambda _: d.find_element(By.CSS_SELECTOR, ".status").text
                  == "1 selected of 10000 items")
    assert rows(d)[-1] == "file-09999.txt"
    active = listbox.get_attribute("aria-activedescendant")
    assert d.find_element(By.ID, active).get_attribute("aria-selected") == "true"
    listbox.send_keys(Keys.SHIFT, Keys.PAGE_UP)
    selected = int(d.find_element(By.CSS_SELECTOR, ".status").text.split()[0])
    assert 5 < selected < 30, selected
    assert len(d.find_elements(By.CSS_SELECTOR, "[role=option]")) < 60
