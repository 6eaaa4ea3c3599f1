"""Dedup without proof-of-ownership leaks (the "Dropship" attack): a chunk counts as present
for a user only if they sent its bytes or own a version that uses it. Neither the answer of
``/chunks/missing`` nor its timing, nor the time storing a chunk takes, tells B what A has
stored."""

from __future__ import annotations

import hashlib
import itertools
import os
import statistics
import time

import httpx

from tests.security.conftest import new_user

ROUNDS = 25  # timed requests per kind; each asks about BATCH hashes at once
BATCH = 200


def test_commit_needs_the_bytes_not_the_name(client: httpx.Client) -> None:
    a, b = new_user(client, "dd"), new_user(client, "dd")
    data = os.urandom(5000)
    h = hashlib.sha256(data).hexdigest()
    assert client.put(f"/api/v1/chunks/{h}", headers=a.auth, content=data).status_code == 201
    never = hashlib.sha256(os.urandom(32)).hexdigest()
    for chunks in ([never], [h], [h, never]):
        r = client.post("/api/v1/files/commit", headers=b.auth, json={
            "path": "/claimed", "size": 5000 * len(chunks), "chunks": chunks,
            "parent_version": None})
        assert r.status_code == 400 and r.json()["error"]["code"] == "missing_chunk", r.text
    # A only uploaded the chunk (no version uses it yet): B still does not see it.
    assert client.post("/api/v1/chunks/missing", headers=b.auth,
                       json={"hashes": [h]}).json()["missing"] == [h]
    # Once B proves possession by sending the bytes, B may use it, and pays for it.
    assert client.put(f"/api/v1/chunks/{h}", headers=b.auth, content=data).status_code == 201
    assert client.post("/api/v1/chunks/missing", headers=b.auth,
                       json={"hashes": [h]}).json()["missing"] == []
    r = client.post("/api/v1/files/commit", headers=b.auth, json={
        "path": "/mine", "size": 5000, "chunks": [h], "parent_version": None})
    assert r.status_code == 201, r.text


def test_missing_takes_the_same_time_for_others_chunks(client: httpx.Client) -> None:
    a, b = new_user(client, "dd"), new_user(client, "dd")
    blobs = [os.urandom(512) for _ in range(BATCH)]
    parts = [(hashlib.sha256(d).hexdigest(), d) for d in blobs]
    r = client.post("/api/v1/chunks/batch", headers=a.auth,
                    files=[(h, (h, d, "application/octet-stream")) for h, d in parts])
    assert r.status_code == 201, r.text
    owned_by_a = [h for h, _ in parts]

    def timed(hashes: list[str]) -> float:
        start = time.perf_counter()
        r = client.post("/api/v1/chunks/missing", headers=b.auth, json={"hashes": hashes})
        elapsed = time.perf_counter() - start
        assert r.status_code == 200 and r.json()["missing"] == hashes
        return elapsed

    def fresh() -> list[str]:
        return [hashlib.sha256(os.urandom(16)).hexdigest() for _ in range(BATCH)]

    for _ in range(3):  # warm up connections and caches
        timed(owned_by_a), timed(fresh())
    known: list[float] = []
    unknown: list[float] = []

    def gap() -> tuple[float, float, float]:
        for i in range(ROUNDS):
            # Interleaved, in alternating order, so drift in machine load hits both alike.
            pair = [(known, owned_by_a), (unknown, fresh())]
            for sink, hashes in pair if i % 2 else reversed(pair):
                sink.append(timed(hashes))
        k, u = statistics.median(known), statistics.median(unknown)
        # Generous: a leak worth exploiting (a node lookup, a second query per known chunk)
        # costs milliseconds per request; noise on a busy two-core machine stays within this.
        return abs(k - u) - max(0.004, 0.35 * min(k, u)), k, u

    over, k, u = gap()
    if over > 0:
        # A burst of load on one side can pass the margin once; a leak is there every time.
        # Measure as much again and judge on all the samples: a gap must show twice.
        over, k, u = gap()
    assert over <= 0, f"median {k * 1000:.2f} ms (A's chunks) vs {u * 1000:.2f} ms"


