"""Load isolation: while one account runs each attack the audit found, another account's
login, listing and small upload stay within a few times their latency without the attack.

Latencies are compared only as ratios measured in this test, against a baseline taken in the
same moments: for each attack the victim's rounds alternate between the attack running and
the attack paused (its requests drained), so a load that comes and goes on a busy machine (the
other half of the test suite, other builds) weighs on both sides alike. Each operation's
median under attack is divided by its median with the attack paused (with a floor under the
denominator, so a 3 ms listing is not judged by scheduler noise). An attack over the bound is
measured once more and judged on all its samples: a slowdown must show twice to count.

Every attack is bounded in count and in time: it runs only while the victim takes a round,
never longer than ``ATTACK_SECONDS`` at a stretch.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from tests.conftest import PASSWORD, bearer, signup_and_login
from tests.harness import TestCluster
from tests.security.conftest import QUOTA

PAIRS = 3  # (attack running, attack paused) rounds of the victim per measurement
MAX_RATIO = 5.0  # "a few times" the latency without the attack (unbounded attacks: 10-1000x)
FLOOR = 0.05  # seconds: the smallest denominator a ratio is taken against
ATTACK_SECONDS = 6.0  # no attack runs longer at a stretch, whatever the victim's pace
DRAIN_SECONDS = 30.0  # a paused attack's requests in flight end within this


@dataclass
class Account:
    name: str
    auth: dict[str, str]


def _account(client: httpx.Client, prefix: str) -> Account:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    return Account(name, bearer(signup_and_login(client, name)))


@dataclass
class Victim:
    """Another account's everyday requests, timed."""

    client: httpx.Client
    account: Account

    def round(self) -> dict[str, float]:
        """Seconds each operation took, once."""
        c, auth = self.client, self.account.auth
        times: dict[str, float] = {}

        def timed(op: str, call: Callable[[], httpx.Response], ok: int) -> None:
            start = time.monotonic()
            r = call()
            times[op] = time.monotonic() - start
            assert r.status_code == ok, (op, r.status_code, r.text[:300])

        timed("login", lambda: c.post("/api/v1/auth/login", json={
            "username": self.account.name, "password": PASSWORD}), 200)
        timed("list", lambda: c.get("/api/v1/files/list", headers=auth,
                                    params={"path": "/"}), 200)
        timed("upload", lambda: c.put(
            "/api/v1/files/content", headers=auth, content=os.urandom(4096),
            params={"path": f"/small-{uuid.uuid4().hex[:6]}.bin"}), 201)
        return times


@dataclass
class Samples:
    """The victim's latencies with an attack running and with it paused, by operation."""

    loaded: dict[str, list[float]]
    quiet: dict[str, list[float]]

    def ratios(self) -> dict[str, float]:
        return {op: statistics.median(self.loaded[op])
                / max(statistics.median(self.quiet[op]), FLOOR) for op in self.loaded}

    def add(self, other: Samples) -> Samples:
        return Samples({op: v + other.loaded[op] for op, v in self.loaded.items()},
                       {op: v + other.quiet[op] for op, v in self.quiet.items()})


