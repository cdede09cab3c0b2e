"""Autoscaling under a load step: 40 -> 300 -> 40 inputs/s against a model of ~100 inputs/s a replica.

    .venv/bin/python bench/autoscale.py               # 3 steps of 60 s, autoscaled 1..4 replicas
    .venv/bin/python bench/autoscale.py --fixed       # then the same load against 4 fixed replicas
    .venv/bin/python bench/autoscale.py --quick       # 15 s steps (a smoke run)
    .venv/bin/python bench/autoscale.py --fixed-only  # only the fixed deployment (needs no autoscaler)

Each run starts its own clipper server (``LocalContainerManager``, own ``CLIPPER_HOME``, free loopback ports),
registers one app (SLO ``--slo-ms``, prediction cache off: every input is distinct) and deploys the closure
``sleepy``: ``time.sleep(0.01 * len(xs))`` a batch, 10 ms per input whatever the batching, so ~100 inputs/s a
replica. (``bench/models.capped`` is the same shape at 4 ms, 250 inputs/s: too fast for this load.) The
autoscaled run deploys one replica and calls ``set_autoscaling(min_replicas=1, max_replicas=N)`` with the API's
defaults otherwise; the fixed run deploys N replicas and never resizes.

An open-loop generator (asyncio + aiohttp; Poisson arrivals with a fixed seed, or ``--arrivals even``) sends on
its schedule whatever the answers; each request has its own timeout of SLO + ``--timeout-margin-s``, so the
run is bounded. Latency is measured from the scheduled send time. Each request is counted in the second it was
scheduled: offered, answered (HTTP 200, a prediction or the app's default), goodput (a prediction, not the
default, within the SLO), defaults, 503s, errors/timeouts, and the p99 of that second, where a default, a 503
or an error counts as a miss (so "p99 under the SLO" means at least 99% of that second's queries were good).
A thread samples ``get_num_replicas`` (the count the server runs: what is paid for), the replicas connected
(``get_all_model_replicas``) and the autoscaler's last decision (``get_autoscaling``) every second.

Summary: seconds from each step-up until p99 is back under the SLO (the first of 5 consecutive seconds under
it), share of queries within the SLO over the run and outside the first 10 s after each step, replica-seconds
against a fixed max-replica deployment (measured with ``--fixed``, else max_replicas x duration), with the
issue's targets (>= 99% within SLO outside the first 10 s after each step; <= 60% of the fixed replica-seconds).
Writes ``OUT.json`` (the per-second series) and ``OUT.png`` (matplotlib).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
MODEL = "sleepy"
APP = "auto"
RECOVERY_RUN_S = 5  # p99 is "back under the SLO" at the first of this many consecutive seconds under it
SETTLE_S = 10.0  # the seconds after each step left out of the steady-state share
TARGET_SHARE = 0.99
TARGET_REPLICA_SECONDS = 0.60


class BenchFailure(Exception):
    """The benchmark cannot go on (e.g. the autoscaler does not answer); the message says why."""


def sleepy(xs: Any) -> list[float]:
    """10 ms per input whatever the batch: ~100 inputs/s a replica (the sleep releases the GIL)."""
    time.sleep(0.01 * len(xs))
    return [float(x.sum()) for x in xs]


@dataclass
class Second:
    t: int
    offered_rps: float = 0.0  # the load level scheduled for this second
    sent: int = 0
    answered: int = 0
    goodput: int = 0
    defaults: int = 0
    refused_503: int = 0
    errors: int = 0
    late: int = 0  # predictions (not defaults) that came back after the SLO
    p99_ms: float | None = None  # misses (default, 503, error, late) count as over the SLO; None: the p99 is one
    p99_served_ms: float | None = None  # of the predictions only
    replicas: int | None = None  # get_num_replicas
    connected: int | None = None
    desired: int | None = None  # the autoscaler's last decision
    reason: str | None = None
    seen_arrival_rate: float | None = None  # the load the autoscaler's last decision was based on
    seen_outstanding: float | None = None
    seen_ready: int | None = None
    latencies: list[float] = field(default_factory=list, repr=False)  # of predictions, s
    misses: int = 0

    def finish(self, slo_s: float) -> None:
        ordered = sorted(self.latencies)
        self.p99_served_ms = _pct(ordered, 0.99) * 1000 if ordered else None
        total = len(ordered) + self.misses
        if total:
            index = min(total - 1, int(0.99 * total))
            self.p99_ms = ordered[index] * 1000 if index < len(ordered) else None
        self.late = sum(1 for x in ordered if x > slo_s)

    def row(self) -> dict[str, Any]:
        data = asdict(self)
        del data["latencies"], data["misses"]
        return data


def _pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def schedule(loads: list[float], step_s: float, arrivals: str, seed: int) -> list[float]:
    """Send times (s from the start) of the whole run, open loop."""
    rng = random.Random(seed)
    times: list[float] = []
    for i, rate in enumerate(loads):
        t, end = i * step_s, (i + 1) * step_s
        while True:
            t += rng.expovariate(rate) if arrivals == "poisson" else 1.0 / rate
            if t >= end:
                break
            times.append(t)
    return times


async def drive(url: str, send_times: list[float], seconds: list[Second], slo_s: float, timeout_s: float,
                started: float) -> None:
    counter = iter(range(10**9))
    pending: set[asyncio.Task[None]] = set()

    async def one(session: aiohttp.ClientSession, sent: float, sec: Second) -> None:
        body = json.dumps({"input": [float(next(counter)), 1.0, 2.0]}).encode()  # distinct: no cache hits
        try:
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
                answer = await response.json(content_type=None)
                latency = time.monotonic() - sent
                if response.status == 503:
                    sec.refused_503 += 1
                    sec.misses += 1
                elif response.status == 200 and answer.get("default"):
                    sec.answered += 1
                    sec.defaults += 1
                    sec.misses += 1
                elif response.status == 200:
                    sec.answered += 1
                    if latency <= slo_s:
                        sec.goodput += 1
                        sec.latencies.append(latency)
                    else:
                        sec.latencies.append(latency)
                else:
                    sec.errors += 1
                    sec.misses += 1
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            sec.errors += 1
            sec.misses += 1

    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=2000)) as session:
        for offset in send_times:
            at = started + offset
            now = time.monotonic()
            if at > now:
                await asyncio.sleep(at - now)  # the schedule, whatever the answers
            sec = seconds[int(offset)]
            sec.sent += 1
            task = asyncio.create_task(one(session, at, sec))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)


class Sampler(threading.Thread):
    """Every second of the run: get_num_replicas, the connected replicas, the autoscaler's last decision."""

    def __init__(self, conn: Any, seconds: list[Second], started: float, autoscaled: bool) -> None:
        super().__init__(daemon=True)
        self.conn, self.seconds, self.started, self.autoscaled = conn, seconds, started, autoscaled
        self.stop = threading.Event()
        self.failure: str | None = None
        self.last_status: dict[str, Any] | None = None

    def run(self) -> None:
        for sec in self.seconds:
            at = self.started + sec.t + 0.5
            if self.stop.wait(max(0.0, at - time.monotonic())):
                return
            try:
                sec.replicas = self.conn.get_num_replicas(MODEL)
                sec.connected = sum(1 for r in self.conn.get_all_model_replicas(verbose=True)
                                    if r.get("model_name") == MODEL)
                if self.autoscaled:
                    status = self.conn.get_autoscaling(MODEL).get("status")
                    if status:
                        self.last_status = status
                        sec.desired, sec.reason = status.get("desired"), status.get("reason")
                        sec.seen_arrival_rate = status.get("arrival_rate")
                        sec.seen_outstanding = status.get("outstanding")
                        sec.seen_ready = status.get("ready_replicas")
            except Exception as exc:  # recorded, the run goes on
                self.failure = f"{type(exc).__name__}: {exc}"


