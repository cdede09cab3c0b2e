"""IPC vs TCP between the frontend and its local replicas: two servers of this tree, one with ``CLIPPER_RPC_IPC=1``
(the default), one with ``CLIPPER_RPC_IPC=0``, served at once and measured in turns like ``ab.py``.

    .venv/bin/python bench/ipc.py                      # noop, 8 s a run, 4 rounds, 1 and 16 connections

Each round runs wrk against one server then the other (the side that goes first alternates). Printed per
connection count: req/s median (min-max) of each side, the ipc/tcp ratio of the medians with its per-round
spread, and the medians of p50 and p99. Which transport each server's replica uses is checked in its log.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import Point, deploy_apps, measure_point, start_server  # noqa: E402

SIDES = {"ipc": "1", "tcp": "0"}


def transport(home: Path) -> str:
    """The scheme of the address the noop replica was welcomed on (from its log)."""
    found = [m for log in (home / "logs").glob("noop_*.log")
             for m in re.findall(r"WELCOME from (\w+)://", log.read_text())]
    return ",".join(sorted(set(found))) or "?"


def report(c: int, runs: dict[str, list[Point]]) -> str:
    def med(side: str, attr: str) -> float:
        return statistics.median(getattr(p, attr) for p in runs[side])

    ratios = [a.rps / b.rps for a, b in zip(runs["ipc"], runs["tcp"], strict=True)]
    sides = "; ".join(f"{side} {med(side, 'rps'):.0f} ({min(p.rps for p in runs[side]):.0f}-"
                      f"{max(p.rps for p in runs[side]):.0f}) req/s, p50 {med(side, 'p50_ms'):.2f} ms, "
                      f"p99 {med(side, 'p99_ms'):.2f} ms, mean batch {med(side, 'batch_mean'):.2f}" for side in SIDES)
    return (f"noop c={c}: {sides}; ipc/tcp {med('ipc', 'rps') / med('tcp', 'rps'):.2f} "
            f"(rounds {min(ratios):.2f}-{max(ratios):.2f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--connections", default="1,16")
    args = parser.parse_args()
    homes = {side: Path(tempfile.mkdtemp(prefix=f"clipper-ipc-{side}-")) for side in SIDES}
    conns: dict[str, Any] = {}
    lines: list[str] = []
    try:
        for side, flag in SIDES.items():
            conns[side] = start_server(homes[side], {"CLIPPER_RPC_IPC": flag})
            deploy_apps(conns[side], ("noop",))
        used = {side: transport(homes[side]) for side in SIDES}
        print(f"replicas welcomed over: {used}", flush=True)
        if used != {"ipc": "ipc", "tcp": "tcp"}:
            raise SystemExit(f"unexpected transports {used}")
        for c in (int(x) for x in args.connections.split(",")):
            runs: dict[str, list[Point]] = {side: [] for side in SIDES}
            for side in SIDES:  # a warm-up run on each side
                measure_point("", "noop", f"warm-{side}", _url(conns[side]), c, min(3.0, args.duration))
            for r in range(args.rounds):
                order = list(SIDES) if r % 2 == 0 else list(reversed(SIDES))
                for side in order:
                    runs[side].append(measure_point(conns[side].get_query_addr(), "noop", side, _url(conns[side]),
                                                    c, args.duration, "noop", "noop"))
            lines.append(report(c, runs))
            print(lines[-1], flush=True)
    finally:
        for conn in conns.values():
            conn.stop_all()
        for home in homes.values():
            shutil.rmtree(home, ignore_errors=True)
    print("\n".join(["", *lines]))
    return 0


def _url(conn: Any) -> str:
    return f"http://{conn.get_query_addr()}/noop/predict"


if __name__ == "__main__":
    sys.exit(main())