def _fresh_beside(existing: list[str], size: int) -> bytes:
    """New random bytes whose chunk lands in a fan-out folder that one of ``existing``
    already made on the nodes (``ab/cd/abcd...``): a first chunk in a folder also pays for
    creating it, which a busy store never does and which is not what this test is about."""
    folders = {h[:4] for h in existing}
    base = os.urandom(size - 8)
    state = hashlib.sha256(base)
    for i in itertools.count():
        tail = i.to_bytes(8, "big")
        digest = state.copy()
        digest.update(tail)
        if digest.hexdigest()[:4] in folders:
            return base + tail
    raise AssertionError("unreachable")


def test_storing_others_chunks_takes_as_long_as_new_ones(client: httpx.Client) -> None:
    a, b = new_user(client, "dd"), new_user(client, "dd")
    rounds = 16
    theirs = [os.urandom(64 * 1024) for _ in range(rounds + 2)]
    for data in theirs:
        h = hashlib.sha256(data).hexdigest()
        assert client.put(f"/api/v1/chunks/{h}", headers=a.auth,
                          content=data).status_code == 201
    stored = [hashlib.sha256(d).hexdigest() for d in theirs]

    def timed(data: bytes) -> float:
        h = hashlib.sha256(data).hexdigest()
        start = time.perf_counter()
        r = client.put(f"/api/v1/chunks/{h}", headers=b.auth, content=data)
        elapsed = time.perf_counter() - start
        assert r.status_code == 201, r.text
        return elapsed

    for data in theirs[:2]:  # warm up
        timed(data), timed(_fresh_beside(stored, 64 * 1024))
    known, unknown = [], []
    for i, data in enumerate(theirs[2:]):
        pair = [(known, data), (unknown, _fresh_beside(stored, 64 * 1024))]
        for sink, body in pair if i % 2 else reversed(pair):
            sink.append(timed(body))
    # The lower quartile of each: other tests' load only adds time (CI once saw medians of
    # 16.7 and 23.9 ms here), while a skipped write would show in every sample.
    k, u = (statistics.quantiles(v, n=4)[0] for v in (known, unknown))
    # Skipping the node writes for a chunk someone has made it about twice as fast.
    margin = max(0.004, 0.35 * min(k, u))
    assert abs(k - u) <= margin, f"{k * 1000:.2f} ms (A's chunks) vs {u * 1000:.2f} ms"


def test_usage_says_nothing_about_others_chunks(client: httpx.Client) -> None:
    """B sends a chunk A has committed, and one nobody has: B's usage moves the same way for
    both (staged, not used), so ``GET /usage`` cannot tell B what A stored."""
    a, b = new_user(client, "du"), new_user(client, "du")
    theirs, fresh = os.urandom(7000), os.urandom(7000)
    h = hashlib.sha256(theirs).hexdigest()
    assert client.put(f"/api/v1/chunks/{h}", headers=a.auth, content=theirs).status_code == 201
    assert client.post("/api/v1/files/commit", headers=a.auth, json={
        "path": "/a", "size": len(theirs), "chunks": [h],
        "parent_version": None}).status_code == 201
    seen = []
    for data in (theirs, fresh):
        digest = hashlib.sha256(data).hexdigest()
        before = client.get("/api/v1/usage", headers=b.auth).json()
        assert client.put(f"/api/v1/chunks/{digest}", headers=b.auth,
                          content=data).status_code == 201
        after = client.get("/api/v1/usage", headers=b.auth).json()
        seen.append({k: after[k] - before[k] for k in ("used_bytes", "staged_bytes")})
    assert seen == [{"used_bytes": 0, "staged_bytes": 7000}] * 2
