"""The owner deleting a shared folder in the web app (a real Chromium): it goes to her trash,
and the page says that it was shared and who lost it."""

from __future__ import annotations

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser.conftest import (  # noqa: F401 - pytest fixtures, used by name
    browser,
    button,
    downloads,
    rows,
    select,
    shared_chromium,
    sign_up,
    wait,
    web_cluster,
)
from tests.conftest import PASSWORD, bearer, signup_and_login
from tests.harness import TestCluster


def test_deleting_a_shared_folder_in_the_web_app(web_cluster: TestCluster,  # noqa: F811
                                                 browser: WebDriver) -> None:  # noqa: F811
    url = web_cluster.url
    owner = sign_up(browser, url, "web-owner")
    with httpx.Client(base_url=url, timeout=60) as anon:
        member_tokens = signup_and_login(anon, f"{owner}-m"[:32])
        r = anon.post("/api/v1/auth/login", json={"username": owner, "password": PASSWORD})
        assert r.status_code == 200, r.text
        owner_auth = bearer(r.json())
    with httpx.Client(base_url=url, timeout=60, headers=owner_auth) as o, \
            httpx.Client(base_url=url, timeout=60, headers=bearer(member_tokens)) as m:
        assert o.put("/api/v1/files/content", params={"path": "/Team/plan.txt"},
                     content=b"plan").status_code == 201
        assert o.post("/api/v1/shares/folders", json={
            "path": "/Team", "username": f"{owner}-m"[:32], "role": "editor"}).status_code == 201
        invite = m.get("/api/v1/shares/invites").json()["invites"][-1]["invite_id"]
        assert m.post(f"/api/v1/shares/invites/{invite}/accept", json={}).status_code == 201

        wait(browser).until(lambda _: "Team" in rows(browser))
        select(browser, "Team")
        button(browser, "Delete").click()
        toast = wait(browser).until(lambda d: [t.text for t in d.find_elements(
            By.CSS_SELECTOR, "#toasts .toast span") if "lost access" in t.text])
        assert "1 member(s) lost access" in toast[0], toast
        wait(browser).until(lambda _: "Team" not in rows(browser))
        assert m.get("/api/v1/files/list", params={"path": "/"}).json()["entries"] == []
        trash = o.get("/api/v1/trash").json()["entries"]
        assert "/Team" in [e["path"] for e in trash]
