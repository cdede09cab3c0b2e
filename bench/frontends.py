"""Do two query frontends beat one on this machine? noop model, wrk at 16 and 64 connections.

    .venv/bin/python bench/frontends.py [--duration 10]

Starts clipper with 1, then 2 frontend processes (SO_REUSEPORT, managed Redis), deploys the noop model and
prints req/s and latency for each, side by side in one run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import models as bench_models  # noqa: E402
from run import BODY, run_wrk  # noqa: E402


def measure(frontends: int, connections: list[int], duration: float) -> list[tuple[int, int, float, float, float]]:
    from clipper_core import ClipperConnection, LocalContainerManager
    from clipper_core.deployers import python as python_deployer

    home = Path(tempfile.mkdtemp(prefix="clipper-frontends-"))
    conn = ClipperConnection(LocalContainerManager(clipper_home=str(home), clipper_query_port=0,
                                                   clipper_management_port=0, clipper_rpc_port=0))
    conn.start_clipper(num_frontend_replicas=frontends)
    rows = []
    try:
        conn.register_application("noop", "doubles", "-1.0", 1_000_000)
        python_deployer.deploy_python_closure(conn, name="noop", version=1, input_type="doubles",
                                              func=bench_models.noop)
        conn.link_model_to_app("noop", "noop")
        url = f"http://{conn.get_query_addr()}/noop/predict"
        deadline = time.monotonic() + 60
        while len(conn.get_all_model_replicas()) < frontends:  # the replica joined every frontend
            if time.monotonic() > deadline:
                raise RuntimeError("replica did not join every frontend")
            time.sleep(0.1)
        for _ in range(200):
            request = urllib.request.Request(url, data=BODY.encode(), headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as response:
                json.loads(response.read())
        for c in connections:
            rps, p50, p99, _ = run_wrk(url, c, duration)
            rows.append((frontends, c, rps, p50, p99))
            print(f"  frontends={frontends} c={c}: {rps:.0f} req/s p50 {p50:.2f} ms p99 {p99:.2f} ms", flush=True)
    finally:
        conn.stop_all()
        shutil.rmtree(home, ignore_errors=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    rows = measure(1, [16, 64], args.duration) + measure(2, [16, 64], args.duration)
    one = {c: rps for f, c, rps, _, _ in rows if f == 1}
    print("\n| frontends | conns | req/s | p50 ms | p99 ms | vs 1 frontend |\n|---|---|---|---|---|---|")
    for f, c, rps, p50, p99 in rows:
        print(f"| {f} | {c} | {rps:.0f} | {p50:.2f} | {p99:.2f} | {rps / one[c]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
