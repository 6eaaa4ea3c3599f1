"""The API's docs render in a real browser with no other origin to reach: Swagger UI at
``/docs`` and ReDoc at ``/redoc`` show the API's title from the vendored bundles."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser.conftest import wait
from tests.harness import TestCluster


def test_swagger_ui_and_redoc_render_offline(browser: WebDriver,
                                             web_cluster: TestCluster) -> None:
    browser.get(web_cluster.url + "/docs")
    wait(browser).until(lambda d: "Mini-Dropbox" in " ".join(
        e.text for e in d.find_elements(By.CSS_SELECTOR, ".swagger-ui .info .title")))
    assert browser.find_elements(By.CSS_SELECTOR, ".opblock")  # the operations are listed
    browser.get(web_cluster.url + "/redoc")
    wait(browser).until(lambda d: "Mini-Dropbox" in " ".join(
        e.text for e in d.find_elements(By.CSS_SELECTOR, "h1")))
    # ReDoc lists the operations in its side menu once the schema is parsed.
    wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "li[data-item-id]"))
