"""clipper benchmark suite: one command, a table of figures, every clipper figure beside its baseline.

    .venv/bin/python bench/run.py                 # full: 15 s a point, 1/16/64 connections
    .venv/bin/python bench/run.py --quick         # 3 s a point (a smoke run, figures are noisy)

Load comes from wrk (Debian package ``wrk``) on loopback, bounded by its duration. Scenarios:

* ``noop``: sum of 10 doubles, clipper vs a raw aiohttp+uvloop handler (the practical limit of a Python
  HTTP frontend here);
* ``batchy`` (5 ms + 0.05 ms per item): clipper with AIMD batching vs the same raw handler batching in
  process, and clipper with ``batch_size=1`` (what batching buys);
* idle CPU of the clipper server process over a few seconds with a replica connected.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import models as bench_models  # noqa: E402
from prometheus import scrape  # noqa: E402

BODY = json.dumps({"input": [float(i) for i in range(1, 11)]})


@dataclass
class Point:
    scenario: str
    target: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    batch_mean: float | None = None
    default_ratio: float | None = None


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk_command(url: str, connections: int, duration: float) -> list[str]:
    threads = 1 if connections < 16 else 2
    return ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:.0f}s", "--latency", "--timeout", "5s",
            "-s", str(HERE / "post.lua"), url]


def run_wrk(url: str, connections: int, duration: float) -> tuple[float, float, float, int]:
    cmd = wrk_command(url, connections, duration)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)$", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)$", out, re.M).group(1))  # type: ignore[union-attr]
    # "Socket errors: connect 0, read 0, write 0, timeout 0" and "Non-2xx or 3xx responses: 12" (with a colon)
    errors = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses:|timeout|read|write|connect) (\d+)", out))
    return rps, p50, p99, errors


def warm(url: str, n: int = 200) -> None:
    for _ in range(n):
        request = urllib.request.Request(url, data=BODY.encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


class RawServer:
    def __init__(self, kind: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(HERE / "raw_server.py"), kind], stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        self.url = f"http://127.0.0.1:{line[1]}/bench/predict"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def batch_stats(before: dict[str, float], after: dict[str, float], model: str, app: str) -> tuple[float, float]:
    labels = f'{{model="{model}",version="1"}}'
    count = after.get(f"clipper_model_batch_size_count{labels}", 0) - before.get(
        f"clipper_model_batch_size_count{labels}", 0)
    total = after.get(f"clipper_model_batch_size_sum{labels}", 0) - before.get(
        f"clipper_model_batch_size_sum{labels}", 0)
    app_labels = f'{{app="{app}"}}'
    preds = after.get(f"clipper_app_predictions_total{app_labels}", 0) - before.get(
        f"clipper_app_predictions_total{app_labels}", 0)
    defaults = after.get(f"clipper_app_default_predictions_total{app_labels}", 0) - before.get(
        f"clipper_app_default_predictions_total{app_labels}", 0)
    return (total / count if count else 0.0), (defaults / preds if preds else 0.0)


# The clipper apps the benchmarks use: (app, model, function, batch_size); -1 = AIMD batching.
SETUPS: list[tuple[str, str, Callable[[Any], list[float]], int]] = [
    ("noop", "noop", bench_models.noop, -1), ("batchy", "batchy", bench_models.batchy, -1),
    ("batchy-b1", "batchy1", bench_models.batchy, 1)]


def start_server(home: Path, extra_env: dict[str, str] | None = None) -> Any:
    """Start a clipper server under ``home`` on free loopback ports and return its ``ClipperConnection``.
    ``extra_env`` is added to the server's environment (its replicas inherit it)."""
    from clipper_core import ClipperConnection, LocalContainerManager

    conn = ClipperConnection(LocalContainerManager(clipper_home=str(home), clipper_query_port=0,
                                                   clipper_management_port=0, clipper_rpc_port=0,
                                                   extra_env=extra_env))
    conn.start_clipper()
    return conn


