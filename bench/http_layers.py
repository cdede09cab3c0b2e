"""How much the HTTP layer costs a small request (#13 item 1): the same noop handler (parse the JSON, answer
the sum) on three aiohttp + uvloop servers, all up at once, measured with wrk in turns.

* ``app``: ``web.Application`` with a static route, no middleware (bench/run.py's raw baseline);
* ``routed``: ``web.Application`` built as clipper's query app is: the dynamic route ``/{app}/predict`` and
  one middleware;
* ``lowlevel``: aiohttp's low-level ``web.Server``: no application, router or middleware.

    .venv/bin/python bench/http_layers.py [--duration 6] [--rounds 4] [--connections 1,16,64]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import RawServer, run_wrk, warm  # noqa: E402

KINDS = {"app": "noop", "routed": "noop-routed", "lowlevel": "noop-lowlevel"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--connections", default="1,16,64")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    servers = {name: RawServer(kind) for name, kind in KINDS.items()}
    try:
        for name, server in servers.items():
            server.url = server.url.replace("/bench/predict", "/hello/predict") if name != "app" else server.url
            warm(server.url)
        print("| conns | " + " | ".join(f"{n} req/s (min–max)" for n in servers) + " | routed/app | lowlevel/app |")
        print("|---|" + "---|" * (len(servers) + 2))
        for conns in (int(c) for c in args.connections.split(",")):
            runs: dict[str, list[float]] = {name: [] for name in servers}
            for r in range(args.rounds):
                order = list(servers) if r % 2 == 0 else list(reversed(servers))
                for name in order:
                    runs[name].append(run_wrk(servers[name].url, conns, args.duration)[0])
            med = {name: statistics.median(v) for name, v in runs.items()}
            cells = [f"{med[n]:.0f} ({min(runs[n]):.0f}–{max(runs[n]):.0f})" for n in servers]
            print(f"| {conns} | " + " | ".join(cells) + f" | {med['routed'] / med['app']:.3f} | "
                  f"{med['lowlevel'] / med['app']:.3f} |", flush=True)
    finally:
        for server in servers.values():
            server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