def wait_connected(conn: Any, count: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sum(1 for r in conn.get_all_model_replicas(verbose=True) if r.get("model_name") == MODEL) >= count:
            return
        time.sleep(0.2)
    raise BenchFailure(f"{count} replica(s) of {MODEL} did not connect within {timeout_s:.0f} s")


def enable_autoscaling(conn: Any, max_replicas: int, settings: dict[str, float]) -> dict[str, Any]:
    """set_autoscaling, then wait for the autoscaler's first decision; BenchFailure if either is missing."""
    try:
        applied = conn.set_autoscaling(MODEL, min_replicas=1, max_replicas=max_replicas, **settings)
    except Exception as exc:
        raise BenchFailure(f"set_autoscaling failed: {type(exc).__name__}: {exc} (is the autoscaler in this "
                           f"tree finished? /admin/set_autoscaling must exist)") from exc
    if not applied:
        raise BenchFailure(f"set_autoscaling returned {applied!r}: autoscaling is not on for {MODEL}")
    return applied


def check_autoscaler_alive(conn: Any, wait_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + wait_s
    answer: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            answer = conn.get_autoscaling(MODEL)
        except Exception as exc:
            raise BenchFailure(f"get_autoscaling failed: {type(exc).__name__}: {exc}") from exc
        if answer.get("status"):
            return answer
        time.sleep(0.5)
    raise BenchFailure(f"the autoscaler made no decision for {MODEL} within {wait_s:.0f} s under load "
                       f"(get_autoscaling: {answer}): the server runs no autoscaler yet")


def run_one(args: argparse.Namespace, autoscaled: bool) -> dict[str, Any]:
    from clipper_core import ClipperConnection, LocalContainerManager
    from clipper_core.deployers import python as python_deployer

    label = "autoscaled" if autoscaled else f"fixed {args.max_replicas}"
    slo_s = args.slo_ms / 1000
    step_s = args.step_seconds
    duration = math.ceil(step_s * len(args.loads))
    home = Path(tempfile.mkdtemp(prefix="clipper-autoscale-"))
    conn = ClipperConnection(LocalContainerManager(clipper_home=str(home), clipper_query_port=0,
                                                   clipper_management_port=0, clipper_rpc_port=0))
    print(f"\n== {label}: starting a server in {home}", flush=True)
    conn.start_clipper()
    try:
        conn.register_application(APP, "doubles", "-1.0", int(args.slo_ms * 1000), cache_enabled=False)
        replicas = 1 if autoscaled else args.max_replicas
        python_deployer.deploy_python_closure(conn, name=MODEL, version=1, input_type="doubles", func=sleepy,
                                              num_replicas=replicas)
        conn.link_model_to_app(APP, MODEL)
        wait_connected(conn, replicas)
        url = f"http://{conn.get_query_addr()}/{APP}/predict"
        applied = None
        if autoscaled:
            settings = {"upscale_delay_s": args.upscale_delay_s, "downscale_delay_s": args.downscale_delay_s,
                        "smoothing_window_s": args.smoothing_window_s}
            applied = enable_autoscaling(conn, args.max_replicas, settings)
            print(f"   autoscaling: {applied}", flush=True)
        # Warm-up at the first load level: replicas connected, the per-input cost learnt, the autoscaler ticking.
        warm = [Second(t=i) for i in range(int(args.warmup_s))]
        warm_times = schedule([args.loads[0]], args.warmup_s, args.arrivals, args.seed + 1)
        asyncio.run(drive(url, warm_times, warm, slo_s, slo_s + args.timeout_margin_s, time.monotonic()))
        if autoscaled:
            check_autoscaler_alive(conn, 10.0)
            if conn.get_num_replicas(MODEL) != 1:
                print(f"   note: {conn.get_num_replicas(MODEL)} replicas at the start (min is 1)", flush=True)
        seconds = [Second(t=i) for i in range(duration)]
        for sec in seconds:
            sec.offered_rps = args.loads[min(len(args.loads) - 1, int(sec.t // step_s))]
        send_times = schedule(args.loads, step_s, args.arrivals, args.seed)
        started = time.monotonic()
        sampler = Sampler(conn, seconds, started, autoscaled)
        sampler.start()
        print(f"   driving {', '.join(f'{x:g}' for x in args.loads)} inputs/s, {step_s:g} s each "
              f"({len(send_times)} requests)", flush=True)
        asyncio.run(drive(url, send_times, seconds, slo_s, slo_s + args.timeout_margin_s, started))
        sampler.stop.set()
        sampler.join(timeout=10)
        if sampler.failure:
            print(f"   note: a replica sample failed: {sampler.failure}", flush=True)
        final_status = sampler.last_status
    finally:
        conn.stop_all()
        shutil.rmtree(home, ignore_errors=True)
    for sec in seconds:
        sec.finish(slo_s)
    return {"label": label, "autoscaled": autoscaled, "settings": applied, "last_status": final_status,
            "seconds": seconds}


def summarize(run: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    seconds: list[Second] = run["seconds"]
    step_s = args.step_seconds
    slo_ms = args.slo_ms
    steps = [i * step_s for i in range(1, len(args.loads))]
    sent = sum(s.sent for s in seconds)
    good = sum(s.goodput for s in seconds)
    settled = [s for s in seconds if not any(b <= s.t < b + SETTLE_S for b in steps)]
    settled_sent = sum(s.sent for s in settled)
    settled_good = sum(s.goodput for s in settled)
    recoveries = []
    for i, boundary in enumerate(steps, start=1):
        if args.loads[i] <= args.loads[i - 1]:
            continue
        end = boundary + step_s
        window = [s for s in seconds if boundary <= s.t < end]
        under = [s.p99_ms is not None and s.p99_ms <= slo_ms for s in window]
        found = None
        for j in range(len(window) - RECOVERY_RUN_S + 1):
            if all(under[j:j + RECOVERY_RUN_S]):
                found = j
                break
        recoveries.append({"step_at_s": boundary, "load": f"{args.loads[i - 1]:g}->{args.loads[i]:g}",
                           "seconds_to_p99_under_slo": found, "ever_over": not all(under)})
    replica_seconds = sum(s.replicas or 0 for s in seconds)
    return {"sent": sent, "goodput": good, "within_slo_share": good / sent if sent else 0.0,
            "settled_sent": settled_sent, "settled_within_slo_share": settled_good / settled_sent if settled_sent
            else 0.0, "defaults": sum(s.defaults for s in seconds), "refused_503": sum(s.refused_503 for s in seconds),
            "errors": sum(s.errors for s in seconds), "late": sum(s.late for s in seconds),
            "replica_seconds": replica_seconds, "duration_s": len(seconds), "recoveries": recoveries,
            "missing_replica_samples": sum(1 for s in seconds if s.replicas is None)}


def blind_autoscaler(run: dict[str, Any], smoothing_s: float) -> str | None:
    """A message when the autoscaler's decisions never saw the load offered (its figures stayed at 0)."""
    if not run["autoscaled"]:
        return None
    loaded = [s for s in run["seconds"] if s.t >= smoothing_s and s.sent and s.seen_arrival_rate is not None]
    if not loaded:
        return "the autoscaler reported no decision figures (arrival_rate) during the run"
    blind = [s for s in loaded if not s.seen_arrival_rate and not s.seen_outstanding]
    if len(blind) < 0.9 * len(loaded):
        return None
    reasons = sorted({s.reason or "" for s in blind})
    return (f"the autoscaler saw no load in {len(blind)} of {len(loaded)} seconds while load was sent "
            f"(its status: arrival_rate 0, outstanding 0, ready_replicas {blind[-1].seen_ready}; reason(s): "
            f"{'; '.join(reasons)[:300]}): the frontend's load figures do not reach it yet, so this run measured "
            f"a deployment that never scales")


def _fmt_ms(value: float | None) -> str:
    return "miss" if value is None else f"{value:.0f}"


def print_table(run: dict[str, Any], every: int, slo_ms: float) -> None:
    seconds: list[Second] = run["seconds"]
    print(f"\n{run['label']}: per {every} s (rates per second; p99 'miss': the 99th percentile query was a "
          f"default, 503, error or later than {slo_ms:g} ms; p99 = worst second of the window)\n")
    print("| t (s) | offered/s | sent/s | answered/s | goodput/s | defaults | 503 | errors | p99 ms | p99 served ms |"
          " replicas | connected | autoscaler desired |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for start in range(0, len(seconds), every):
        chunk = seconds[start:start + every]
        n = len(chunk)
        p99s = [s.p99_ms for s in chunk if s.sent]
        p99 = None if any(p is None for p in p99s) else max(p99s, default=0.0)
        served = [s.p99_served_ms for s in chunk if s.p99_served_ms is not None]
        last = chunk[-1]
        print(f"| {start}-{start + n} | {chunk[0].offered_rps:g} | {sum(s.sent for s in chunk) / n:.0f} | "
              f"{sum(s.answered for s in chunk) / n:.0f} | {sum(s.goodput for s in chunk) / n:.0f} | "
              f"{sum(s.defaults for s in chunk)} | {sum(s.refused_503 for s in chunk)} | "
              f"{sum(s.errors for s in chunk)} | {_fmt_ms(p99)} | {max(served, default=0.0):.0f} | "
              f"{last.replicas if last.replicas is not None else '?'} | "
              f"{last.connected if last.connected is not None else '?'} | "
              f"{last.desired if last.desired is not None else '-'} |")


def verdict(ok: bool) -> str:
    return "met" if ok else "missed"


def print_summary(runs: list[dict[str, Any]], summaries: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\nmodel ~100 inputs/s a replica (10 ms an input); loads {args.loads} inputs/s, {args.step_seconds:g} s "
          f"a step; SLO {args.slo_ms:g} ms; max {args.max_replicas} replicas; {args.arrivals} arrivals\n")
    for run, summ in zip(runs, summaries, strict=True):
        recov = "; ".join(f"{r['load']} at {r['step_at_s']:g} s: "
                          + ("never back under the SLO in the step" if r["seconds_to_p99_under_slo"] is None
                             else f"{r['seconds_to_p99_under_slo']} s"
                             + ("" if r["ever_over"] else " (never over)"))
                          for r in summ["recoveries"])
        print(f"{run['label']}: sent {summ['sent']}, within SLO {summ['within_slo_share']:.2%} over the run, "
              f"{summ['settled_within_slo_share']:.2%} outside the first {SETTLE_S:g} s after each step; "
              f"defaults {summ['defaults']}, 503 {summ['refused_503']}, errors {summ['errors']}, "
              f"late {summ['late']}; replica-seconds {summ['replica_seconds']}; "
              f"seconds from step-up to p99 under the SLO: {recov or '-'}")
    auto = next((s for r, s in zip(runs, summaries, strict=True) if r["autoscaled"]), None)
    fixed = next((s for r, s in zip(runs, summaries, strict=True) if not r["autoscaled"]), None)
    if auto is None:
        return
    if fixed is not None:
        fixed_rs, source = fixed["replica_seconds"], "measured fixed run"
    else:
        fixed_rs, source = args.max_replicas * auto["duration_s"], f"{args.max_replicas} x {auto['duration_s']} s"
    ratio = auto["replica_seconds"] / fixed_rs if fixed_rs else float("nan")
    print("\n| target | wanted | measured | verdict |\n|---|---|---|---|")
    print(f"| queries within SLO outside the first {SETTLE_S:g} s after each step | >= {TARGET_SHARE:.0%} | "
          f"{auto['settled_within_slo_share']:.2%} | {verdict(auto['settled_within_slo_share'] >= TARGET_SHARE)} |")
    print(f"| replica-seconds / fixed {args.max_replicas}-replica deployment ({source}) | "
          f"<= {TARGET_REPLICA_SECONDS:.0%} | {auto['replica_seconds']} / {fixed_rs} = {ratio:.1%} | "
          f"{verdict(ratio <= TARGET_REPLICA_SECONDS)} |")
    for r in auto["recoveries"]:
        print(f"| seconds from step-up {r['load']} until p99 under the SLO | (reported) | "
              f"{'never' if r['seconds_to_p99_under_slo'] is None else r['seconds_to_p99_under_slo']} | - |")
    print(f"| queries within SLO over the whole run | (reported) | {auto['within_slo_share']:.2%} | - |")
    if fixed is not None:
        print(f"| fixed deployment, within SLO over the run / outside the first {SETTLE_S:g} s | (comparison) | "
              f"{fixed['within_slo_share']:.2%} / {fixed['settled_within_slo_share']:.2%} | - |")


def plot(runs: list[dict[str, Any]], args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 1, figsize=(11, 11), sharex=True)
    styles = {True: "-", False: "--"}
    for run in runs:
        secs: list[Second] = run["seconds"]
        t = [s.t for s in secs]
        ls, tag = styles[run["autoscaled"]], run["label"]
        if run is runs[0]:
            axes[0].step(t, [s.offered_rps for s in secs], where="post", color="black", lw=1, label="offered")
        axes[0].plot(t, [s.answered for s in secs], ls, color="tab:blue", lw=1, label=f"answered ({tag})")
        axes[0].plot(t, [s.goodput for s in secs], ls, color="tab:green", lw=1.3, label=f"goodput ({tag})")
        axes[1].step(t, [s.replicas if s.replicas is not None else math.nan for s in secs], ls, where="post",
                     color="tab:purple", label=f"replicas ({tag})")
        if run["autoscaled"]:
            axes[1].step(t, [s.connected if s.connected is not None else math.nan for s in secs], ":", where="post",
                         color="tab:orange", label="connected (autoscaled)")
        cap = args.timeout_margin_s * 1000 + args.slo_ms
        axes[2].plot(t, [cap if s.p99_ms is None else s.p99_ms for s in secs], ls, color="tab:red", lw=1,
                     label=f"p99, misses counted ({tag})")
        axes[3].plot(t, [s.defaults for s in secs], ls, color="tab:brown", lw=1, label=f"defaults ({tag})")
        axes[3].plot(t, [s.refused_503 + s.errors for s in secs], ls, color="tab:gray", lw=1,
                     label=f"503 + errors ({tag})")
    axes[2].axhline(args.slo_ms, color="black", lw=0.8, ls=":", label=f"SLO {args.slo_ms:g} ms")
    axes[2].set_yscale("log")
    axes[0].set_ylabel("inputs/s")
    axes[1].set_ylabel("replicas")
    axes[1].set_ylim(0, args.max_replicas + 0.5)
    axes[2].set_ylabel("p99 ms (miss: plotted at timeout)")
    axes[3].set_ylabel("per second")
    axes[3].set_xlabel("s")
    for ax in axes:
        for i in range(1, len(args.loads)):
            ax.axvline(i * args.step_seconds, color="gray", lw=0.6, alpha=0.6)
        ax.legend(loc="upper right", fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(f"clipper autoscaling: {'/'.join(f'{x:g}' for x in args.loads)} inputs/s, "
                 f"{args.step_seconds:g} s steps, ~100 inputs/s a replica, SLO {args.slo_ms:g} ms")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--step-seconds", type=float, default=60.0)
    parser.add_argument("--loads", default="40,300,40", help="inputs/s of each step, comma-separated")
    parser.add_argument("--max-replicas", type=int, default=4)
    parser.add_argument("--slo-ms", type=float, default=500.0)
    parser.add_argument("--out", default=str(HERE / "results" / "autoscale"), help="writes OUT.png and OUT.json")
    parser.add_argument("--quick", action="store_true", help="15 s steps (a smoke run)")
    parser.add_argument("--fixed", action="store_true", help="then the same load against max-replicas fixed")
    parser.add_argument("--fixed-only", action="store_true", help="only the fixed deployment (no autoscaler)")
    parser.add_argument("--arrivals", choices=["poisson", "even"], default="poisson")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout-margin-s", type=float, default=1.0, help="a request's timeout: SLO + this")
    parser.add_argument("--warmup-s", type=float, default=5.0, help="at the first load, before the measured run")
    parser.add_argument("--every", type=int, default=5, help="seconds a row of the printed table")
    parser.add_argument("--upscale-delay-s", type=float, default=3.0)
    parser.add_argument("--downscale-delay-s", type=float, default=30.0)
    parser.add_argument("--smoothing-window-s", type=float, default=5.0)
    args = parser.parse_args()
    if args.quick:
        args.step_seconds = 15.0
    args.loads = [float(x) for x in args.loads.split(",") if x.strip()]
    if not args.loads or min(args.loads) <= 0:
        parser.error("--loads needs positive rates")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    runs = []
    try:
        if not args.fixed_only:
            runs.append(run_one(args, autoscaled=True))
        if args.fixed or args.fixed_only:
            runs.append(run_one(args, autoscaled=False))
    except BenchFailure as exc:
        print(f"\nautoscale benchmark FAILED: {exc}", file=sys.stderr)
        return 2
    summaries = [summarize(run, args) for run in runs]
    for run in runs:
        print_table(run, max(1, args.every), args.slo_ms)
    print_summary(runs, summaries, args)
    payload = {"args": {k: v for k, v in vars(args).items()},
               "runs": [{"label": r["label"], "autoscaled": r["autoscaled"], "settings": r["settings"],
                         "last_status": r["last_status"], "summary": s, "seconds": [x.row() for x in r["seconds"]]}
                        for r, s in zip(runs, summaries, strict=True)]}
    out.with_suffix(".json").write_text(json.dumps(payload, indent=1, default=str))
    plot(runs, args, out.with_suffix(".png"))
    print(f"\nwrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")
    for run in runs:
        problem = blind_autoscaler(run, args.smoothing_window_s)
        if problem:
            print(f"\nautoscale benchmark FAILED: {problem}", file=sys.stderr)
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
