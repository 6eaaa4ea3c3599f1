"""How the R copies of an upload are best written, on one cluster in one run: the client sends
each chunk to every node (fan-out) or once, to the first node, which passes it on (chain).
``python -m bench.chain_vs_fanout`` (``SIZE_MIB=256``, ``ROUNDS=3``): the two alternate, each
round with fresh bytes and a fresh account (nothing dedups), and the client's and the nodes'
CPU seconds are read from /proc."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from tests.harness import TestCluster

from bench.direct_vs_proxy import cpu, remote
from minidropbox.client.upload import upload_file

MiB = 1 << 20
SIZE = int(os.environ.get("SIZE_MIB", "256")) * MiB
ROUNDS = int(os.environ.get("ROUNDS", "3"))


def main() -> None:
    speeds: dict[str, list[float]] = {"fanout": [], "chain": []}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        with TestCluster(tmp, node_env={"scrub_rate": 0}) as c:
            node_pids = [n.proc.pid for n in c.nodes if n.proc is not None]
            time.sleep(3)  # the first health probes: the API learns the nodes' ids
            for round_ in range(ROUNDS):
                for label in (("fanout", "chain") if round_ % 2 == 0 else ("chain", "fanout")):
                    src = tmp / "src.bin"
                    src.write_bytes(os.urandom(SIZE))
                    with remote(c.url, f"{label}{round_}", True) as r:
                        r.chain = label == "chain"
                        nodes0, me0 = sum(cpu(p) for p in node_pids), cpu(os.getpid())
                        start = time.monotonic()
                        upload_file(r, src, "/big.bin")
                        took = time.monotonic() - start
                        nodes_cpu = sum(cpu(p) for p in node_pids) - nodes0
                        client_cpu = cpu(os.getpid()) - me0
                    speeds[label].append(SIZE / MiB / took)
                    print(f"round {round_} {label}: {SIZE / MiB / took:.1f} MiB/s, client CPU "
                          f"{client_cpu:.1f} s, nodes CPU {nodes_cpu:.1f} s, load "
                          f"{os.getloadavg()[0]:.1f}", flush=True)
    fan, chain = (statistics.median(speeds[k]) for k in ("fanout", "chain"))
    print(f"median: fan-out {fan:.1f} MiB/s, chain {chain:.1f} MiB/s, "
          f"chain / fan-out {chain / fan:.2f}")


if __name__ == "__main__":
    main()
