"""The chaos run: clients that keep writing and reading while processes are hurt.

``Clients`` are ten accounts, each a thread doing random uploads (new files and overwrites),
downloads (checked byte for byte against what it last had acknowledged) and deletes; every
request that fails the way an outage fails (no connection, 502/503/504, a timeout) is retried
with backoff for up to ``RETRY_FOR`` seconds. ``Faults`` kills (-9), pauses (SIGSTOP, then
SIGCONT) and stops (SIGTERM) random storage nodes of a ``server cluster`` — one at a time, so
never more than R-1 = 1 of them is down — and kills the API once, halfway; the supervisor
brings each back. ``Figures`` is what both saw.
"""

from __future__ import annotations

import hashlib
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.conftest import PASSWORD
from tests.supervised import SupervisedCluster

RETRY_FOR = 60.0
RETRYABLE = {502, 503, 504}
MAX_FILES = 12  # live files per client
SIZES = [1_000, 20_000, 300_000, 1_500_000, 3_000_000]


@dataclass
class Figures:
    ops: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    retried: Counter[str] = field(default_factory=Counter)  # errors a retry then got past
    unrecovered: list[str] = field(default_factory=list)  # requests that never succeeded
    unexpected: list[str] = field(default_factory=list)  # answers no outage explains (500)
    lost: list[str] = field(default_factory=list)  # acknowledged content not read back
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, counter: str, key: str, n: int = 1) -> None:
        with self.lock:
            getattr(self, counter)[key] += n

    def add(self, what: str, item: Any) -> None:
        with self.lock:
            getattr(self, what).append(item)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies) or [0.0]
        return {"operations": dict(self.ops), "operations_total": sum(self.ops.values()),
                "faults": dict(self.faults), "faults_total": sum(self.faults.values()),
                "client_errors_retried": dict(self.retried),
                "client_errors_unrecovered": len(self.unrecovered),
                "unexpected_answers": len(self.unexpected),
                "acknowledged_writes_lost": len(self.lost),
                "op_latency_p50_s": round(lat[len(lat) // 2], 3),
                "op_latency_p99_s": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 3),
                "op_latency_max_s": round(lat[-1], 3)}


class Client(threading.Thread):
    """One account doing random file operations until ``stop`` is set."""

    def __init__(self, index: int, url: str, seed: int, figures: Figures,
                 stop: threading.Event) -> None:
        super().__init__(name=f"chaos-client-{index}", daemon=True)
        self.user = f"chaos{index}"
        self.http = httpx.Client(base_url=url, timeout=30)
        self.rng = random.Random(seed)
        self.figures = figures
        self.stop_flag = stop
        self.files: dict[str, bytes] = {}  # path -> the content last acknowledged
        self.deleted: set[str] = set()
        self.auth: dict[str, str] = {}
        self.serial = 0

    # -- requests, retried the way a real client retries an outage ---------------------------
    def call(self, what: str, method: str, url: str, ok: tuple[int, ...] = (200, 201),
             retry_ok: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response | None:
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                r = self.http.request(method, url, headers=self.auth, **kwargs)
                failure = None if r.status_code in ok or (attempt and r.status_code in retry_ok) \
                    else f"{r.status_code} {r.text[:200]}"
                if r.status_code == 401 and attempt < 3:
                    self.login()
                    failure = "401"
                elif failure and r.status_code not in RETRYABLE:
                    if r.status_code >= 500:
                        self.figures.add("unexpected", f"{what}: {failure}")
                    else:
                        self.figures.add("unrecovered", f"{what}: {failure}")
                        return None
            except httpx.TransportError as exc:
                failure = type(exc).__name__
            if failure is None:
                self.figures.add("latencies", time.monotonic() - started)
                return r
            attempt += 1
            self.figures.note("retried", failure.split(" ")[0])
            if time.monotonic() - started > RETRY_FOR:
                self.figures.add("unrecovered", f"{what}: {failure} for {RETRY_FOR:.0f} s")
                return None
            time.sleep(min(2.0, 0.1 * 2 ** min(attempt, 5)) * self.rng.uniform(0.5, 1))

    def login(self) -> None:
        r = self.http.post("/api/v1/auth/login", json={"username": self.user,
                                                       "password": PASSWORD})
        if r.status_code == 200:
            self.auth = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def signup(self) -> None:
        r = self.http.post("/api/v1/auth/signup", json={"username": self.user,
                                                        "password": PASSWORD})
        assert r.status_code == 201, r.text
        self.login()
        assert self.auth

    # -- operations ---------------------------------------------------------------------------
    def run(self) -> None:
        while not self.stop_flag.is_set():
            live = list(self.files)
            roll = self.rng.random()
            if not live or (roll < 0.3 and len(live) < MAX_FILES):
                self.upload(f"/c/f{self.serial:04}.bin")
                self.serial += 1
            elif roll < 0.55:
                self.upload(self.rng.choice(live))
            elif roll < 0.9:
                self.download(self.rng.choice(live))
            else:
                self.delete(self.rng.choice(live))

    def upload(self, path: str) -> None:
        data = self.rng.randbytes(self.rng.choice(SIZES))
        kind = "overwrite" if path in self.files else "upload"
        if self.call(kind, "PUT", "/api/v1/files/content", params={"path": path},
                     content=data) is not None:
            self.files[path] = data
            self.deleted.discard(path)
            self.figures.note("ops", kind)

    def download(self, path: str) -> None:
        r = self.call("download", "GET", "/api/v1/files/content", params={"path": path})
        if r is None:
            return
        self.figures.note("ops", "download")
        if hashlib.sha256(r.content).digest() != hashlib.sha256(self.files[path]).digest():
            self.figures.add("lost", f"{self.user}{path}: read back different bytes")

    def delete(self, path: str) -> None:
        # A retry after a lost answer finds the file already in the trash: 404 is success.
        if self.call("delete", "DELETE", "/api/v1/files", params={"path": path},
                     retry_ok=(404,)) is not None:
            del self.files[path]
            self.deleted.add(path)
            self.figures.note("ops", "delete")

    def verify(self) -> None:
        """After the run: every acknowledged file reads back whole, every delete holds."""
        for path, data in self.files.items():
            r = self.call("verify", "GET", "/api/v1/files/content", params={"path": path})
            if r is None or hashlib.sha256(r.content).digest() != \
                    hashlib.sha256(data).digest():
                self.figures.add("lost", f"{self.user}{path}: not readable after the run")
        for path in self.deleted:
            r = self.call("verify", "GET", "/api/v1/files/metadata", ok=(404,),
                          params={"path": path})
            if r is None:
                self.figures.add("lost", f"{self.user}{path}: deleted yet still there")


class Faults(threading.Thread):
    """Hurts one process at a time until ``stop`` is set; the API once, halfway."""

    def __init__(self, cluster: SupervisedCluster, seed: int, seconds: float,
                 figures: Figures, stop: threading.Event) -> None:
        super().__init__(name="chaos-faults", daemon=True)
        self.cluster = cluster
        self.rng = random.Random(seed)
        self.seconds = seconds
        self.figures = figures
        self.stop_flag = stop
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the test, not lost in a thread
            self.error = exc

    def _run(self) -> None:
        api_at = time.monotonic() + self.seconds / 2
        api_done = False
        while not self.stop_flag.wait(self.rng.uniform(1.0, 3.0)):
            self.wait_all_running()
            if not api_done and time.monotonic() >= api_at:
                self.cluster.signal("api", signal.SIGKILL)
                self.figures.note("faults", "api kill -9")
                api_done = True
                continue
            node = self.rng.choice(self.cluster.nodes)
            kind = self.rng.choice(["kill -9", "kill -9", "pause", "sigterm"])
            if kind == "kill -9":
                self.cluster.signal(node, signal.SIGKILL)
            elif kind == "sigterm":
                self.cluster.signal(node, signal.SIGTERM)
            else:
                self.cluster.signal(node, signal.SIGSTOP)
                self.stop_flag.wait(self.rng.uniform(0.5, 4.0))
                self.cluster.signal(node, signal.SIGCONT)
            self.figures.note("faults", f"node {kind}")

    def wait_all_running(self, timeout: float = 120.0) -> None:
        """Until the supervisor has every process back (at most one node down at a time)."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.cluster.state()
            pending = [n for n, p in state.items() if p["state"] != "running"]
            if not pending:
                return
            assert time.monotonic() < deadline, f"not back after {timeout}s: {pending}"
            time.sleep(0.1)
