"""Overload drill: offer about twice a model's capacity for 60 s, then half of it, and watch clipper.

    .venv/bin/python bench/overload.py            # 60 s overload + 20 s recovery
    .venv/bin/python bench/overload.py --quick    # 15 s + 10 s

An open-loop generator (asyncio + aiohttp, requests sent on a fixed schedule whatever the answers, each
bounded by a 5 s timeout) drives one app whose model costs 4 ms per input (250 inputs/s, batching cannot
help). Every 5 s window prints the offered rate, the answers (served, default output, 503 refused), the p99
of served requests and the server's resident memory: admission control should keep RSS flat and answer the
excess with fast 503s, and p99 should recover as soon as the load drops.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import models as bench_models  # noqa: E402


@dataclass
class Window:
    start: float
    offered: int = 0
    served: int = 0
    defaults: int = 0
    refused: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    rss_mb: float = 0.0

    def p99_ms(self) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def drive(url: str, phases: list[tuple[float, float]], pid: int, window_s: float = 5.0) -> list[Window]:
    windows: list[Window] = []
    started = time.monotonic()
    pending: set[asyncio.Task[None]] = set()
    counter = iter(range(10**9))

    def window_at(t: float) -> Window:
        index = int((t - started) // window_s)
        while len(windows) <= index:
            windows.append(Window(start=len(windows) * window_s))
        return windows[index]

    async def one(session: aiohttp.ClientSession, sent: float) -> None:
        win = window_at(sent)
        body = json.dumps({"input": [float(next(counter)), 2.0, 3.0]}).encode()  # distinct: no cache hits
        try:
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
                answer = await response.json()
                if response.status == 503:
                    win.refused += 1
                elif response.status == 200 and answer.get("default"):
                    win.defaults += 1
                elif response.status == 200:
                    win.served += 1
                    win.latencies.append(time.monotonic() - sent)
                else:
                    win.errors += 1
        except (aiohttp.ClientError, asyncio.TimeoutError):
            win.errors += 1

    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=2000)) as session:
        t = started
        for rate, duration in phases:
            end = t + duration
            interval = 1.0 / rate
            while t < end:
                now = time.monotonic()
                if t > now:
                    await asyncio.sleep(t - now)  # open-loop schedule: the next send time
                window_at(t).offered += 1
                task = asyncio.create_task(one(session, t))
                pending.add(task)
                task.add_done_callback(pending.discard)
                t += interval
                win = window_at(time.monotonic())
                if not win.rss_mb:
                    win.rss_mb = rss_mb(pid)
        await asyncio.gather(*pending)
    return windows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    overload_s, recover_s = (15.0, 10.0) if args.quick else (60.0, 20.0)

    from clipper_core import ClipperConnection, LocalContainerManager
    from clipper_core.deployers import python as python_deployer

    home = Path(tempfile.mkdtemp(prefix="clipper-overload-"))
    conn = ClipperConnection(LocalContainerManager(clipper_home=str(home), clipper_query_port=0,
                                                   clipper_management_port=0, clipper_rpc_port=0))
    conn.start_clipper()
    try:
        # The prediction cache is off: every input is distinct, and a filling (bounded) cache would hide a leak.
        conn.register_application("over", "doubles", "-1.0", 200_000, cache_enabled=False)
        python_deployer.deploy_python_closure(conn, name="capped", version=1, input_type="doubles",
                                              func=bench_models.capped)
        conn.link_model_to_app("over", "capped")
        url = f"http://{conn.get_query_addr()}/over/predict"
        pid = json.loads((home / "runtime.json").read_text())["pid"]
        capacity = 250.0
        asyncio.run(drive(url, [(50.0, 3.0)], pid))  # warm-up: replica connected, per-input cost learnt
        phases = [(2 * capacity, overload_s), (0.5 * capacity, recover_s)]
        windows = asyncio.run(drive(url, phases, pid))
    finally:
        conn.stop_all()
        shutil.rmtree(home, ignore_errors=True)
    print(f"\nmodel capacity ≈ {capacity:.0f} inputs/s; offered 2x for {overload_s:.0f} s, then 0.5x for "
          f"{recover_s:.0f} s; SLO 200 ms\n")
    print("| window (s) | offered/s | served | default | 503 | errors | p99 served (ms) | server RSS (MB) |")
    print("|---|---|---|---|---|---|---|---|")
    for w in windows:
        span = 5.0
        print(f"| {w.start:.0f}-{w.start + span:.0f} | {w.offered / span:.0f} | {w.served} | {w.defaults} | "
              f"{w.refused} | {w.errors} | {w.p99_ms():.1f} | {w.rss_mb:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
