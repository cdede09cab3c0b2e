"""Safe rollouts under load: what a canary and a shadow rollout cost the served traffic, in one run.

    .venv/bin/python bench/rollout.py                          # 4 rounds of 6 s a scenario, 16 connections
    .venv/bin/python bench/rollout.py --rounds 2 --duration 3 --json out.json
    .venv/bin/python bench/rollout.py --profile none,shadow    # then py-spy of the server under each

One server of this tree on free loopback ports. Model ``noop`` (bench/models.py, the noop of the other benches)
version 1 is current, linked to app ``noop`` (SLO 1 s); version 2 is deployed with ``make_current=False``: a
closure that sleeps 5 ms per batch (``time.sleep(0.005)`` once a call) and returns noop's outputs. Scenarios:

* ``none``: no rollout;
* ``canary``: ``start_rollout("noop", 2, mode="canary", steps=[50])``: half of the queries answered by version 2;
* ``shadow``: ``start_rollout("noop", 2, mode="shadow", steps=[100])``: every query mirrored to version 2, answered
  by version 1.

Both rollouts with a step of a week, ``min_queries_per_step`` 10⁹ and the guards off (``max_error_rate=None``,
``max_default_rate=None``), so none ends by itself during a run. Each measurement: start the scenario's rollout,
100 requests and a ``--warmup`` s wrk run, the measured wrk run (post.lua: every body differs, so the prediction
cache answers none), ``get_rollout`` ~1.5 s later (the frontend's load report reaches the controller about once a
second), then ``abort_rollout``. Every round measures each scenario once, the order reversed every other round
(as ab.py alternates its sides), so the machine's drift lands on every scenario alike. Printed: per scenario the
median req/s, p50 and p99 over the rounds (min–max), the ratios of the medians to ``none`` with the per-round
ratios' spread, the targets (canary and shadow each ≥ 0.9× none's req/s and p99 ≤ 1.2× none's), and per rollout
measurement what the versions did: outputs of each version over the measured window (/metrics), and the
candidate's step figures from ``get_rollout`` (queries mirrored, dropped, compared, agreement, p99), with a warning
when those count more queries than the frontend took since that rollout started (an earlier rollout's counts).

The machine is shared: each measurement also records the CPU the rest of the machine used meanwhile (busy time
from /proc/stat less this benchmark's processes: the server, its replicas, this script and wrk), and the targets
are evaluated again over the *quiet* rounds only (the neighbours under ``--quiet-pct``, 15% of a core, in each of
the round's measurements). ``--env KEY=VALUE`` adds to the server's environment, e.g.
``CLIPPER_RECENT_PREDICTIONS=0``. The server and its replicas are stopped at the end, on errors, on Ctrl-C and
on SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import ab  # noqa: E402
from prometheus import scrape  # noqa: E402
from run import cpu_seconds, deploy_apps, run_wrk, start_server, warm, wrk_command  # noqa: E402
from spy import Profile, profile_under_load  # noqa: E402

MODEL = "noop"
APP = "noop"
CANDIDATE = "2"
CANDIDATE_SLEEP_S = 0.005
SCENARIOS = ("none", "canary", "shadow")
STEPS = {"canary": [50.0], "shadow": [100.0]}
WEEK_S = 7 * 24 * 3600.0  # the longest step the settings accept
NEVER = 10**9  # min_queries_per_step: the step never passes
REPORT_LAG_S = 1.5  # a frontend publishes its load report about once a second
RPS_TARGET = 0.9
P99_TARGET = 1.2


def slow_noop(sleep_s: float) -> Callable[[Any], list[float]]:
    """The candidate: noop's outputs after ``sleep_s`` per batch (one sleep a call, whatever the batch size)."""

    def predict(xs: Any) -> list[float]:
        time.sleep(sleep_s)
        return [float(x.sum()) for x in xs]

    return predict


