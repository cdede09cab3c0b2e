"""clipper benchmark suite: issue #13's targets, every clipper figure measured in turns with its baseline.

    .venv/bin/python bench/run.py                       # 3 rounds of 8 s a side, noop/batchy at 1/16/64 conns
    .venv/bin/python bench/run.py --quick               # smoke run: 1 round of 2 s (figures are noisy)
    .venv/bin/python bench/run.py --only torch --rounds 5 --json torch.json

One clipper server (this tree, replicas with ``CLIPPER_NUM_THREADS=1``) serves every scenario; each
scenario's raw baseline (bench/raw_server.py) is up beside it for the whole scenario. For every scenario and
connection count: a warm-up run of wrk on each side, then ``--rounds`` rounds, each a wrk run of
``--duration`` s against every side in turn, the first side changing each round (two sides alternate).
Figures are medians over the rounds with their (min–max); a ratio is the ratio of the medians, with the
spread of the per-round ratios (each round's sides ran within seconds of each other, so the neighbours' load
lands on both). Scenarios:

* ``noop`` (sum of 10 doubles; ``--connections``, default 1,16,64): clipper vs a raw aiohttp+uvloop handler;
* ``batchy`` (5 ms + 0.05 ms per item; ``--connections``): clipper with AIMD batching vs the raw handler
  batching in process; clipper with ``batch_size=1`` measured once a connection count after the rounds;
* ``frameworks`` (16 connections): the scikit-learn model and the torch MLP of bench/frameworks.py through
  their deployers, one input of 64 doubles a request, vs clipper's noop on the same bodies;
* ``torch`` (64 connections): the torch MLP (64-256-256-10, one thread) through the PyTorch deployer vs the
  same model batched in process by the raw handler (``raw_server.py torch-mlp``: max batch 64, 3 ms window);
* ``idle``: CPU of the clipper server process over 20 s with its replicas connected (after the loads).

wrk's bodies differ on every request (post.lua: 10 doubles; post64.lua: 64) so the cache never answers.
Then a table of every figure, and a table of #13's targets: each target's figure from these measurements,
its per-round spread, in how many rounds it held, and whether the median meets it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import models as bench_models  # noqa: E402
from prometheus import scrape  # noqa: E402
from report import print_figures, summary  # noqa: E402
from targets import FRAMEWORKS_CONNS, TORCH_CONNS, evaluate, print_targets  # noqa: E402

POST = HERE / "post.lua"
POST64 = HERE / "post64.lua"
BODY = json.dumps({"input": [float(i) for i in range(1, 11)]})
BODY64 = json.dumps({"input": [(i * 37 % 17) / 16 for i in range(64)]})  # warm-ups and probes of the 64-input models
SCENARIOS = ("noop", "batchy", "frameworks", "torch", "idle")


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
    round: int = 0  # 0: not part of the rounds (measured once)


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk_command(url: str, connections: int, duration: float, script: Path = POST) -> list[str]:
    threads = 1 if connections < 16 else 2
    return ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:.0f}s", "--latency", "--timeout", "5s",
            "-s", str(script), url]


def run_wrk(url: str, connections: int, duration: float, script: Path = POST) -> tuple[float, float, float, int]:
    cmd = wrk_command(url, connections, duration, script)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)$", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)$", out, re.M).group(1))  # type: ignore[union-attr]
    # "Socket errors: connect 0, read 0, write 0, timeout 0" and "Non-2xx or 3xx responses: 12" (with a colon)
    errors = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses:|timeout|read|write|connect) (\d+)", out))
    return rps, p50, p99, errors


def post_json(url: str, body: str) -> Any:
    request = urllib.request.Request(url, data=body.encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def warm(url: str, n: int = 200, body: str = BODY) -> None:
    for _ in range(n):
        post_json(url, body)


class RawServer:
    def __init__(self, kind: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(HERE / "raw_server.py"), kind], stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "PORT":
            self.close()
            raise RuntimeError(f"raw_server.py {kind} did not start (printed {line!r})")
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
        while not post_json(f"http://{addr}/{app}/predict", BODY)["default"]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{app}: the replica never answered")
            time.sleep(0.1)


def deploy_framework_apps(conn: Any, with_sklearn: bool) -> None:
    """Deploy bench/frameworks.py's torch MLP as app ``bench-torch`` (PyTorch deployer) and, ``with_sklearn``,
    its scikit-learn model as ``bench-sklearn`` (predict_proba); AIMD batching, wait until both answer."""
    import frameworks
    from clipper_deployer_pytorch import create_endpoint as torch_endpoint

    addr = conn.get_query_addr()
    apps = ["bench-torch"]
    if with_sklearn:
        from clipper_deployer_sklearn import create_endpoint as sklearn_endpoint

        _x, _direct, trained = frameworks.train()
        sklearn_endpoint(conn, "bench-sklearn", "doubles", sklearn_model=trained["sklearn"], method="predict_proba",
                         slo_micros=1_000_000)
        apps.append("bench-sklearn")
        mlp = trained["torch"]
    else:
        mlp = frameworks.torch_mlp()
    torch_endpoint(conn, "bench-torch", "doubles", pytorch_model=mlp, slo_micros=1_000_000)
    for app in apps:
        frameworks.wait_answered(f"http://{addr}/{app}/predict", BODY64.encode())
    logs = sorted(Path(conn.cm.home, "logs").glob("bench-torch_*.log"))
    threads = re.findall(r"loaded torch \S+ \S+ model with (\d+) thread", "".join(p.read_text() for p in logs))
    if set(threads) != {"1"}:
        raise RuntimeError(f"the bench-torch replica should run one torch thread; its log says {threads}")


def measure_point(addr: str, scenario: str, target: str, url: str, c: int, duration: float,
                  model: str | None = None, app: str | None = None, *, script: Path = POST, body: str = BODY,
                  round_: int = 0) -> Point:
    """One wrk run of ``duration`` s at ``c`` connections against ``url`` (after 100 warm-up requests of
    ``body``; wrk sends ``script``'s bodies); with ``model`` and ``app``, also the mean batch size and default
    ratio from the server at ``addr``."""
    warm(url, 100, body)
    before = scrape(addr) if model else {}
    rps, p50, p99, errors = run_wrk(url, c, duration, script)
    point = Point(scenario, target, c, rps, p50, p99, errors, round=round_)
    if model and app:
        point.batch_mean, point.default_ratio = batch_stats(before, scrape(addr), model, app)
    label = f"r{round_}" if round_ else ""
    print(f"  {scenario:10} {target:16} c={c:<3} {label:4} {rps:9.0f} req/s  p50 {p50:7.2f} ms  "
          f"p99 {p99:7.2f} ms", flush=True)
    return point


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- measuring in turns ------------------------------------------------------------------------------------
@dataclass
class Side:
    """One thing measured in a scenario: a URL, the wrk script and warm-up body it takes, and for a clipper
    app its app and model (for the mean batch size and default ratio)."""

    name: str
    url: str
    app: str | None = None
    model: str | None = None
    script: Path = POST
    body: str = BODY


@dataclass
class Comparison:
    """A scenario at one connection count: each side's runs (one a round) and the extra runs measured once."""

    scenario: str
    connections: int
    baseline: str
    sides: list[str]
    runs: dict[str, list[Point]] = field(default_factory=dict)
    once: list[Point] = field(default_factory=list)

    def values(self, side: str, attr: str) -> list[float]:
        return [float(getattr(p, attr)) for p in self.runs[side]]

    def median(self, side: str, attr: str) -> float:
        return statistics.median(self.values(side, attr))

    def ratio(self, num: str, den: str, attr: str = "rps", den_attr: str | None = None) -> tuple[float, list[float]]:
        """``num``'s ``attr`` over ``den``'s ``den_attr`` (default the same): the ratio of the medians and the
        per-round ratios."""
        den_attr = den_attr or attr
        per_round = [a / b for a, b in zip(self.values(num, attr), self.values(den, den_attr), strict=True)]
        return self.median(num, attr) / self.median(den, den_attr), per_round


def in_turns(addr: str, scenario: str, c: int, sides: list[Side], rounds: int, duration: float, warmup: float,
             once: Iterable[Side] = ()) -> Comparison:
    """Warm each side up at ``c`` connections, then ``rounds`` rounds of a wrk run against every side in turn,
    the first side rotating (two sides alternate); then one run of each of ``once``."""
    comparison = Comparison(scenario, c, sides[0].name, [s.name for s in sides], {s.name: [] for s in sides})
    for side in sides:  # the batch size adapts to this concurrency, caches and pools fill
        warm(side.url, 100, side.body)
        run_wrk(side.url, c, warmup, side.script)
    for r in range(rounds):
        k = r % len(sides)
        for side in sides[k:] + sides[:k]:
            comparison.runs[side.name].append(measure_point(
                addr, scenario, side.name, side.url, c, duration, side.model, side.app, script=side.script,
                body=side.body, round_=r + 1))
    for side in once:
        comparison.once.append(measure_point(addr, scenario, side.name, side.url, c, duration, side.model, side.app,
                                             script=side.script, body=side.body))
    return comparison


@dataclass
class Idle:
    server_pct: float
    replicas_pct: float
    replicas: int
    window_s: float


def measure_idle(pid: int, settle: float, window: float) -> Idle:
    """CPU of the server process ``pid`` (and, apart, of its replica processes) over ``window`` s of no load."""
    from ab import children

    time.sleep(settle)  # let the last load's stragglers settle
    replicas = [p for p in children(pid) if b"clipper_container" in Path(f"/proc/{p}/cmdline").read_bytes()]
    start, replicas_start, t0 = cpu_seconds(pid), sum(cpu_seconds(p) for p in replicas), time.monotonic()
    time.sleep(window)  # measuring idle CPU over a fixed window
    elapsed = time.monotonic() - t0
    return Idle((cpu_seconds(pid) - start) / elapsed * 100,
                (sum(cpu_seconds(p) for p in replicas) - replicas_start) / elapsed * 100, len(replicas), window)


# -- the run -------------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 round of 2 s, 1 s warm-ups, 5 s idle")
    parser.add_argument("--rounds", type=int, default=None, help="rounds a point (default 3; --quick 1)")
    parser.add_argument("--duration", type=float, default=None, help="seconds a wrk run (default 8; --quick 2)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds of wrk warm-up a side and point "
                                                                   "(default 2; --quick 1)")
    parser.add_argument("--connections", default="1,16,64", help="connection counts of noop and batchy "
                        f"(frameworks runs at {FRAMEWORKS_CONNS}, torch at {TORCH_CONNS})")
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated scenarios of {SCENARIOS}")
    parser.add_argument("--json", type=Path, help="also write every point, the comparisons and the targets here")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    rounds = args.rounds or (1 if args.quick else 3)
    duration = args.duration or (2.0 if args.quick else 8.0)
    warmup = args.warmup or (1.0 if args.quick else 2.0)
    conns = [int(c) for c in args.connections.split(",")]
    only = [s for s in SCENARIOS if s in args.only.split(",")]
    if unknown := sorted(set(args.only.split(",")) - set(SCENARIOS)):
        parser.error(f"unknown scenarios {unknown}; known: {SCENARIOS}")
    if rounds < 1 or duration < 1 or warmup < 1 or min(conns) < 1:
        parser.error("--rounds, --duration, --warmup and every connection count must be at least 1")

    import ab  # here, not at the top: ab.py imports this module

    commit = ab.describe(HERE.parent)
    load_start = os.getloadavg()
    home = Path(tempfile.mkdtemp(prefix="clipper-bench-"))
    server = ab.Side("clipper", HERE.parent, home)
    comps: list[Comparison] = []
    idle: Idle | None = None
    started = time.monotonic()
    try:
        server.conn = start_server(home, {"CLIPPER_NUM_THREADS": "1"})
        addr = server.conn.get_query_addr()
        apps = {"noop": ["noop"], "batchy": ["batchy", "batchy-b1"], "frameworks": ["noop"]}
        wanted = [app for scenario in only for app in apps.get(scenario, [])]
        deploy_apps(server.conn, wanted or [app for app, *_ in SETUPS])
        if "frameworks" in only or "torch" in only:
            deploy_framework_apps(server.conn, with_sklearn="frameworks" in only)

        def clipper(name: str, app: str, model: str, script: Path = POST, body: str = BODY) -> Side:
            return Side(name, f"http://{addr}/{app}/predict", app, model, script, body)

        def turns(scenario: str, c: int, sides: list[Side], once: Iterable[Side] = ()) -> None:
            comps.append(in_turns(addr, scenario, c, sides, rounds, duration, warmup, once))

        for scenario in only:
            if scenario == "noop":
                with raw_server("noop") as raw:
                    for c in conns:
                        turns("noop", c, [Side("raw aiohttp", raw.url), clipper("clipper", "noop", "noop")])
            elif scenario == "batchy":
                with raw_server("batchy") as raw:
                    for c in conns:
                        turns("batchy", c, [Side("raw in-process", raw.url),
                                            clipper("clipper AIMD", "batchy", "batchy")],
                              once=[clipper("clipper b=1", "batchy-b1", "batchy1")])
            elif scenario == "frameworks":  # noop on the same 64-double bodies as the two models
                turns("frameworks", FRAMEWORKS_CONNS, [
                    clipper("clipper noop", "noop", "noop", POST64, BODY64),
                    clipper("clipper sklearn", "bench-sklearn", "bench-sklearn", POST64, BODY64),
                    clipper("clipper torch", "bench-torch", "bench-torch", POST64, BODY64)])
            elif scenario == "torch":
                with raw_server("torch-mlp") as raw:
                    check_same_model(raw.url, f"http://{addr}/bench-torch/predict")
                    turns("torch", TORCH_CONNS, [
                        Side("raw in-process", raw.url, script=POST64, body=BODY64),
                        clipper("clipper torch", "bench-torch", "bench-torch", POST64, BODY64)])
            elif scenario == "idle":
                pid = int(json.loads((home / "runtime.json").read_text())["pid"])
                idle = measure_idle(pid, 1.0 if args.quick else 2.0, 5.0 if args.quick else 20.0)
    finally:
        ab.stop(server)
    elapsed = time.monotonic() - started
    results = evaluate({(c.scenario, c.connections): c for c in comps}, idle)
    print(f"\nclipper {commit}; {rounds} round(s) of {duration:.0f} s a side after {warmup:.0f} s warm-ups, the "
          f"first side changing each round; {elapsed:.0f} s in all; load average {load_start[0]:.2f} at the start, "
          f"{os.getloadavg()[0]:.2f} at the end")
    print_figures(comps, idle)
    print_targets(results)
    if args.json:
        report = {"commit": commit, "rounds": rounds, "duration": duration, "warmup": warmup,
                  "loadavg": [load_start[0], os.getloadavg()[0]],
                  "points": [asdict(p) for c in comps for side in c.sides for p in c.runs[side]]
                  + [asdict(p) for c in comps for p in c.once],
                  "comparisons": [summary(c) for c in comps], "idle": asdict(idle) if idle else None,
                  "targets": results}
        args.json.write_text(json.dumps(report, indent=1))
    return 0


@contextlib.contextmanager
def raw_server(kind: str) -> Iterator[RawServer]:
    server = RawServer(kind)
    try:
        yield server
    finally:
        server.close()


def check_same_model(raw_url: str, clipper_url: str) -> None:
    """The raw handler and clipper's replica must be the same MLP: the same logits for one probe."""
    raw, served = post_json(raw_url, BODY64)["output"], post_json(clipper_url, BODY64)["output"]
    if len(raw) != len(served) or max(abs(a - b) for a, b in zip(raw, served, strict=True)) > 1e-4:
        raise RuntimeError(f"the raw torch-mlp and clipper's bench-torch answer differently: {raw} vs {served}")


if __name__ == "__main__":
    sys.exit(main())