class Attack:
    """Runs ``step`` in a loop on its own threads while switched on; ``client`` is closed
    at the end."""

    def __init__(self, client: httpx.Client, step: Callable[[], object],
                 threads: int = 1) -> None:
        self.client = client
        self.step = step
        self.running = threading.Event()
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.busy = 0  # steps in flight
        self.steps = 0
        self.until = 0.0  # a running stretch ends by this monotonic time
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        while not self.stopped.is_set():
            if not self.running.wait(0.05):
                continue
            with self.lock:  # so that pause() sees every step that starts
                go = self.running.is_set() and time.monotonic() < self.until
                if go:
                    self.busy += 1
            if not go:
                time.sleep(0.05)
                continue
            try:
                self.step()
            finally:
                with self.lock:
                    self.busy -= 1
                    self.steps += 1

    def resume(self) -> None:
        """Switch on, and return once a step is under way."""
        before = self.steps
        self.until = time.monotonic() + ATTACK_SECONDS
        self.running.set()
        deadline = time.monotonic() + 10
        while not (self.busy or self.steps > before) and time.monotonic() < deadline:
            time.sleep(0.005)

    def pause(self) -> None:
        """Switch off, and return once no step is in flight."""
        with self.lock:
            self.running.clear()
        deadline = time.monotonic() + DRAIN_SECONDS
        while self.busy and time.monotonic() < deadline:
            time.sleep(0.005)
        assert not self.busy, "an attack step outlived DRAIN_SECONDS"

    def measure(self, victim: Victim, pairs: int = PAIRS) -> Samples:
        """``pairs`` rounds of the victim under the attack, each next to one without it
        (in alternating order, so a trend in the machine's load favours neither side)."""
        loaded: dict[str, list[float]] = {}
        quiet: dict[str, list[float]] = {}

        def sample(into: dict[str, list[float]]) -> None:
            for op, seconds in victim.round().items():
                into.setdefault(op, []).append(seconds)

        for i in range(pairs):
            for attacking in ((True, False) if i % 2 == 0 else (False, True)):
                if attacking:
                    self.resume()
                    sample(loaded)
                    self.pause()
                else:
                    sample(quiet)
        return Samples(loaded, quiet)

    def __enter__(self) -> Attack:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.running.clear()
        for t in self.threads:
            t.join(DRAIN_SECONDS + 60)
        self.client.close()


# -- the attacks (each takes the cluster URL and the attacking account) ---------------------

def json_keys(url: str, attacker: Account) -> Attack:
    """#2: 300,000 unknown keys in an anonymous login body."""
    body = b"{" + b",".join(b'"k%d":0' % i for i in range(300_000)) + b"}"
    client = httpx.Client(base_url=url, timeout=60)
    return Attack(client, lambda: client.post("/api/v1/auth/login", content=body,
                                              headers={"content-type": "application/json"}))


def signup_flood(url: str, attacker: Account) -> Attack:
    """#6: anonymous signups, each an Argon2id hash."""
    client = httpx.Client(base_url=url, timeout=60)
    return Attack(client, lambda: client.post("/api/v1/auth/signup", json={
        "username": f"flood-{uuid.uuid4().hex[:10]}", "password": PASSWORD}), threads=2)


def long_polls(url: str, attacker: Account) -> Attack:
    """#10: as many long-polls as one account can open."""
    client = httpx.Client(base_url=url, timeout=60, limits=httpx.Limits(max_connections=100))
    cursor = client.get("/api/v1/changes", headers=attacker.auth).json()["cursor"]
    return Attack(client, lambda: client.get("/api/v1/changes/wait", headers=attacker.auth,
                                             params={"cursor": cursor, "timeout": 1}),
                  threads=22)


def _commit(client: httpx.Client, attacker: Account, path: str, chunks: list[str],
            size: int, parent: int | None = None) -> None:
    r = client.post("/api/v1/files/commit", headers=attacker.auth, json={
        "path": path, "size": size, "chunks": chunks, "parent_version": parent})
    assert r.status_code == 201, r.text[:300]


def _chunk(client: httpx.Client, attacker: Account, data: bytes) -> str:
    h = hashlib.sha256(data).hexdigest()
    assert client.put(f"/api/v1/chunks/{h}", headers=attacker.auth,
                      content=data).status_code == 201
    return h


def repeated_chunks(url: str, attacker: Account) -> Attack:
    """#1: a file that lists one 1-byte chunk 10,000 times (refused now), and downloads of
    one that lists the smallest allowed chunk many times."""
    client = httpx.Client(base_url=url, timeout=60)
    tiny = _chunk(client, attacker, b"t")
    block = _chunk(client, attacker, os.urandom(64 * 1024))
    _commit(client, attacker, "/repeated.bin", [block] * 48, 48 * 64 * 1024)
    amplifying = {"path": "/tiny.bin", "size": 10_000, "chunks": [tiny] * 10_000}

    def step() -> None:
        client.post("/api/v1/files/commit", headers=attacker.auth, json=amplifying)
        client.get("/api/v1/files/content", headers=attacker.auth,
                   params={"path": "/repeated.bin"})

    return Attack(client, step)