@dataclass
class Run:
    scenario: str
    round: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    outputs: dict[str, float] = field(default_factory=dict)
    """Outputs each version's replicas returned over the measured window (clipper_model_predictions)."""
    defaults: float = 0.0
    """Answers with the app's default output over the window."""
    window: dict[str, float] = field(default_factory=dict)
    """The candidate's rollout counters over the window (clipper_rollout_*: queries, dropped, agree, disagree)."""
    rollout: dict[str, Any] = field(default_factory=dict)
    """get_rollout's state, reason and the candidate's and baseline's step figures (warm-up included)."""
    counted: float = 0.0
    """The candidate's queries the frontend counted from this rollout's start to the get_rollout (/metrics)."""
    others_cpu_pct: float = 0.0
    """CPU the machine spent outside this benchmark's processes during the measured run, % of one core."""


def delta(before: dict[str, float], after: dict[str, float], name: str, labels: str) -> float:
    """A counter's increase (``name`` or ``name_total``); a series that restarted counts from zero."""
    for key in (f"{name}_total{{{labels}}}", f"{name}{{{labels}}}"):
        if key in after:
            start = before.get(key, 0.0)
            return after[key] - start if after[key] >= start else after[key]
    return 0.0


def begin(conn: Any, scenario: str) -> None:
    if scenario != "none":
        conn.start_rollout(MODEL, CANDIDATE, mode=scenario, steps=STEPS[scenario], step_seconds=WEEK_S,
                           min_queries_per_step=NEVER, max_error_rate=None, max_default_rate=None)


def end(conn: Any, scenario: str) -> None:
    if scenario != "none":
        view = conn.abort_rollout(MODEL)
        if view.get("state") != "aborted":
            raise RuntimeError(f"abort_rollout left the {scenario} rollout {view.get('state')!r}: {view}")


