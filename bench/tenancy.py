"""What API keys and rate limits cost the served traffic (issue #18), in one run.

    .venv/bin/python bench/tenancy.py                     # 6 rounds of 6 s a scenario, 16 connections
    .venv/bin/python bench/tenancy.py --rounds 4 --duration 5 --connections 16,64 --json out.json

One server of this tree on free loopback ports, model ``noop`` (bench/models.py) linked to two apps (SLO 1 s):

* ``open``: app ``noop``, no key, no limits (no guard: the query path's usual case);
* ``keyed``: app ``noop-keyed``, ``require_api_key`` and a generous rate limit on the app (10⁶ requests/s and
  inputs/s; with ``--every-limit`` also 10⁵ concurrent queries on the app and 10⁶ requests/s and 10⁵ concurrent
  on its key: two quotas a query); every request sends the key in ``X-API-Key``
  (bench/post.lua with CLIPPER_BENCH_KEY set: its bodies differ, none is answered from the cache).

Each round runs wrk against one scenario then the other (the first alternating), so the machine's drift lands on
both. Printed: req/s, p50 and p99 medians over the rounds (min–max), the keyed/open ratio of the medians with the
per-round ratios' spread, and the CPU µs a request of the server and its replica (less moved by a busy machine
than req/s), with the target: keyed ≥ 0.95× open's req/s. A keyed run with any non-2xx answer is an error.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ab import children  # noqa: E402
from run import cpu_seconds, deploy_apps, run_wrk, start_server  # noqa: E402

KEYED_SCRIPT = HERE / "post.lua"  # with CLIPPER_BENCH_KEY set, it sends X-API-Key
GENEROUS = {"requests_per_second": 1e6, "inputs_per_second": 1e6}
KEY_LIMITS = {"requests_per_second": 1e6, "max_concurrent": 100_000}


@dataclass
class Run:
    scenario: str
    connections: int
    round: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float


@dataclass
class Point:
    connections: int
    runs: dict[str, list[Run]] = field(default_factory=lambda: {"open": [], "keyed": []})

    def median(self, scenario: str, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.runs[scenario])

    def ratios(self) -> list[float]:
        return [k.rps / o.rps for k, o in zip(self.runs["keyed"], self.runs["open"], strict=True)]


def server_cpu(home: Path) -> float:
    pid = int(json.loads((home / "runtime.json").read_text())["pid"])
    return sum(cpu_seconds(p) for p in [pid, *children(pid)] if Path(f"/proc/{p}").exists())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--duration", type=int, default=6, help="seconds a wrk run (default 6)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", default="16")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--every-limit", action="store_true",
                        help="a concurrency cap on the app, and the key's own rate and cap too (two quotas a query)")
    parser.add_argument("--open-sends-key", action="store_true",
                        help="the open runs send the key too (the app ignores it): what the header itself costs")
    args = parser.parse_args()
    conns = [int(c) for c in args.connections.split(",")]
    home = Path(tempfile.mkdtemp(prefix="clipper-bench-tenancy-"))
    conn = start_server(home)
    points: list[Point] = []
    try:
        deploy_apps(conn, ["noop"])
        conn.register_application(name="noop-keyed", input_type="doubles", default_output="-1.0",
                                  slo_micros=1_000_000)
        conn.link_model_to_app(app_name="noop-keyed", model_name="noop")
        limits = {**GENEROUS, "max_concurrent": 100_000} if args.every_limit else GENEROUS
        conn.set_app_limits("noop-keyed", require_api_key=True, limits=limits)
        key = conn.create_api_key("noop-keyed", "bench", **(KEY_LIMITS if args.every_limit else {}))["api_key"]
        addr = conn.get_query_addr()
        urls = {"open": f"http://{addr}/noop/predict", "keyed": f"http://{addr}/noop-keyed/predict"}
        scripts = {"open": HERE / "post.lua", "keyed": KEYED_SCRIPT}

        def wrk(scenario: str, c: int, seconds: float) -> tuple[float, float, float, int]:
            os.environ.pop("CLIPPER_BENCH_KEY", None)
            if scenario == "keyed" or args.open_sends_key:  # post.lua sends it in X-API-Key
                os.environ["CLIPPER_BENCH_KEY"] = key
            return run_wrk(urls[scenario], c, seconds, scripts[scenario])

        time.sleep(1.0)  # the snapshot has the key
        for c in conns:
            point = Point(c)
            for scenario in ("open", "keyed"):
                wrk(scenario, c, args.warmup)
            for r in range(args.rounds):
                for scenario in ("open", "keyed") if r % 2 == 0 else ("keyed", "open"):
                    before = server_cpu(home)
                    rps, p50, p99, errors = wrk(scenario, c, args.duration)
                    used = server_cpu(home) - before
                    run = Run(scenario, c, r + 1, rps, p50, p99, errors, used * 1e6 / max(1.0, rps * args.duration))
                    point.runs[scenario].append(run)
                    print(f"  {scenario:6} c={c:<3} r{r + 1}  {rps:9.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
                          f"  {run.cpu_us:5.0f} CPU µs/req  errors {errors}", flush=True)
            points.append(point)
        metrics = warm_check(urls["keyed"], key)
    finally:
        conn.stop_all()
    print()
    print(f"{args.rounds} rounds of {args.duration} s a scenario, the first alternating; medians over the rounds")
    print()
    print("| conns | open req/s (min–max) | keyed req/s (min–max) | keyed/open | per-round | open p50/p99 ms "
          "| keyed p50/p99 ms | CPU µs/req open / keyed | target ≥ 0.95× |")
    print("|---|---|---|---|---|---|---|---|---|")
    failed = False
    for p in points:
        ratio = p.median("keyed", "rps") / p.median("open", "rps")
        rr = p.ratios()
        spread = {s: (min(r.rps for r in p.runs[s]), max(r.rps for r in p.runs[s])) for s in p.runs}
        print(f"| {p.connections} | {p.median('open', 'rps'):.0f} ({spread['open'][0]:.0f}–{spread['open'][1]:.0f}) "
              f"| {p.median('keyed', 'rps'):.0f} ({spread['keyed'][0]:.0f}–{spread['keyed'][1]:.0f}) | {ratio:.3f} "
              f"| {min(rr):.3f}–{max(rr):.3f} | {p.median('open', 'p50_ms'):.2f} / {p.median('open', 'p99_ms'):.2f} "
              f"| {p.median('keyed', 'p50_ms'):.2f} / {p.median('keyed', 'p99_ms'):.2f} "
              f"| {p.median('open', 'cpu_us'):.0f} / {p.median('keyed', 'cpu_us'):.0f} "
              f"| {'met' if ratio >= 0.95 else 'missed'} |")
        failed |= any(r.errors for r in p.runs["keyed"])
    print(f"\nafter the runs: {metrics}")
    if args.json:
        args.json.write_text(json.dumps([{"connections": p.connections,
                                          "runs": {s: [asdict(r) for r in rs] for s, rs in p.runs.items()}}
                                         for p in points], indent=1))
    if failed:
        print("error: keyed runs had non-2xx answers or socket errors", file=sys.stderr)
        return 1
    return 0


def warm_check(url: str, key: str) -> str:
    """That the keyed app refuses a request without its key and answers one with it (what the runs measured)."""
    import urllib.error
    import urllib.request

    body = b'{"input": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]}'
    try:
        urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=10)
        without = "answered (wrong: the app requires a key)"
    except urllib.error.HTTPError as exc:
        without = f"{exc.code} without the key"
    with urllib.request.urlopen(urllib.request.Request(url, data=body, headers={"X-API-Key": key}),
                                timeout=10) as response:
        answer: Any = json.loads(response.read())
    return f"{without}; with it: {answer}"


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