def deep_paths(url: str, attacker: Account) -> Attack:
    """#3: 20 paths nested 2,048 deep in one commit_batch (83 KB)."""
    client = httpx.Client(base_url=url, timeout=60)
    body = {"commits": [{"path": "/d" * 2047 + f"/{i}", "size": 0, "chunks": []}
                        for i in range(20)]}
    return Attack(client, lambda: client.post("/api/v1/files/commit_batch",
                                              headers=attacker.auth, json=body))


def move_loop(url: str, attacker: Account) -> Attack:
    """#4: move a folder with 1,000 entries back and forth."""
    client = httpx.Client(base_url=url, timeout=60)
    for half in range(2):
        r = client.post("/api/v1/files/commit_batch", headers=attacker.auth, json={
            "commits": [{"path": f"/tree/s{half}/f{i:04}", "size": 0, "chunks": []}
                        for i in range(499)]})
        assert all(x["ok"] for x in r.json()["results"]), r.text[:300]
    where = ["/tree", "/moved"]

    def step() -> None:
        r = client.post("/api/v1/files/move", headers=attacker.auth,
                        json={"from": where[0], "to": where[1]})
        if r.status_code == 200:
            where.reverse()

    return Attack(client, step)


def restore_loop(url: str, attacker: Account) -> Attack:
    """#5: restore a version that lists one chunk 10,000 times, again and again."""
    client = httpx.Client(base_url=url, timeout=60)
    block = _chunk(client, attacker, os.urandom(64 * 1024))
    _commit(client, attacker, "/r.bin", [block] * 10_000, 10_000 * 64 * 1024)
    _commit(client, attacker, "/r.bin", [block], 64 * 1024, parent=1)
    return Attack(client, lambda: client.post("/api/v1/files/restore", headers=attacker.auth,
                                              json={"path": "/r.bin", "version": 1}))


def over_quota_upload(url: str, attacker: Account) -> Attack:
    """#9: a chunked upload of five times the account's quota."""
    client = httpx.Client(base_url=url, timeout=60)
    blocks = [os.urandom(256 * 1024)] * (5 * QUOTA // (256 * 1024))

    def step() -> None:
        # Refused mid-body: the server answers and closes the connection.
        with contextlib.suppress(httpx.HTTPError):
            client.put("/api/v1/files/content", headers=attacker.auth,
                       params={"path": "/huge.bin"}, content=iter(blocks))

    return Attack(client, step)


ATTACKS: dict[str, Callable[[str, Account], Attack]] = {
    "repeated chunks": repeated_chunks,
    "json keys": json_keys,
    "deep paths": deep_paths,
    "move loop": move_loop,
    "restore loop": restore_loop,
    "signup flood": signup_flood,
    "over quota": over_quota_upload,
    "long polls": long_polls,
}


def test_one_account_cannot_slow_down_another(sec_cluster: TestCluster) -> None:
    # The security suite's cluster: default limits, except a small quota and page size, and
    # no signup budget per address (so the signup flood is not cut short by it).
    with httpx.Client(base_url=sec_cluster.url, timeout=120) as client:
        victim = Victim(client, _account(client, "victim"))
        attacker = _account(client, "attacker")
        victim.round()  # warm-up: first requests load code and open connections
        report, failures = [], []
        for name, make_attack in ATTACKS.items():
            started = time.monotonic()
            with make_attack(sec_cluster.url, attacker) as attack:
                samples = attack.measure(victim)
                if max(samples.ratios().values()) > MAX_RATIO:
                    samples = samples.add(attack.measure(victim))  # a second opinion
                steps = attack.steps
            took = time.monotonic() - started
            for op, ratio in samples.ratios().items():
                quiet, loaded = (statistics.median(samples.quiet[op]),
                                 statistics.median(samples.loaded[op]))
                report.append(f"{name:>14} {op:>6}: {quiet * 1000:7.1f} ms -> "
                              f"{loaded * 1000:7.1f} ms  x{ratio:4.1f}  "
                              f"({steps} attack steps, {took:.1f} s)")
                print(report[-1])
                if ratio > MAX_RATIO:
                    failures.append(f"{name}: {op} x{ratio:.1f}")
        assert not failures, "\n".join(["slowed down by another account:", *failures, *report])
