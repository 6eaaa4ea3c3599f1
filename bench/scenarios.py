"""The bench scenarios. Each returns one or more rows: (scenario, figure, us, peer, peer_value,
bar) measured side by side in the same run, so ratios hold on a noisy shared machine."""

from __future__ import annotations

import concurrent.futures
import os
import random
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.peers import Nginx, Rclone, disk_write_mbps, rsync_bytes_sent
from bench.proxy import CountingProxy
from bench.system import PASSWORD, System, User, timed
from minidropbox.client.api import ApiClient
from minidropbox.client.nodes import DEFAULT_CHAIN
from minidropbox.client.remote import Remote
from minidropbox.client.upload import upload_file

MiB = 1024 * 1024


@dataclass
class Row:
    scenario: str
    unit: str
    samples: list[float]
    peer: str = ""
    peer_samples: list[float] = field(default_factory=list)
    bar: str = ""
    higher_is_better: bool = True
    note: str = ""

    @property
    def us(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def peer_value(self) -> float | None:
        return statistics.median(self.peer_samples) if self.peer_samples else None

    @property
    def ratio(self) -> float | None:
        peer = self.peer_value
        if peer in (None, 0):
            return None
        assert peer is not None
        return self.us / peer


@dataclass
class Context:
    workdir: Path
    system: System
    runs: int
    big_mib: int
    small_files: int
    tools: dict[str, bool]
    nginx: Nginx | None = None
    rclone: Rclone | None = None
    quick: bool = False


def random_file(path: Path, size: int, seed: int) -> Path:
    """``size`` incompressible bytes that do not dedup against themselves or other seeds."""
    rng = random.Random(seed)
    with path.open("wb") as fh:
        left = size
        while left > 0:
            piece = rng.randbytes(min(4 * MiB, left))
            fh.write(piece)
            left -= len(piece)
    return path


def _watch_rss(pid_of: Callable[[], int | None], stop: threading.Event, out: list[float]) -> None:
    peak = 0.0
    while not stop.is_set():
        pid = pid_of()
        if pid:
            try:
                with open(f"/proc/{pid}/status") as fh:
                    for line in fh:
                        if line.startswith("VmRSS:"):
                            peak = max(peak, int(line.split()[1]) / 1024)
            except OSError:
                pass
        time.sleep(0.05)
    out.append(peak)


def _watch_nodes(ctx: Context, stop: threading.Event,
                 out: list[float]) -> list[threading.Thread]:
    """Watchers of each storage node's peak RSS (one figure per node into ``out``)."""
    return [threading.Thread(target=_watch_rss, args=(lambda pid=pid: pid, stop, out))
            for pid in ctx.system.node_pids()]


def upload_download(ctx: Context) -> list[Row]:
    size = ctx.big_mib * MiB
    size_mb = size / 1e6
    up, down, rc_up, ng_up, ng_down, disk, alt = [], [], [], [], [], [], []
    mode, other = ("chain", "fanout") if DEFAULT_CHAIN else ("fanout", "chain")
    api_rss: list[float] = []
    client_rss: list[float] = []
    node_rss: list[float] = []
    for run in range(ctx.runs):
        # Fresh bytes every run: nothing may dedup against an earlier run.
        big = random_file(ctx.workdir / "big.bin", size, seed=100 + run)
        user = User(ctx.workdir, f"upl{run}", ctx.system.url)
        client: dict[str, int | None] = {"pid": None}
        stop = threading.Event()
        watchers = [threading.Thread(target=_watch_rss, args=(ctx.system.api_pid, stop, api_rss)),
                    threading.Thread(target=_watch_rss, args=(lambda c=client: c["pid"], stop,
                                                              client_rss)),
                    *_watch_nodes(ctx, stop, node_rss)]
        for w in watchers:
            w.start()
        start = time.perf_counter()
        proc = user.popen("put", str(big), "/big.bin")
        client["pid"] = proc.pid
        _, err = proc.communicate()
        up.append(size_mb / (time.perf_counter() - start))
        stop.set()
        for w in watchers:
            w.join()
        if proc.returncode:
            raise RuntimeError(err.decode())
        # The other way of writing the R copies (chain against fan-out), same file, same
        # run, another account (so nothing dedups).
        alt_user = User(ctx.workdir, f"upl{run}{other}", ctx.system.url)
        alt_user.env["MINIDROPBOX_REPLICATION"] = other
        alt.append(size_mb / timed(alt_user.run, "put", str(big), "/big.bin"))
        dest = ctx.workdir / "down.bin"
        down.append(size_mb / timed(user.run, "get", "/big.bin", str(dest)))
        dest.unlink(missing_ok=True)
        disk.append(disk_write_mbps(big, ctx.workdir))
        if ctx.rclone:
            rc_up.append(size_mb / timed(ctx.rclone.copyto, big, f"big-{run}.bin"))
            ctx.rclone.clear()
        if ctx.nginx:
            ng_up.append(size_mb / timed(ctx.nginx.put, big, f"big-{run}.bin"))
            ng_down.append(size_mb / timed(ctx.nginx.get, f"big-{run}.bin", dest))
            dest.unlink(missing_ok=True)
        big.unlink()
    label = f"{ctx.big_mib} MiB"
    return [
        Row(f"upload {label} random file (CLI, R=2, fsync, {mode})", "MB/s", up,
            "rclone copyto → rclone serve webdav", rc_up, "≥ 1.0 × rclone"),
        Row(f"upload {label} ({other}, same runs)", "MB/s", alt,
            f"the default ({mode})", up, "shown: the faster is the default"),
        Row(f"upload {label} (same runs, vs nginx WebDAV PUT)", "MB/s", up, "nginx PUT (curl)",
            ng_up, "shown"),
        Row(f"upload {label} (same runs, vs the disk)", "MB/s", up, "disk write + fsync", disk,
            "shown"),
        Row(f"download {label} (CLI)", "MB/s", down, "nginx GET (curl)", ng_down,
            "≥ 0.5 × nginx"),
        Row(f"API peak RSS during the {label} upload", "MiB", [max(api_rss)], "", [], "< 200",
            higher_is_better=False),
        Row(f"client peak RSS during the {label} upload", "MiB", [max(client_rss)], "", [],
            "< 200", higher_is_better=False),
        Row(f"storage node peak RSS during the {label} upload (the largest)", "MiB",
            [max(node_rss)], "", [], "< 200", higher_is_better=False),
    ]


LIST_ENTRIES = 10_000  # the listing bar's folder


def many_small_files(ctx: Context) -> list[Row]:
    folder = ctx.workdir / "small"
    if not folder.exists():
        folder.mkdir()
        rng = random.Random(3)
        for i in range(ctx.small_files):
            sub = folder / f"d{i // 1000:02}"
            sub.mkdir(exist_ok=True)
            (sub / f"f{i:05}.txt").write_bytes(rng.randbytes(4096))
    ours, peers, listing = [], [], []
    # The bar is for 10,000 entries whatever --small-files says (fewer files keep rclone's
    # side, about 30 files/s, short); a --quick run lists what it put.
    entries = ctx.small_files if ctx.quick else max(LIST_ENTRIES, ctx.small_files)
    for run in range(ctx.runs):
        user = User(ctx.workdir, f"small{run}", ctx.system.url)
        ours.append(ctx.small_files / timed(user.run, "put", str(folder), f"/s{run}"))
        if ctx.rclone:
            peers.append(ctx.small_files / timed(ctx.rclone.copy_dir, folder, f"s{run}"))
            ctx.rclone.clear()
        if run == 0:
            listing = _list_latency(ctx, user, entries)
    rows = [Row(f"put {ctx.small_files:,} files of 4 KiB (CLI)", "files/s", ours,
                "rclone copy → rclone serve webdav", peers, "≥ 2 × rclone")]
    rows.append(Row(f"list a folder of {entries:,} entries (p50)", "ms", listing, "", [],
                    "≤ 150", higher_is_better=False))
    return rows


def _list_latency(ctx: Context, user: User, count: int) -> list[float]:
    """Put ``count`` files in ONE folder (via the batch API) and time listing it."""
    with ApiClient(ctx.system.url) as api:
        api.login(user.name, PASSWORD)
        folder = ctx.workdir / "flat"
        if not folder.exists():
            folder.mkdir()
            for i in range(count):
                (folder / f"e{i:05}.txt").write_bytes(i.to_bytes(4, "big"))
        subprocess.run([*user_cmd(user), "put", str(folder), "/flat"], env=user.env, check=True,
                       capture_output=True)
        samples = []
        for _ in range(max(5, ctx.runs)):
            start = time.perf_counter()
            body = api.request_json("GET", "/api/v1/files/list", params={"path": "/flat"})
            samples.append((time.perf_counter() - start) * 1000)
            assert len(body["entries"]) == count
        return [statistics.median(samples)]


def user_cmd(user: User) -> list[str]:
    from bench.system import CLI

    return [*CLI, "--server", user.server, "--quiet"]


def delta_edit(ctx: Context) -> list[Row]:
    size = 100 * MiB if ctx.big_mib >= 1024 else 20 * MiB
    old = random_file(ctx.workdir / "delta-old.bin", size, seed=5)
    data = old.read_bytes()
    new = ctx.workdir / "delta-new.bin"
    new.write_bytes(data[: size // 2] + b"!" + data[size // 2:])
    del data
    api_port = int(ctx.system.url.rsplit(":", 1)[1])
    proxy = CountingProxy(api_port)
    ours = []
    try:
        for run in range(ctx.runs):
            user = User(ctx.workdir, f"delta{run}", proxy.url)
            user.run("put", str(old), "/file.bin")
            proxy.reset()
            user.run("put", str(new), "/file.bin")
            ours.append(proxy.sent / MiB)
    finally:
        proxy.stop()
    theirs = [rsync_bytes_sent(old, new, ctx.workdir) / MiB] if ctx.tools.get("rsync") else []
    return [Row(f"insert 1 byte in the middle of a {size // MiB} MiB file, upload again",
                "MiB sent", ours, "rsync --no-whole-file", theirs, "≤ 2 MiB",
                higher_is_better=False)]


def concurrent_clients(ctx: Context) -> list[Row]:
    clients, per_client, size = (50, 20, 256 * 1024)
    rng = random.Random(9)
    payloads = [[rng.randbytes(size) for _ in range(per_client)] for _ in range(clients)]
    folder = ctx.workdir / "conc"
    folder.mkdir(exist_ok=True)
    samples, errors = [], []
    for run in range(ctx.runs):
        apis = []
        for c in range(clients):
            api = ApiClient(ctx.system.url, persist=False)
            name = f"c{run}x{c}"
            api.request("POST", "/api/v1/auth/signup", auth=False,
                        json={"username": name, "password": PASSWORD})
            api.login(name, PASSWORD)
            apis.append(api)
        paths = []
        for c in range(clients):
            for i in range(per_client):
                p = folder / f"{run}-{c}-{i}.bin"
                # Each run gets fresh bytes so nothing dedups across runs.
                p.write_bytes(run.to_bytes(2, "big") + payloads[c][i][2:])
                paths.append(p)
        failures = 0

        def work(c: int, apis: list[ApiClient] = apis, run: int = run) -> int:
            bad = 0
            remote = Remote(apis[c])  # one per client, as a CLI or sync client keeps it
            for i in range(per_client):
                try:
                    upload_file(remote, folder / f"{run}-{c}-{i}.bin", f"/f{i}.bin")
                except Exception:
                    bad += 1
            return bad

        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            failures = sum(pool.map(work, range(clients)))
        elapsed = time.perf_counter() - start
        samples.append(clients * per_client / elapsed)
        errors.append(float(failures))
        for api in apis:
            api.close()
        for p in paths:
            p.unlink()
    return [Row(f"{clients} concurrent clients × {per_client} files of 256 KiB", "files/s",
                samples, "", [], "≥ 300 files/s"),
            Row("errors in the concurrent upload", "errors", errors, "", [], "0",
                higher_is_better=False)]


def sync_rows(ctx: Context) -> list[Row]:
    """Sync latency A → B and bytes sent for a rename in a synced folder."""
    api_port = int(ctx.system.url.rsplit(":", 1)[1])
    proxy = CountingProxy(api_port)
    a_dir, b_dir = ctx.workdir / "sync-a", ctx.workdir / "sync-b"
    for d in (a_dir, b_dir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
    owner = User(ctx.workdir, "syncer", proxy.url)
    other = User(ctx.workdir, "syncer", ctx.system.url, signup=False)
    other.config = ctx.workdir / "config-syncer-b"
    other.env = dict(os.environ, XDG_CONFIG_HOME=str(other.config))
    other.run("login", "syncer", "--password-stdin", stdin=PASSWORD + "\n")
    # ``other`` first logged in with the owner's config folder (same name): log the owner in
    # again, through the proxy, so its sync talks to the server it was started with.
    owner.run("login", "syncer", "--password-stdin", stdin=PASSWORD + "\n")
    rename_size = ctx.big_mib * MiB
    random_file(a_dir / "movie.bin", rename_size, seed=11)
    procs = [owner.popen("sync", str(a_dir)), other.popen("sync", str(b_dir))]
    latencies: list[float] = []
    renamed: list[float] = []
    try:
        _wait_for(lambda: (b_dir / "movie.bin").exists()
                  and (b_dir / "movie.bin").stat().st_size == rename_size, 600)
        time.sleep(1.0)
        proxy.reset()
        (a_dir / "movie.bin").rename(a_dir / "film.bin")
        _wait_for(lambda: (b_dir / "film.bin").exists(), 120)
        time.sleep(1.0)
        renamed.append(proxy.sent / 1024)
        edits = 100 if ctx.big_mib >= 1024 else 20
        for i in range(edits):
            target = b_dir / f"edit-{i}.txt"
            start = time.perf_counter()
            (a_dir / f"edit-{i}.txt").write_text(f"edit {i}\n")
            _wait_for(target.exists, 30)
            latencies.append(time.perf_counter() - start)
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        proxy.stop()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return [
        Row(f"rename a {ctx.big_mib} MiB file in a synced folder", "KiB sent", renamed, "", [],
            "≤ 64 KiB", higher_is_better=False),
        Row(f"sync latency A → B, p50 over {len(latencies)} edits", "s",
            [statistics.median(latencies)], "", [], "≤ 0.5 s", higher_is_better=False),
        Row(f"sync latency A → B, p99 over {len(latencies)} edits", "s", [p99], "", [],
            "≤ 2 s", higher_is_better=False),
    ]


def sync_bulk(ctx: Context) -> list[Row]:
    """Many small files written into a synced folder while two daemons run: seconds until
    all are on the other device; then CPU per file of a fresh ``sync --once`` downloading
    them into an empty folder."""
    count = ctx.small_files // 2
    a_dir, b_dir, c_dir = (ctx.workdir / f"bulk-{x}" for x in "abc")
    for d in (a_dir, b_dir, c_dir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
    user = User(ctx.workdir, "bulk", ctx.system.url)
    arrive: list[float] = []
    cpu_ms: list[float] = []
    procs = [user.popen("sync", str(a_dir)), user.popen("sync", str(b_dir))]
    try:
        time.sleep(2.0)  # both daemons up and idle
        start = time.perf_counter()
        folder = a_dir / "many"
        folder.mkdir()
        for i in range(count):
            (folder / f"f{i:05}.txt").write_bytes(f"small file {i}\n".encode() * 20)
        _wait_for(lambda: (b_dir / "many").is_dir()
                  and sum(1 for _ in (b_dir / "many").iterdir()) >= count, 600)
        arrive.append(time.perf_counter() - start)
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
    for _ in range(ctx.runs):
        shutil.rmtree(c_dir, ignore_errors=True)
        c_dir.mkdir()
        proc = user.popen("sync", str(c_dir), "--once")
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"sync --once failed ({proc.returncode})")
        cpu_ms.append((usage.ru_utime + usage.ru_stime) * 1000 / count)
    return [
        Row(f"{count} small files written into a synced folder reach the other device", "s",
            arrive, "", [], "≤ 15 s for 5,000", higher_is_better=False),
        Row(f"initial sync of {count} small files: client CPU per file", "ms", cpu_ms, "", [],
            "well under 2 ms", higher_is_better=False),
    ]


def _wait_for(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.01)
    raise TimeoutError("the synced change did not arrive in time")


def rss_5g(ctx: Context) -> list[Row]:
    big = random_file(ctx.workdir / "five.bin", 5 * 1024 * MiB, seed=13)
    user = User(ctx.workdir, "five", ctx.system.url)
    api_rss: list[float] = []
    client_rss: list[float] = []
    node_rss: list[float] = []
    client: dict[str, int | None] = {"pid": None}
    stop = threading.Event()
    watchers = [threading.Thread(target=_watch_rss, args=(ctx.system.api_pid, stop, api_rss)),
                threading.Thread(target=_watch_rss, args=(lambda: client["pid"], stop,
                                                          client_rss)),
                *_watch_nodes(ctx, stop, node_rss)]
    for w in watchers:
        w.start()
    proc = user.popen("put", str(big), "/five.bin")
    client["pid"] = proc.pid
    proc.communicate()
    stop.set()
    for w in watchers:
        w.join()
    big.unlink()
    return [Row("API peak RSS during a 5 GiB upload", "MiB", api_rss, "", [], "< 200, as 1 GiB",
                higher_is_better=False),
            Row("client peak RSS during a 5 GiB upload", "MiB", client_rss, "", [],
                "< 200, as 1 GiB", higher_is_better=False),
            Row("storage node peak RSS during a 5 GiB upload (the largest)", "MiB",
                [max(node_rss)], "", [], "< 200, as 1 GiB", higher_is_better=False)]


SCENARIOS: dict[str, Callable[[Context], list[Row]]] = {
    "upload": upload_download,
    "small": many_small_files,
    "delta": delta_edit,
    "concurrent": concurrent_clients,
    "sync": sync_rows,
    "syncbulk": sync_bulk,
    "rss5g": rss_5g,
}
