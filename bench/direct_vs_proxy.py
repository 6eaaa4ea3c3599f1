"""The API's CPU seconds per GiB and its requests per file, the proxy path against the direct
path (client <-> nodes), on one cluster in one run: ``python -m bench.direct_vs_proxy``
(``SIZE_MIB=128`` by default). The API's idle CPU is measured first and subtracted."""

from __future__ import annotations

import os
import random
import tempfile
import time
from pathlib import Path

from tests.harness import TestCluster

from minidropbox.client.api import ApiClient
from minidropbox.client.batch import TransferStats, UploadItem
from minidropbox.client.download import download_file
from minidropbox.client.remote import Remote
from minidropbox.client.upload import upload_file
from minidropbox.client.upload_many import upload_many

MiB = 1 << 20
SIZE = int(os.environ.get("SIZE_MIB", "128")) * MiB
PASSWORD = "correct horse battery"


def cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def remote(url: str, name: str, direct: bool) -> Remote:
    api = ApiClient(url, persist=False)
    api.request("POST", "/api/v1/auth/signup", auth=False,
                json={"username": name, "password": PASSWORD})
    api.login(name, PASSWORD)
    return Remote(api, direct=direct)


def measure(tmp: Path, url: str, pid: int, label: str, direct: bool, idle: float) -> str:
    src = tmp / f"{label}.bin"
    src.write_bytes(random.Random(label).randbytes(SIZE))
    gib = SIZE / (1 << 30)
    with remote(url, f"u{label}", direct) as r:
        before, start = cpu(pid), time.monotonic()
        upload_file(r, src, "/big.bin")
        up_s = time.monotonic() - start
        up_cpu = cpu(pid) - before - idle * up_s
        before, start = cpu(pid), time.monotonic()
        download_file(r, "/big.bin", tmp / f"{label}.got")
        down_s = time.monotonic() - start
        down_cpu = cpu(pid) - before - idle * down_s
        smalls = []
        for i in range(50):
            p = tmp / f"{label}-s{i}"
            p.write_bytes(random.Random(f"{label}{i}").randbytes(256 * 1024))
            smalls.append(p)
        one = TransferStats()
        for i, p in enumerate(smalls[:10]):
            upload_file(r, p, f"/one/{i}", stats=one)
        many = upload_many(r, [UploadItem(p, f"/many/{i}", None)
                               for i, p in enumerate(smalls[10:])]).stats
    return (f"{label}: upload {SIZE / MiB / up_s:.1f} MiB/s, API CPU {up_cpu / gib:.1f} s/GiB; "
            f"download {SIZE / MiB / down_s:.1f} MiB/s, API CPU {down_cpu / gib:.1f} s/GiB; "
            f"upload_file 256 KiB: {one.requests / 10:.1f} API + "
            f"{one.node_requests / 10:.1f} node requests/file; upload_many 40 x 256 KiB: "
            f"{many.requests / 40:.3f} API + {many.node_requests / 40:.1f} node requests/file")


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        with TestCluster(tmp, node_env={"scrub_rate": 0}) as c:
            assert c.api.proc is not None
            pid = c.api.proc.pid
            time.sleep(3)  # the first health probes: the API learns the nodes' ids
            idle0, t0 = cpu(pid), time.monotonic()
            time.sleep(6)
            idle = (cpu(pid) - idle0) / (time.monotonic() - t0)  # probes and jobs
            print(f"idle API CPU {idle:.3f} s/s (subtracted)", flush=True)
            for label, direct in (("proxy", False), ("direct", True)):
                print(measure(tmp, c.url, pid, label, direct, idle), flush=True)


if __name__ == "__main__":
    main()