def deploy_apps(conn: Any, apps: Iterable[str] = ("noop", "batchy", "batchy-b1")) -> None:
    """Register the benchmark apps named in ``apps`` (see SETUPS), deploy and link their models, and wait
    until each answers with its model's output rather than the default."""
    from clipper_core.deployers import python as python_deployer

    wanted = set(apps)
    addr = conn.get_query_addr()
    for app, model, func, batch_size in SETUPS:
        if app not in wanted:
            continue
        conn.register_application(name=app, input_type="doubles", default_output="-1.0", slo_micros=1_000_000)
        python_deployer.deploy_python_closure(conn, name=model, version=1, input_type="doubles", func=func,
                                              batch_size=batch_size)
        conn.link_model_to_app(app_name=app, model_name=model)
    for app, _model, _func, _batch_size in SETUPS:
        if app not in wanted:
            continue
        deadline = time.monotonic() + 60
        while True:
            request = urllib.request.Request(f"http://{addr}/{app}/predict", data=BODY.encode(),
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as response:
                if not json.loads(response.read())["default"]:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{app}: the replica never answered")
            time.sleep(0.1)


def measure_point(addr: str, scenario: str, target: str, url: str, c: int, duration: float,
                  model: str | None = None, app: str | None = None) -> Point:
    """One wrk run of ``duration`` s at ``c`` connections against ``url`` (after 100 warm-up requests); with
    ``model`` and ``app``, also the mean batch size and default ratio from the server at ``addr``."""
    warm(url, 100)
    before = scrape(addr) if model else {}
    rps, p50, p99, errors = run_wrk(url, c, duration)
    point = Point(scenario, target, c, rps, p50, p99, errors)
    if model and app:
        point.batch_mean, point.default_ratio = batch_stats(before, scrape(addr), model, app)
    print(f"  {scenario:7} {target:16} c={c:<3} {rps:9.0f} req/s  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms",
          flush=True)
    return point


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 s a point instead of 15 s")
    parser.add_argument("--duration", type=float, default=None)
    parser.add_argument("--connections", default="1,16,64")
    parser.add_argument("--only", default="noop,batchy,idle", help="comma-separated scenarios")
    parser.add_argument("--json", type=Path, help="also write the points to this file")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    duration = args.duration or (3.0 if args.quick else 15.0)
    conns = [int(c) for c in args.connections.split(",")]
    only = set(args.only.split(","))

    home = Path(tempfile.mkdtemp(prefix="clipper-bench-"))
    conn = start_server(home)
    points: list[Point] = []
    notes: list[str] = []
    try:
        addr = conn.get_query_addr()
        deploy_apps(conn)

        def measure(scenario: str, target: str, url: str, c: int, model: str | None = None,
                    app: str | None = None) -> Point:
            return measure_point(addr, scenario, target, url, c, duration, model, app)

        if "noop" in only:
            raw = RawServer("noop")
            try:
                for c in conns:
                    points.append(measure("noop", "raw aiohttp", raw.url, c))
                    points.append(measure("noop", "clipper", f"http://{addr}/noop/predict", c, "noop", "noop"))
            finally:
                raw.close()
        if "batchy" in only:
            raw = RawServer("batchy")
            try:
                for c in conns:
                    points.append(measure("batchy", "raw in-process", raw.url, c))
                    points.append(measure("batchy", "clipper AIMD", f"http://{addr}/batchy/predict", c,
                                          "batchy", "batchy"))
                    points.append(measure("batchy", "clipper b=1", f"http://{addr}/batchy-b1/predict", c,
                                          "batchy1", "batchy-b1"))
            finally:
                raw.close()
        if "idle" in only:
            pid = json.loads((home / "runtime.json").read_text())["pid"]
            time.sleep(2.0)  # let the last load's stragglers settle
            start, t0 = cpu_seconds(pid), time.monotonic()
            time.sleep(20.0)  # measuring idle CPU over a fixed window
            idle = (cpu_seconds(pid) - start) / (time.monotonic() - t0) * 100
            notes.append(f"idle frontend CPU: {idle:.2f}% of one core over 20 s (3 replicas connected)")
    finally:
        conn.stop_all()
        shutil.rmtree(home, ignore_errors=True)
    print_table(points, notes)
    if args.json:
        args.json.write_text(json.dumps([p.__dict__ for p in points], indent=1))
    return 0


def print_table(points: list[Point], notes: list[str]) -> None:
    baseline = {(p.scenario, p.connections): p.rps for p in points if p.target.startswith("raw")}
    print()
    print("| scenario | target | conns | req/s | p50 ms | p99 ms | ratio to baseline | mean batch | default ratio "
          "| errors |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for p in points:
        base = baseline.get((p.scenario, p.connections))
        ratio = f"{p.rps / base:.2f}" if base and not p.target.startswith("raw") else "-"
        batch = f"{p.batch_mean:.1f}" if p.batch_mean else "-"
        default = f"{p.default_ratio:.3f}" if p.default_ratio is not None else "-"
        print(f"| {p.scenario} | {p.target} | {p.connections} | {p.rps:.0f} | {p.p50_ms:.2f} | {p.p99_ms:.2f} | "
              f"{ratio} | {batch} | {default} | {p.errors} |")
    b1 = {p.connections: p.rps for p in points if p.target == "clipper b=1"}
    aimd = {p.connections: p.rps for p in points if p.target == "clipper AIMD"}
    for c in sorted(set(b1) & set(aimd)):
        print(f"AIMD / batch_size=1 throughput at {c} connections: {aimd[c] / b1[c]:.1f}x")
    for note in notes:
        print(note)


if __name__ == "__main__":
    sys.exit(main())
