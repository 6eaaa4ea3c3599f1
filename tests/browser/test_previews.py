"""Previews beyond images and text, in a real Chromium: audio in the preview knows its length
and seeks to near its end (media seeks are byte-range requests), and a PDF opens in the
preview's frame from the file route, as a PDF that cannot script the app."""

from __future__ import annotations

import struct
import uuid

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec

from tests.browser.conftest import button, log_in, open_entry, wait
from tests.conftest import bearer, signup_and_login
from tests.harness import TestCluster

RATE = 8000  # samples a second, 8-bit mono
SECONDS = 40

PDF = b"""%PDF-1.4
1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj
2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj
3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] >> endobj
trailer << /Root 1 0 R >>
%%EOF
"""


def wav(seconds: int) -> bytes:
    """A quiet 8-bit mono WAV file (a slow sawtooth)."""
    samples = bytes(128 + (i // 40) % 16 for i in range(RATE * seconds))
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(samples), b"WAVE", b"fmt ",
                         16, 1, 1, RATE, RATE, 1, 8, b"data", len(samples))
    return header + samples


def test_audio_seeks_and_a_pdf_opens(web_cluster: TestCluster, browser: WebDriver) -> None:
    d = browser
    with httpx.Client(base_url=web_cluster.url, timeout=60) as c:
        username = f"preview-{uuid.uuid4().hex[:8]}"
        auth = bearer(signup_and_login(c, username))
        for path, data in (("/tone.wav", wav(SECONDS)), ("/doc.pdf", PDF)):
            r = c.put("/api/v1/files/content", headers=auth, params={"path": path},
                      content=data)
            assert r.status_code == 201, r.text
    log_in(d, web_cluster.url, username)

    open_entry(d, "tone.wav")
    audio = wait(d).until(ec.presence_of_element_located((By.CSS_SELECTOR, "dialog[open] audio")))
    wait(d).until(lambda _: d.execute_script("return arguments[0].readyState", audio) >= 1)
    assert abs(d.execute_script("return arguments[0].duration", audio) - SECONDS) < 0.5
    d.execute_script("arguments[0].currentTime = arguments[1]", audio, SECONDS - 5)
    wait(d).until(lambda _: d.execute_script(
        "const a = arguments[0]; return !a.seeking && a.currentTime >= arguments[1] - 0.1"
        " && a.readyState >= 2", audio, SECONDS - 5))
    assert d.execute_script("return arguments[0].error", audio) is None
    # The byte ranges a seek asks for are served as such.
    part = d.execute_script("""return fetch(arguments[0].currentSrc,
        {headers: {Range: 'bytes=1000-1999'}}).then(async (r) => [r.status,
        r.headers.get('content-range'), (await r.arrayBuffer()).byteLength]);""", audio)
    assert part == [206, f"bytes 1000-1999/{len(wav(SECONDS))}", 1000], part
    button(d, "Close").click()

    open_entry(d, "doc.pdf")
    frame = wait(d).until(ec.presence_of_element_located(
        (By.CSS_SELECTOR, "dialog[open] iframe.preview-pdf")))
    source = frame.get_attribute("src")
    assert source and "/api/v1/files/view?path=%2Fdoc.pdf" in source
    # What the frame loads: the PDF, as a PDF, inline, never able to script the app.
    served = d.execute_script("""return fetch(arguments[0]).then((r) => [r.status,
        r.headers.get('content-type'), r.headers.get('content-disposition'),
        r.headers.get('content-security-policy')]);""", source)
    assert served[0] == 200 and served[1] == "application/pdf", served
    assert served[2].startswith("inline") and "script-src" not in served[3], served
    button(d, "Close").click()
