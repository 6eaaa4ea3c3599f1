"""``make bench``: a fresh cluster and the peers, every scenario, one table and one JSON file.

    python -m bench [--quick] [--runs N]
                    [--only upload,small,delta,concurrent,sync,syncbulk,rss5g,dav,dav5g,s3,web]

Each figure is the median of ``--runs`` runs (default 3) with min and max shown; ratios are
ours divided by the peer's, measured in the same run on the same machine.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench.dav import DAV_SCENARIOS
from bench.peers import Nginx, Rclone, ensure_tools
from bench.s3 import S3_SCENARIOS
from bench.scenarios import SCENARIOS, Context, Row
from bench.system import System
from bench.web import WEB_SCENARIOS

RESULTS = Path(__file__).parent / "results" / "latest.json"
SCENARIOS = {**SCENARIOS, **DAV_SCENARIOS, **S3_SCENARIOS, **WEB_SCENARIOS}
LONG = ("rss5g", "dav5g")  # left out of --quick


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes: a smoke run of about a minute")
    parser.add_argument("--only", default="", help="comma-separated scenarios: "
                        + ",".join(SCENARIOS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--big-mib", type=int, default=None, help="big-file size (MiB)")
    parser.add_argument("--small-files", type=int, default=None)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    big = args.big_mib or (64 if args.quick else 1024)
    small = args.small_files or (500 if args.quick else 10_000)
    chosen = [s for s in args.only.split(",") if s] or [
        s for s in SCENARIOS if not (args.quick and s in LONG)]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")

    tools = ensure_tools()
    rows: list[Row] = []
    failures: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="minidropbox-bench-") as tmp:
        workdir = Path(tmp)
        print(f"bench: starting a cluster and peers under {workdir} ...", file=sys.stderr)
        system = System(workdir)
        ctx = Context(workdir, system, args.runs, big, small, tools, quick=args.quick)
        try:
            if tools.get("nginx") and tools.get("curl"):
                ctx.nginx = Nginx(workdir)
            if tools.get("rclone"):
                ctx.rclone = Rclone(workdir)
            for name in chosen:
                print(f"bench: {name} ...", file=sys.stderr)
                started = time.monotonic()
                try:
                    rows += SCENARIOS[name](ctx)
                except Exception as exc:
                    failures[name] = f"{type(exc).__name__}: {exc}"
                    traceback.print_exc()
                print(f"bench: {name} took {time.monotonic() - started:.0f} s", file=sys.stderr)
        finally:
            for peer in (ctx.nginx, ctx.rclone):
                if peer is not None:
                    peer.stop()
            system.stop()
    print(render(rows, failures, tools))
    write_json(args.output, rows, failures, tools, big, small, args.runs)
    return 1 if failures else 0


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def render(rows: list[Row], failures: dict[str, str], tools: dict[str, bool]) -> str:
    lines = ["| scenario | unit | us (median) | min – max | peer | peer (median) | ratio | bar |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        spread = f"{_fmt(min(r.samples))} – {_fmt(max(r.samples))}" if r.samples else "–"
        ratio = f"{r.ratio:.2f}×" if r.ratio is not None else "–"
        lines.append(f"| {r.scenario} | {r.unit} | {_fmt(r.us)} | {spread} | {r.peer or '–'} | "
                     f"{_fmt(r.peer_value)} | {ratio} | {r.bar} |")
    for name, why in failures.items():
        lines.append(f"| {name} | – | failed: {why} | | | | | |")
    absent = [t for t, ok in tools.items() if not ok]
    if absent:
        lines.append(f"\nPeers not available on this machine: {', '.join(absent)}.")
    lines.append(f"\n{platform.node()} · {platform.python_version()} · "
                 f"{time.strftime('%Y-%m-%d %H:%M')}")
    return "\n".join(lines)


def write_json(path: Path, rows: list[Row], failures: dict[str, str], tools: dict[str, bool],
               big: int, small: int, runs: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "runs": runs, "big_mib": big,
        "small_files": small, "tools": tools, "failures": failures,
        "rows": [{"scenario": r.scenario, "unit": r.unit, "us": r.us, "samples": r.samples,
                  "peer": r.peer, "peer_value": r.peer_value, "peer_samples": r.peer_samples,
                  "ratio": r.ratio, "bar": r.bar} for r in rows],
    }
    path.write_text(json.dumps(data, indent=2, default=lambda v: None) + "\n")


if __name__ == "__main__":
    sys.exit(main())
