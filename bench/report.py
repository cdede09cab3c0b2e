"""What bench/run.py prints and writes of its measurements: the figures table (medians with min–max, ratios to
each scenario's baseline) and the per-comparison summary in ``--json``."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from run import Comparison, Idle

__all__ = ["print_figures", "spread", "summary"]


def summary(comp: Comparison) -> dict[str, Any]:
    ratios = {}
    for side in comp.sides:
        if side != comp.baseline:
            value, per_round = comp.ratio(side, comp.baseline)
            ratios[side] = {"ratio": value, "per_round": per_round}
    return {"scenario": comp.scenario, "connections": comp.connections, "baseline": comp.baseline,
            "medians": {side: {attr: comp.median(side, attr) for attr in ("rps", "p50_ms", "p99_ms")}
                        for side in comp.sides}, "ratios_to_baseline": ratios}


def spread(values: list[float], fmt: str) -> str:
    if len(values) == 1:
        return f"{values[0]:{fmt}}"
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}–{max(values):{fmt}})"


def print_figures(comps: list[Comparison], idle: Idle | None) -> None:
    print("\nmedians over the rounds (min–max); ratio = ratio of the medians to the scenario's baseline (the first "
          "side), with the per-round ratios' min–max\n")
    print("| scenario | conns | side | req/s | p50 ms | p99 ms | ratio to baseline | mean batch | errors "
          "| default ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for comp in comps:
        for side in comp.sides:
            points = comp.runs[side]
            if side == comp.baseline:
                ratio = "-"
            else:
                value, per_round = comp.ratio(side, comp.baseline)
                ratio = f"{value:.2f}" + (f" ({min(per_round):.2f}–{max(per_round):.2f})" if len(per_round) > 1 else "")
            batches = [p.batch_mean for p in points if p.batch_mean]
            defaults = [p.default_ratio for p in points if p.default_ratio is not None]
            batch = spread(batches, ".1f") if batches else "-"
            default = f"{max(defaults):.3f}" if defaults else "-"
            print(f"| {comp.scenario} | {comp.connections} | {side} | {spread(comp.values(side, 'rps'), '.0f')} | "
                  f"{spread(comp.values(side, 'p50_ms'), '.2f')} | {spread(comp.values(side, 'p99_ms'), '.2f')} | "
                  f"{ratio} | {batch} | {sum(p.errors for p in points)} | {default} |")
        for p in comp.once:
            once_ratio = p.rps / comp.median(comp.baseline, "rps")
            print(f"| {comp.scenario} | {comp.connections} | {p.target} (once) | {p.rps:.0f} | {p.p50_ms:.2f} | "
                  f"{p.p99_ms:.2f} | {once_ratio:.2f} | {p.batch_mean or 0:.1f} | {p.errors} | "
                  f"{p.default_ratio or 0:.3f} |")
    for comp in comps:
        for p in comp.once:
            if p.target == "clipper b=1" and "clipper AIMD" in comp.runs:
                print(f"batchy AIMD / batch_size=1 throughput at {comp.connections} connections: "
                      f"{comp.median('clipper AIMD', 'rps') / p.rps:.1f}x")
    if idle:
        print(f"idle CPU over {idle.window_s:.0f} s: server process {idle.server_pct:.2f}% of a core, its "
              f"{idle.replicas} replicas {idle.replicas_pct:.2f}% together")
    for comp in comps:
        for side in comp.sides:
            errors = sum(p.errors for p in comp.runs[side])
            worst = max((p.default_ratio or 0.0) for p in comp.runs[side])
            if errors or worst:
                print(f"warning: {comp.scenario} c={comp.connections} {side}: {errors} wrk errors, default ratio "
                      f"up to {worst:.3f}")
