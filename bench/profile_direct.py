"""Where the CPU goes on the direct data path, per process: ``python -m bench.profile_direct``
(``SIZE_MIB=256``; needs ``py-spy`` in the venv). On one cluster it samples the API, the three
nodes and the CLI (py-spy, on-CPU samples only) through five phases: a big upload with fan-out,
the same with a chain, its download, 20 clients x 10 files of 256 KiB, and listing a folder of
10,000 entries. For each phase and process it prints the CPU seconds (from /proc) and the
functions with the most samples of their own, and the leaf frames grouped by module."""

from __future__ import annotations

import collections
import concurrent.futures
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.harness import TestCluster

from bench.direct_vs_proxy import cpu, remote
from bench.system import User
from minidropbox.client.batch import UploadItem
from minidropbox.client.remote import Remote
from minidropbox.client.upload import upload_file
from minidropbox.client.upload_many import upload_many

MiB = 1 << 20
SIZE = int(os.environ.get("SIZE_MIB", "256")) * MiB
SPY = Path(sys.executable).parent / "py-spy"
TOP = 12
LIST_ENTRIES = 10_000


def record(pid: int, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(SPY), "record", "--pid", str(pid), "--rate", "200",
                             "--format", "raw", "--nonblocking", "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summary(path: Path, label: str, cpu_s: float) -> None:
    own: collections.Counter[str] = collections.Counter()
    modules: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines() if path.exists() else []:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        leaf = stack.split(";")[-1]
        total += int(count)
        own[leaf] += int(count)
        where = leaf.rpartition("(")[2].rstrip(")").rsplit(":", 1)[0]
        parts = where.split("/")
        key = "/".join(parts[parts.index("site-packages") + 1:][:2]) if "site-packages" in parts \
            else "/".join(parts[-2:])
        modules[key] += int(count)
    print(f"  {label}: {cpu_s:.1f} CPU s, {total} samples", flush=True)
    if not total:
        return
    for name, n in modules.most_common(6):
        print(f"    {100 * n / total:5.1f}%  module {name}")
    for name, n in own.most_common(TOP):
        print(f"    {100 * n / total:5.1f}%  {name[:110]}")


def phase(name: str, pids: dict[str, int], work_dir: Path, run: object) -> None:
    spies, before = {}, {}
    for label, pid in pids.items():
        before[label] = cpu(pid)
        spies[label] = (record(pid, work_dir / f"{name}-{label}.txt"))
    time.sleep(1)
    start = time.monotonic()
    client = run()  # type: ignore[operator]
    took = time.monotonic() - start
    spent = {label: cpu(pid) - before[label] for label, pid in pids.items()}
    for spy in spies.values():
        spy.send_signal(signal.SIGINT)
    for spy in spies.values():
        spy.wait(timeout=60)
    print(f"{name}: {took:.1f} s, load {os.getloadavg()[0]:.1f}", flush=True)
    for label in pids:
        summary(work_dir / f"{name}-{label}.txt", label, spent[label])
    if client is not None:
        client_file, client_cpu = client
        summary(client_file, "client (CLI, with its sampler)", client_cpu)


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        with TestCluster(tmp, node_env={"scrub_rate": 0}) as c:
            assert c.api.proc is not None
            pids = {"api": c.api.proc.pid}
            pids.update({n.name: n.proc.pid for n in c.nodes if n.proc is not None})
            time.sleep(3)
            big = tmp / "big.bin"
            big.write_bytes(os.urandom(SIZE))

            def cli(user: User, *args: str, mode: str = "fanout") -> tuple[Path, float]:
                out = tmp / f"client-{user.name}-{args[0]}.txt"
                env = dict(user.env, MINIDROPBOX_REPLICATION=mode)
                cmd = [str(SPY), "record", "--rate", "200", "--format", "raw", "-o", str(out),
                       "--", sys.executable, "-m", "minidropbox", "--server", user.server,
                       "--quiet", *args]
                started = os.times()
                subprocess.run(cmd, env=env, check=True, capture_output=True)
                ended = os.times()
                return out, (ended.children_user - started.children_user
                             + ended.children_system - started.children_system)

            for mode in ("fanout", "chain"):
                user = User(tmp, f"p{mode}", c.url)
                phase(f"upload {SIZE // MiB} MiB, {mode}", pids, tmp,
                      lambda user=user, mode=mode: cli(user, "put", str(big), "/big.bin",
                                                       mode=mode))
            phase(f"download {SIZE // MiB} MiB", pids, tmp,
                  lambda: cli(user, "get", "/big.bin", str(tmp / "got.bin")))
            smalls = []
            for i in range(10):
                p = tmp / f"s{i}"
                p.write_bytes(os.urandom(256 * 1024))
                smalls.append(p)

            # Signed up and logged in before: a password hash (argon2) per login is not
            # part of an upload.
            remotes = [remote(c.url, f"conc{k}", True) for k in range(20)]

            def many() -> None:
                def client(r: Remote) -> None:
                    for i, p in enumerate(smalls):
                        upload_file(r, p, f"/f{i}")
                with concurrent.futures.ThreadPoolExecutor(20) as pool:
                    list(pool.map(client, remotes))

            phase("20 clients x 10 files of 256 KiB", {**pids, "clients": os.getpid()}, tmp,
                  many)
            for r in remotes:
                r.close()
            flat = tmp / "flat"
            flat.mkdir()
            for i in range(LIST_ENTRIES):
                (flat / f"e{i:05}.txt").write_bytes(i.to_bytes(4, "big"))
            with remote(c.url, "lister", True) as r:
                upload_many(r, [UploadItem(flat / f"e{i:05}.txt", f"/flat/e{i:05}.txt", None)
                                for i in range(LIST_ENTRIES)])

                def listing() -> None:
                    for _ in range(20):
                        start = time.perf_counter()
                        body = r.api.request_json("GET", "/api/v1/files/list",
                                                  params={"path": "/flat"})
                        assert len(body["entries"]) == LIST_ENTRIES
                        print(f"    list: {1000 * (time.perf_counter() - start):.0f} ms")

                phase(f"list a folder of {LIST_ENTRIES:,} entries, 20 times",
                      {"api": pids["api"]}, tmp, listing)


if __name__ == "__main__":
    main()
