"""The direct-transfer protocol spoken by hand (tests): grants from ``missing``, PUTs at the
nodes, receipts back to the API, read plans."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import httpx

Headers = dict[str, str]
DIRECT = 64 * 1024  # the smallest chunk the API grants (DIRECT_MIN_BYTES; smaller: batches)


def wait_for_grants(c: httpx.Client, auth: Headers, timeout: float = 20.0) -> None:
    """Until the API knows the nodes' ids (its first health probes) and hands out grants."""
    probe = str(time.time()).encode().ljust(DIRECT, b"p")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if upload_grants(c, auth, [probe]):
            return
        time.sleep(0.2)
    raise AssertionError("the API never handed out an upload grant")


def upload_grants(c: httpx.Client, auth: Headers, blobs: list[bytes]) -> dict[str, Any]:
    """``{hash: upload}`` for the blobs ``missing`` grants."""
    hashes = [hashlib.sha256(b).hexdigest() for b in blobs]
    r = c.post("/api/v1/chunks/missing", headers=auth,
               json={"hashes": hashes, "sizes": [len(b) for b in blobs]})
    assert r.status_code == 200, r.text
    return {u["hash"]: u for u in r.json()["uploads"]}


def put_at(url: str, chunk_hash: str, data: bytes, grant: str) -> httpx.Response:
    return httpx.put(f"{url}/chunks/{chunk_hash}", content=data,
                     headers={"Authorization": f"Grant {grant}"}, timeout=30)


def send_direct(c: httpx.Client, auth: Headers, data: bytes, copies: int = 2) -> list[str]:
    """Send one chunk to its first ``copies`` nodes with its grant; the receipts."""
    chunk_hash = hashlib.sha256(data).hexdigest()
    upload = upload_grants(c, auth, [data])[chunk_hash]
    receipts = []
    for url in upload["nodes"][:copies]:
        r = put_at(url, chunk_hash, data, upload["grant"])
        assert r.status_code in (200, 201), r.text
        receipts.append(r.json()["receipt"])
    return receipts


def present(c: httpx.Client, auth: Headers, receipts: list[str]) -> httpx.Response:
    return c.post("/api/v1/chunks/receipts", headers=auth, json={"receipts": receipts})


def commit(c: httpx.Client, auth: Headers, path: str, blobs: list[bytes]) -> httpx.Response:
    return c.post("/api/v1/files/commit", headers=auth, json={
        "path": path, "size": sum(len(b) for b in blobs),
        "chunks": [hashlib.sha256(b).hexdigest() for b in blobs], "parent_version": None})
