"""WebDAV scenarios: rclone into /dav/ against rclone's own WebDAV server, curl downloads
against nginx, and the API's memory during a 5 GiB PUT through /dav/."""

from __future__ import annotations

import functools
import random
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench.peers import rclone, rclone_pacer_flags
from bench.scenarios import Context, Row, _watch_rss, random_file
from bench.system import PASSWORD, timed
from minidropbox.client.api import ApiClient

MiB = 1024 * 1024
SMALL_FILES = 2000


class DavRemote:
    """A fresh account with an app password, and rclone/curl pointed at its /dav/."""

    def __init__(self, ctx: Context, name: str) -> None:
        self.url = ctx.system.url
        with ApiClient(self.url) as api:
            api.request("POST", "/api/v1/auth/signup", auth=False,
                        json={"username": name, "password": PASSWORD})
            api.login(name, PASSWORD)
            created = api.request_json("POST", "/api/v1/app-passwords", json={"name": "bench"})
        self.user, self.password = name, created["password"]
        obscured = subprocess.run([rclone(), "obscure", self.password], check=True,
                                  capture_output=True, text=True).stdout.strip()
        self.remote = (f":webdav,url='{self.url}/dav/',vendor=owncloud,user={name},"
                       f"pass={obscured}:")

    def rclone(self, *args: str) -> None:
        subprocess.run([rclone(), "--config", "/dev/null", *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def copy_folder(self, local: Path, dest: str) -> None:
        self.rclone("copy", str(local), self.remote + dest, "--transfers", "2",
                    *rclone_pacer_flags())

    def curl(self, *args: str) -> None:
        subprocess.run(["curl", "-sS", "-f", "-u", f"{self.user}:{self.password}", *args],
                       check=True, stdout=subprocess.DEVNULL)


def _small_tree(workdir: Path) -> Path:
    folder = workdir / "dav-small"
    if not folder.exists():
        rng = random.Random(21)
        for i in range(SMALL_FILES):
            sub = folder / f"d{i // 500}"
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f"f{i:05}.txt").write_bytes(rng.randbytes(4096))
    return folder


def _per_folder(copy: Callable[[Path, str], None], tree: Path, dest: str) -> None:
    """One rclone process per top folder of ``tree``, all at once: each process paces its
    own calls (10 ms apart in rclone 1.60), so several of them let the servers, not the
    client, set the rate."""
    threads = [threading.Thread(target=copy, args=(sub, f"{dest}/{sub.name}"))
               for sub in sorted(tree.iterdir())]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def dav_rows(ctx: Context) -> list[Row]:
    size = ctx.big_mib * MiB
    size_mb = size / 1e6
    small = _small_tree(ctx.workdir)
    up, rc_up, down, ng_down, many, rc_many = [], [], [], [], [], []
    par, rc_par = [], []
    for run in range(ctx.runs):
        dav = DavRemote(ctx, f"dav{run}")
        big = random_file(ctx.workdir / "dav-big.bin", size, seed=300 + run)
        up.append(size_mb / timed(dav.rclone, "copyto", str(big), dav.remote + "big.bin"))
        dest = ctx.workdir / "dav-down.bin"
        down.append(size_mb / timed(dav.curl, "-o", str(dest), f"{dav.url}/dav/big.bin"))
        dest.unlink(missing_ok=True)
        many.append(SMALL_FILES / timed(dav.rclone, "copy", str(small), dav.remote + "small",
                                        "--transfers", "8", *rclone_pacer_flags()))
        par.append(SMALL_FILES / timed(_per_folder, dav.copy_folder, small, "par"))
        if ctx.rclone:
            rc_up.append(size_mb / timed(ctx.rclone.copyto, big, f"dav-big-{run}.bin"))
            rc_many.append(SMALL_FILES / timed(ctx.rclone.copy_dir, small, f"dav-s{run}"))
            rc_par.append(SMALL_FILES / timed(_per_folder, functools.partial(
                ctx.rclone.copy_dir, transfers=2), small, f"dav-p{run}"))
            ctx.rclone.clear()
        if ctx.nginx:
            ctx.nginx.put(big, f"dav-big-{run}.bin")
            ng_down.append(size_mb / timed(ctx.nginx.get, f"dav-big-{run}.bin", dest))
            dest.unlink(missing_ok=True)
        big.unlink()
    label = f"{ctx.big_mib} MiB"
    return [
        Row(f"WebDAV: rclone copy of a {label} file into /dav/", "MB/s", up,
            "rclone copyto → rclone serve webdav", rc_up, "≥ 1.0 × rclone"),
        Row(f"WebDAV: rclone copy of {SMALL_FILES:,} files of 4 KiB into /dav/", "files/s",
            many, "rclone copy → rclone serve webdav", rc_many, "≥ 2 × rclone"),
        Row(f"WebDAV: the same {SMALL_FILES:,} files, one rclone process per folder "
            "(4 at once)", "files/s", par, "the same → rclone serve webdav", rc_par, "shown"),
        Row(f"WebDAV: curl download of the {label} file from /dav/", "MB/s", down,
            "nginx GET (curl)", ng_down, "≥ 0.5 × nginx"),
    ]


def dav_rss_5g(ctx: Context) -> list[Row]:
    big = random_file(ctx.workdir / "dav-five.bin", 5 * 1024 * MiB, seed=17)
    dav = DavRemote(ctx, "davfive")
    api_rss: list[float] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_rss, args=(ctx.system.api_pid, stop, api_rss))
    watcher.start()
    started = time.perf_counter()
    try:
        dav.curl("-T", str(big), f"{dav.url}/dav/five.bin")
    finally:
        stop.set()
        watcher.join()
        big.unlink()
    rate = 5 * 1024 * MiB / 1e6 / (time.perf_counter() - started)
    return [Row("WebDAV: API peak RSS during a 5 GiB PUT (curl -T)", "MiB", api_rss, "", [],
                "< 200", higher_is_better=False),
            Row("WebDAV: that 5 GiB PUT", "MB/s", [rate], "", [], "shown")]


DAV_SCENARIOS = {"dav": dav_rows, "dav5g": dav_rss_5g}