def cpu_snapshot(pids: list[int]) -> tuple[float, float]:
    """(CPU seconds the machine was busy, CPU seconds of this benchmark's processes: the server, its replicas,
    this script and its waited-for children, i.e. every wrk run so far)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    own = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            own += cpu_seconds(pid)
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        own += usage.ru_utime + usage.ru_stime
    return busy, own


def measure(conn: Any, addr: str, pids: list[int], scenario: str, round_: int, connections: int, duration: float,
            warmup: float) -> Run:
    url = f"http://{addr}/{APP}/predict"
    labels = f'model="{MODEL}",version="{CANDIDATE}"'
    at_start = scrape(addr)
    begin(conn, scenario)
    try:
        warm(url, 100)
        run_wrk(url, connections, warmup)  # the frontend applied the split; batch sizes adapt to the load
        before, (busy0, own0), t0 = scrape(addr), cpu_snapshot(pids), time.monotonic()
        rps, p50, p99, errors = run_wrk(url, connections, duration)
        (busy1, own1), elapsed = cpu_snapshot(pids), time.monotonic() - t0
        after = scrape(addr)
        run = Run(scenario, round_, rps, p50, p99, errors,
                  others_cpu_pct=max(0.0, (busy1 - busy0) - (own1 - own0)) / elapsed * 100)
        for version in ("1", CANDIDATE):
            run.outputs[version] = delta(before, after, "clipper_model_predictions",
                                         f'model="{MODEL}",version="{version}"')
        run.defaults = delta(before, after, "clipper_app_default_predictions", f'app="{APP}"')
        for key, name in (("queries", "clipper_rollout_queries"), ("dropped", "clipper_rollout_shadow_dropped"),
                          ("agree", "clipper_rollout_shadow_agreements"),
                          ("disagree", "clipper_rollout_shadow_disagreements")):
            run.window[key] = delta(before, after, name, labels)
        if scenario != "none":
            time.sleep(REPORT_LAG_S)  # one load report more, so the controller's figures cover the measured run
            view = conn.get_rollout(MODEL)
            run.rollout = {"state": view.get("state"), "reason": view.get("reason"), "weights": view.get("weights"),
                           "mirrored": view.get("mirrored"), "figures": view.get("figures")}
            run.counted = delta(at_start, scrape(addr), "clipper_rollout_queries", labels)
    except BaseException:
        with contextlib.suppress(Exception):
            end(conn, scenario)
        raise
    end(conn, scenario)
    print(f"  r{round_} {scenario:7} {run.rps:8.0f} req/s  p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:6.2f} ms  "
          f"outputs v1 {run.outputs['1']:.0f} v2 {run.outputs[CANDIDATE]:.0f}"
          + (f"  mirrored {run.window['queries']:.0f} dropped {run.window['dropped']:.0f}"
             if scenario == "shadow" else "") + f"  others' CPU {run.others_cpu_pct:.0f}%", flush=True)
    return run


def wait_connected(conn: Any, version: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(str(r).startswith(f"{MODEL}:{version}:") for r in conn.get_all_model_replicas()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no replica of {MODEL}:{version} connected within {timeout:.0f} s")
        time.sleep(0.2)  # polling the server, bounded by the deadline


def check_candidate(addr: str) -> None:
    """Version 2 answers (an explicit-version query, never re-routed) the same as version 1."""
    from run import post_json

    url = f"http://{addr}/{APP}/predict"
    body = json.dumps({"input": [float(i) for i in range(1, 11)], "version": CANDIDATE})
    deadline = time.monotonic() + 30
    while (answer := post_json(url, body))["default"]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"version {CANDIDATE} answers only the default: {answer}")
        time.sleep(0.2)  # the replica just connected; bounded by the deadline
    if float(answer["output"]) != 55.0:
        raise RuntimeError(f"version {CANDIDATE} answered {answer}, expected noop's 55.0")


# -- the report ---------------------------------------------------------------------------------------------
def values(runs: list[Run], scenario: str, attr: str) -> list[float]:
    return [float(getattr(r, attr)) for r in runs if r.scenario == scenario]


def spread(xs: list[float], fmt: str) -> str:
    return f"{statistics.median(xs):{fmt}} ({min(xs):{fmt}}–{max(xs):{fmt}})"


def per_round(runs: list[Run], scenario: str, attr: str) -> list[float]:
    base = {r.round: float(getattr(r, attr)) for r in runs if r.scenario == "none"}
    return [float(getattr(r, attr)) / base[r.round] for r in runs if r.scenario == scenario and r.round in base]


def targets(runs: list[Run]) -> list[dict[str, Any]]:
    rows = []
    rps0, p990 = statistics.median(values(runs, "none", "rps")), statistics.median(values(runs, "none", "p99_ms"))
    for scenario in ("canary", "shadow"):
        rps_ratio = statistics.median(values(runs, scenario, "rps")) / rps0
        p99_ratio = statistics.median(values(runs, scenario, "p99_ms")) / p990
        rps_rounds, p99_rounds = per_round(runs, scenario, "rps"), per_round(runs, scenario, "p99_ms")
        rows.append({"figure": f"{scenario} req/s / none", "value": rps_ratio, "target": f"≥ {RPS_TARGET}",
                     "met": rps_ratio >= RPS_TARGET, "per_round": rps_rounds,
                     "rounds_met": sum(x >= RPS_TARGET for x in rps_rounds)})
        rows.append({"figure": f"{scenario} p99 / none", "value": p99_ratio, "target": f"≤ {P99_TARGET}",
                     "met": p99_ratio <= P99_TARGET, "per_round": p99_rounds,
                     "rounds_met": sum(x <= P99_TARGET for x in p99_rounds)})
    return rows


def quiet_rounds(runs: list[Run], limit: float) -> list[int]:
    """The rounds in which every scenario was measured while the rest of the machine used under ``limit`` % of a
    core."""
    rounds = sorted({r.round for r in runs})
    return [n for n in rounds if len([r for r in runs if r.round == n]) == len(SCENARIOS)
            and all(r.others_cpu_pct < limit for r in runs if r.round == n)]


def canary_ceiling(runs: list[Run], connections: int) -> float:
    """The most req/s a closed loop of ``connections`` gets from the canary if the candidate's share of the
    queries take 5 ms longer than none's and nothing else changes (Little's law on none's mean latency)."""
    rps0 = statistics.median(values(runs, "none", "rps"))
    return connections / (connections / rps0 + STEPS["canary"][0] / 100 * CANDIDATE_SLEEP_S)


