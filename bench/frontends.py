"""Do two query frontends beat one on this machine? noop model, wrk at 16 and 64 connections.

    .venv/bin/python bench/frontends.py [--duration 5] [--rounds 3] [--no-redis]

Starts, side by side: clipper with one frontend (one process, SQLite), with 2 frontend processes sharing the
port (SO_REUSEPORT) over the shared SQLite file, and (unless --no-redis, or without redis-server) with 2
frontends over a Redis started for the run. Each gets the noop model; then wrk runs against each in turns (every
round visits every setup at each connection count), so drift of the machine (other benchmarks, thermal) hits
all alike. Prints req/s and latency per run, then the medians.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import models as bench_models  # noqa: E402
from run import run_wrk, warm  # noqa: E402


@dataclass
class Setup:
    label: str
    frontends: int
    state_store: str | None
    home: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="clipper-frontends-")))
    conn: Any = None
    url: str = ""
    runs: dict[int, list[tuple[float, float, float]]] = field(default_factory=dict)

    def start(self) -> None:
        from clipper_core import ClipperConnection, LocalContainerManager
        from clipper_core.deployers import python as python_deployer

        self.conn = conn = ClipperConnection(LocalContainerManager(
            clipper_home=str(self.home), clipper_query_port=0, clipper_management_port=0, clipper_rpc_port=0))
        conn.start_clipper(num_frontend_replicas=self.frontends, state_store=self.state_store)
        conn.register_application("noop", "doubles", "-1.0", 1_000_000)
        python_deployer.deploy_python_closure(conn, name="noop", version=1, input_type="doubles",
                                              func=bench_models.noop)
        conn.link_model_to_app("noop", "noop")
        self.url = f"http://{conn.get_query_addr()}/noop/predict"
        deadline = time.monotonic() + 60
        while len(conn.get_all_model_replicas()) < self.frontends:  # the replica joined every frontend
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.label}: the replica did not join every frontend")
            time.sleep(0.1)  # polling other processes, bounded
        warm(self.url, 400)

    def stop(self) -> None:
        if self.conn is not None:
            self.conn.stop_all()
        shutil.rmtree(self.home, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", default="16,64")
    parser.add_argument("--no-redis", action="store_true")
    args = parser.parse_args()
    connections = [int(c) for c in args.connections.split(",")]
    setups = [Setup("1 frontend (SQLite)", 1, None), Setup("2 frontends, SQLite", 2, None)]
    redis = None
    if not args.no_redis and shutil.which("redis-server"):
        from clipper_core.testing import RedisServer

        redis = RedisServer(Path(tempfile.mkdtemp(prefix="clipper-frontends-redis-")))
        redis.start()
        setups.append(Setup("2 frontends, Redis", 2, redis.url))
    try:
        for setup in setups:
            setup.start()
        for round_ in range(args.rounds):
            for c in connections:
                for setup in setups:
                    rps, p50, p99, errors = run_wrk(setup.url, c, args.duration)
                    setup.runs.setdefault(c, []).append((rps, p50, p99))
                    print(f"  round {round_ + 1} {setup.label} c={c}: {rps:.0f} req/s p50 {p50:.2f} ms "
                          f"p99 {p99:.2f} ms errors {errors}", flush=True)
    finally:
        for setup in setups:
            setup.stop()
        if redis is not None:
            redis.stop()
            shutil.rmtree(redis.directory, ignore_errors=True)
    print(f"\nmedians of {args.rounds} runs of {args.duration:g} s each, taken in turns\n")
    print("| setup | conns | req/s | p50 ms | p99 ms | vs 1 frontend |\n|---|---|---|---|---|---|")
    base = {c: statistics.median(r[0] for r in setups[0].runs[c]) for c in connections}
    for c in connections:
        for setup in setups:
            rps, p50, p99 = (statistics.median(r[i] for r in setup.runs[c]) for i in range(3))
            print(f"| {setup.label} | {c} | {rps:.0f} | {p50:.2f} | {p99:.2f} | {rps / base[c]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
