"""GET /metrics on the API and on the storage nodes, scraped from real processes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect as ws_connect

from tests.conftest import bearer, signup_and_login
from tests.harness import TestCluster

TOKEN = "metrics-scrape-token"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str, headers: dict[str, str]) -> Samples:
    r = httpx.get(url + "/metrics", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def wait_for(check: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


@pytest.fixture
def small_cluster(tmp_path: Path) -> Iterator[TestCluster]:
    c = TestCluster(tmp_path, nodes=2, replicas=2,
                    env={"metrics_token": TOKEN, "metrics_refresh": 0})
    try:
        yield c
    finally:
        c.stop()


def test_api_and_node_metrics(small_cluster: TestCluster) -> None:
    c = small_cluster
    scraper = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(c.url + "/metrics").status_code == 401
    assert httpx.get(c.url + "/metrics", headers={"Authorization": "Bearer no"}
                     ).status_code == 401
    body = b"metrics " * 40_000
    with httpx.Client(base_url=c.url, timeout=30) as client:
        auth = bearer(signup_and_login(client, "metered"))
        r = client.put("/api/v1/files/content", params={"path": "/Private Plans.txt"},
                       content=body, headers=auth)
        assert r.status_code == 201, r.text
        assert client.get("/api/v1/files/content", params={"path": "/Private Plans.txt"},
                          headers=auth).content == body
        assert client.get("/api/v1/nowhere").status_code == 404
        ws_url = c.url.replace("http://", "ws://") + "/api/v1/notifications"
        with ws_connect(ws_url, subprotocols=["bearer", auth["Authorization"][7:]]) as ws:
            json.loads(ws.recv(timeout=10))
            during = scrape(c.url, scraper)
    route = "/api/v1/files/content"
    assert value(during, "minidropbox_http_requests_total", method="PUT", route=route,
                 status="201") == 1
    assert value(during, "minidropbox_http_requests_total", method="GET", route=route,
                 status="200") == 1
    assert value(during, "minidropbox_http_requests_total", method="GET",
                 route="<unmatched>", status="404") == 1
    assert value(during, "minidropbox_http_received_bytes_total", route=route) >= len(body)
    assert value(during, "minidropbox_http_sent_bytes_total", route=route) >= len(body)
    assert value(during, "minidropbox_http_request_duration_seconds_count", method="PUT",
                 route=route) == 1
    assert value(during, "minidropbox_websocket_clients") == 1
    for node in ("node-1", "node-2"):
        assert value(during, "minidropbox_storage_node_state", node=node, state="up") == 1
        assert value(during, "minidropbox_storage_node_state", node=node, state="down") == 0
    assert value(during, "minidropbox_chunks_under_replicated") == 0
    assert value(during, "minidropbox_cluster_leader") == 1
    assert value(during, "minidropbox_background_job_running", job="repair") == 1
    # Route templates only: a file name never becomes a label.
    assert not any("Private" in v for _, labels in during for _, v in labels)
    wait_for(lambda: value(scrape(c.url, scraper), "minidropbox_websocket_clients") == 0)

    node = c.nodes[0]
    secret = {"Authorization": f"Bearer {c.secret}"}
    assert httpx.get(node.url + "/metrics").status_code == 401
    on_node = scrape(node.url, secret)
    assert value(on_node, "minidropbox_node_chunk_writes_total", result="created") >= 1
    assert value(on_node, "minidropbox_node_chunk_reads_total") >= 1
    assert value(on_node, "minidropbox_node_used_bytes") >= len(body) // 2
    assert value(on_node, "minidropbox_node_http_requests_total", method="PUT",
                 route="/chunks/{name}", status="201") >= 1
    assert value(on_node, "minidropbox_node_http_requests_total", method="GET",
                 route="<unmatched>", status="401") >= 1

    # A node goes away: its state and the under-replicated count follow.
    c.nodes[1].stop()
    wait_for(lambda: value(scrape(c.url, scraper), "minidropbox_storage_node_state",
                           node="node-2", state="down") == 1)
    assert value(scrape(c.url, scraper), "minidropbox_chunks_under_replicated") >= 1