def print_report(runs: list[Run], rounds: int, connections: int, quiet_pct: float) -> list[dict[str, Any]]:
    print("\n| scenario | req/s median (min–max) | req/s × none | per-round min–max | p50 ms | p99 ms median "
          "(min–max) | p99 × none | per-round min–max | wrk errors | defaults | others' CPU % (min–max) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rps0, p990 = statistics.median(values(runs, "none", "rps")), statistics.median(values(runs, "none", "p99_ms"))
    for scenario in SCENARIOS:
        rps, p99 = values(runs, scenario, "rps"), values(runs, scenario, "p99_ms")
        rr, pr = per_round(runs, scenario, "rps"), per_round(runs, scenario, "p99_ms")
        print(f"| {scenario} | {spread(rps, '.0f')} | {statistics.median(rps) / rps0:.3f} | "
              f"{min(rr):.3f}–{max(rr):.3f} | {statistics.median(values(runs, scenario, 'p50_ms')):.2f} | "
              f"{spread(p99, '.2f')} | {statistics.median(p99) / p990:.3f} | {min(pr):.3f}–{max(pr):.3f} | "
              f"{sum(int(x) for x in values(runs, scenario, 'errors'))} | "
              f"{sum(values(runs, scenario, 'defaults')):.0f} | "
              f"{spread(values(runs, scenario, 'others_cpu_pct'), '.0f')} |")
    rows = targets(runs)
    quiet = quiet_rounds(runs, quiet_pct)
    quiet_rows = targets([r for r in runs if r.round in quiet]) if quiet else []
    print("\n| target | figure (ratio of the medians) | per round | rounds met | verdict | quiet rounds only "
          "| verdict |\n|---|---|---|---|---|---|---|")
    for i, row in enumerate(rows):
        q = quiet_rows[i] if quiet_rows else None
        print(f"| {row['figure']} {row['target']} | {row['value']:.3f} | "
              f"{', '.join(f'{x:.2f}' for x in row['per_round'])} | {row['rounds_met']} of {rounds} | "
              f"{'**met**' if row['met'] else '**missed**'} | "
              + (f"{q['value']:.3f} | {'**met**' if q['met'] else '**missed**'} |" if q else "– | – |"))
    print(f"\nquiet rounds (the neighbours' CPU under {quiet_pct:g}% of a core in each of the round's measurements): "
          f"{', '.join(f'r{r}' for r in quiet) or 'none'}")
    ceiling = canary_ceiling(runs, connections)
    p50_0 = statistics.median(values(runs, "none", "p50_ms"))
    print(f"\nwhat a 50% canary of a candidate 5 ms slower can reach at all (closed loop, {connections} connections): "
          f"at most {ceiling:.0f} req/s = {ceiling / rps0:.3f}× none (each of its queries 5 ms longer, nothing "
          f"else), and a p99 of about none's p50 + 5 ms = {p50_0 + CANDIDATE_SLEEP_S * 1000:.2f} ms = "
          f"{(p50_0 + CANDIDATE_SLEEP_S * 1000) / p990:.2f}× none's p99")
    print("\nwhat the versions did in each rollout measurement: outputs over the measured window (/metrics) and "
          "the candidate's step figures from get_rollout (warm-up included)\n")
    print("| run | v1 outputs | v2 outputs | v2 share | mirrored (window) | dropped (window) | frontend counted since "
          "start | get_rollout: state | candidate queries | dropped | compared | agreement | candidate p99 ms "
          "| baseline p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    carried = []
    for r in runs:
        if r.scenario == "none":
            if r.outputs.get(CANDIDATE):
                print(f"warning: r{r.round} none: version {CANDIDATE} returned {r.outputs[CANDIDATE]:.0f} outputs "
                      "with no rollout")
            continue
        figures = r.rollout.get("figures") or {}
        cand, base = figures.get("candidate") or {}, figures.get("baseline") or {}
        total = sum(r.outputs.values())
        agreement = cand.get("agreement")
        mirrored = f"{r.window['queries']:.0f}" if r.scenario == "shadow" else "–"
        dropped = f"{r.window['dropped']:.0f}" if r.scenario == "shadow" else "–"
        share = f"{r.outputs[CANDIDATE] / total if total else 0:.1%}" if r.scenario == "canary" else "–"
        print(f"| r{r.round} {r.scenario} | {r.outputs['1']:.0f} | {r.outputs[CANDIDATE]:.0f} | {share} | "
              f"{mirrored} | {dropped} | {r.counted:.0f} | "
              f"{r.rollout.get('state')} | {cand.get('queries', '?')} | {cand.get('dropped', '?')} | "
              f"{cand.get('compared', '?')} | {'–' if agreement is None else f'{agreement:.2%}'} | "
              f"{cand.get('p99_ms', '?')} | {base.get('p99_ms', '?')} |")
        if isinstance(cand.get("queries"), int) and cand["queries"] > 1.02 * r.counted + 50:
            carried.append(f"r{r.round} {r.scenario}")
        if r.rollout.get("state") != "running":
            print(f"warning: r{r.round} {r.scenario}: the rollout was {r.rollout.get('state')} before the abort: "
                  f"{r.rollout.get('reason')}")
    if carried:
        print(f"\nwarning: get_rollout's step figures of {', '.join(carried)} count more candidate queries than the "
              "frontend took since that rollout started: they include an earlier rollout's (every rollout's first "
              "step has the same step_id, and the frontend keeps a version's counters between rollouts)")
    return rows


def profile(conn: Any, addr: str, scenarios: list[str], connections: int, duration: float) -> dict[str, Profile]:
    pid = int(conn.cm.runtime["pid"])
    url = f"http://{addr}/{APP}/predict"
    found = {}
    for scenario in scenarios:
        begin(conn, scenario)
        try:
            run_wrk(url, connections, 2)  # warm-up
            found[scenario] = profile_under_load(pid, wrk_command(url, connections, duration), duration)
        finally:
            end(conn, scenario)
    return found


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> int:
    global CANDIDATE_SLEEP_S  # set by --candidate-sleep-ms
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=6.0, help="seconds a measured wrk run (default 6)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds, each scenario once a round (default 4)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of wrk before each measured run "
                        "(default 2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--json", type=Path, help="also write every run, the summary and the targets here")
    parser.add_argument("--profile", metavar="SCENARIOS", help="after the rounds, py-spy the server for "
                        "--duration s under each of these comma-separated scenarios and print where its CPU goes")
    parser.add_argument("--quiet-pct", type=float, default=15.0, help="a round is quiet when the rest of the "
                        "machine used less than this %% of a core in each of its measurements (default 15)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="add to the server's "
                        "environment (repeatable), e.g. CLIPPER_RECENT_PREDICTIONS=0")
    parser.add_argument("--candidate-sleep-ms", type=float, default=5.0,
                        help="ms the candidate sleeps a batch (default 5; 0: a candidate as fast as noop, which "
                             "measures what the canary's split itself costs)")
    args = parser.parse_args()
    CANDIDATE_SLEEP_S = args.candidate_sleep_ms / 1000.0
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    if args.duration < 1 or args.warmup < 1 or args.rounds < 1 or args.connections < 1:
        parser.error("--duration, --warmup, --rounds and --connections must be at least 1")
    profiled = args.profile.split(",") if args.profile else []
    if unknown := [s for s in profiled if s not in SCENARIOS]:
        parser.error(f"unknown scenarios {unknown} in --profile; known: {list(SCENARIOS)}")
    if bad := [e for e in args.env if "=" not in e or not e.split("=", 1)[0]]:
        parser.error(f"--env takes KEY=VALUE, not {bad}")
    extra_env = dict(e.split("=", 1) for e in args.env) or None
    signal.signal(signal.SIGTERM, _sigterm)

    from clipper_core.deployers import python as python_deployer

    commit = ab.describe(HERE.parent)
    load_start = os.getloadavg()
    server = ab.Side("clipper", HERE.parent, Path(tempfile.mkdtemp(prefix="clipper-rollout-")))
    runs: list[Run] = []
    profiles: dict[str, Profile] = {}
    started = time.monotonic()
    try:
        server.conn = conn = start_server(server.home, extra_env)
        addr = conn.get_query_addr()
        deploy_apps(conn, [APP])  # noop version 1, current, linked to app noop
        python_deployer.deploy_python_closure(conn, name=MODEL, version=CANDIDATE, input_type="doubles",
                                              func=slow_noop(CANDIDATE_SLEEP_S), make_current=False)
        wait_connected(conn, CANDIDATE)
        check_candidate(addr)
        server_pid = int(conn.cm.runtime["pid"])
        pids = [server_pid, *ab.children(server_pid)]
        env = f", env {' '.join(args.env)}" if args.env else ""
        print(f"server {addr} (pid {server_pid}{env}); {MODEL} v1 current, v{CANDIDATE} (sleeps "
              f"{CANDIDATE_SLEEP_S * 1000:g} ms a batch) "
              f"connected; {args.rounds} rounds of {args.duration:g} s at {args.connections} connections", flush=True)
        for r in range(args.rounds):
            for scenario in SCENARIOS if r % 2 == 0 else SCENARIOS[::-1]:
                runs.append(measure(conn, addr, pids, scenario, r + 1, args.connections, args.duration, args.warmup))
        if profiled:
            profiles = profile(conn, addr, profiled, args.connections, args.duration)
    finally:
        try:
            ab.stop(server)
        except Exception as exc:
            print(f"warning: stopping the server ({server.home}): {exc!r}", file=sys.stderr)
    elapsed = time.monotonic() - started
    env = f" (server env {' '.join(args.env)})" if args.env else ""
    print(f"\nclipper {commit}{env}; noop at {args.connections} connections; {args.rounds} rounds of "
          f"{args.duration:g} s a scenario after {args.warmup:g} s warm-ups, the order reversed every other round; "
          f"{elapsed:.0f} s in all; load average {load_start[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
    rows = print_report(runs, args.rounds, args.connections, args.quiet_pct)
    if profiles:
        ab.print_profiles(profiles, f"noop:{args.connections}", args.duration)
    if args.json:
        quiet = quiet_rounds(runs, args.quiet_pct)
        report = {"commit": commit, "env": args.env, "connections": args.connections, "rounds": args.rounds,
                  "duration": args.duration, "warmup": args.warmup, "candidate_sleep_s": CANDIDATE_SLEEP_S,
                  "loadavg": [load_start[0], os.getloadavg()[0]], "runs": [asdict(r) for r in runs],
                  "medians": {s: {a: statistics.median(values(runs, s, a)) for a in ("rps", "p50_ms", "p99_ms")}
                              for s in SCENARIOS},
                  "targets": rows, "quiet_pct": args.quiet_pct, "quiet_rounds": quiet,
                  "targets_quiet_rounds": targets([r for r in runs if r.round in quiet]) if quiet else [],
                  "canary_ceiling_rps": canary_ceiling(runs, args.connections)}
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; the server and its replicas stopped", file=sys.stderr)
        sys.exit(130)
    except subprocess.CalledProcessError as exc:
        print(f"{exc.cmd[0]} failed ({exc.returncode}): {exc.stderr}", file=sys.stderr)
        sys.exit(1)
