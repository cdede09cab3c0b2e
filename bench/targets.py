"""#13's targets, read from bench/run.py's measurements: each target's figure (a median, or a ratio of medians)
with its per-round values, met or missed, and the table run.py prints."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from run import Comparison, Idle

__all__ = ["FRAMEWORKS_CONNS", "TARGETS", "TORCH_CONNS", "Target", "evaluate", "print_targets"]

FRAMEWORKS_CONNS = 16
TORCH_CONNS = 64


# -- the targets --------------------------------------------------------------------------------------
@dataclass
class Target:
    """One of #13's targets: ``figure`` reads (the figure, its per-round values) from the comparisons, or
    None when the scenario or connection count was not measured."""

    label: str
    op: str  # ">=", "<=" or "<"
    threshold: float
    unit: str  # "x", " ms" or "%"
    figure: Callable[[dict[tuple[str, int], Comparison], Idle | None], tuple[float, list[float]] | None]


def _ratio(scenario: str, c: int, num: str, den: str, attr: str = "rps",
           den_attr: str | None = None) -> Callable[[dict[tuple[str, int], Comparison], Idle | None],
                                                    tuple[float, list[float]] | None]:
    def figure(comps: dict[tuple[str, int], Comparison], _idle: Idle | None) -> tuple[float, list[float]] | None:
        comp = comps.get((scenario, c))
        return comp.ratio(num, den, attr, den_attr) if comp else None

    return figure


def _value(scenario: str, c: int, side: str, attr: str) -> Callable[[dict[tuple[str, int], Comparison], Idle | None],
                                                                    tuple[float, list[float]] | None]:
    def figure(comps: dict[tuple[str, int], Comparison], _idle: Idle | None) -> tuple[float, list[float]] | None:
        comp = comps.get((scenario, c))
        return (comp.median(side, attr), comp.values(side, attr)) if comp else None

    return figure


def _idle(_comps: dict[tuple[str, int], Comparison], idle: Idle | None) -> tuple[float, list[float]] | None:
    return (idle.server_pct, [idle.server_pct]) if idle else None


TARGETS = [
    Target("noop req/s at 64 conns, clipper / raw aiohttp", ">=", 0.9, "x",
           _ratio("noop", 64, "clipper", "raw aiohttp")),
    Target("noop req/s at 1 conn, clipper / raw aiohttp", ">=", 0.5, "x", _ratio("noop", 1, "clipper", "raw aiohttp")),
    Target("noop p50 at 1 conn, clipper", "<=", 0.5, " ms", _value("noop", 1, "clipper", "p50_ms")),
    Target("noop p99 at 16 conns, clipper / raw aiohttp", "<=", 1.2, "x",
           _ratio("noop", 16, "clipper", "raw aiohttp", "p99_ms")),
    Target("batchy req/s at 64 conns, clipper AIMD / raw in-process", ">=", 1.15, "x",
           _ratio("batchy", 64, "clipper AIMD", "raw in-process")),
    Target("batchy at 64 conns, clipper AIMD p99 / its p50", "<=", 1.5, "x",
           _ratio("batchy", 64, "clipper AIMD", "clipper AIMD", "p99_ms", "p50_ms")),
    Target(f"sklearn req/s at {FRAMEWORKS_CONNS} conns / clipper noop", ">=", 0.8, "x",
           _ratio("frameworks", FRAMEWORKS_CONNS, "clipper sklearn", "clipper noop")),
    Target(f"torch MLP req/s at {FRAMEWORKS_CONNS} conns / clipper noop", ">=", 0.8, "x",
           _ratio("frameworks", FRAMEWORKS_CONNS, "clipper torch", "clipper noop")),
    Target(f"torch MLP req/s at {TORCH_CONNS} conns, clipper / raw in-process batched", ">=", 1.0, "x",
           _ratio("torch", TORCH_CONNS, "clipper torch", "raw in-process")),
    Target("idle CPU of the server process, % of a core", "<", 1.0, "%", _idle),
]
OPS = {">=": operator.ge, "<=": operator.le, "<": operator.lt}


def evaluate(comps: dict[tuple[str, int], Comparison], idle: Idle | None) -> list[dict[str, Any]]:
    results = []
    for target in TARGETS:
        got = target.figure(comps, idle)
        result: dict[str, Any] = {"target": target.label, "op": target.op, "threshold": target.threshold,
                                  "unit": target.unit.strip()}
        if got is not None:
            value, per_round = got
            result |= {"figure": value, "per_round": per_round, "met": bool(OPS[target.op](value, target.threshold)),
                       "rounds_met": sum(bool(OPS[target.op](v, target.threshold)) for v in per_round)}
        results.append(result)
    return results


def print_targets(results: list[dict[str, Any]]) -> None:
    print("\ntargets (#13): the figure is the median (a ratio: of the medians), with its per-round min–max\n")
    print("| target | wanted | figure | rounds met | verdict |")
    print("|---|---|---|---|---|")
    for r in results:
        unit = {"x": "×", "ms": " ms", "%": "%"}[r["unit"]]
        wanted = f"{ {'>=': '≥', '<=': '≤'}.get(r['op'], r['op'])} {r['threshold']:g}{unit}"
        if "figure" not in r:
            print(f"| {r['target']} | {wanted} | not measured | - | - |")
            continue
        per_round = r["per_round"]
        fig = f"{r['figure']:.2f}{unit}" + (f" ({min(per_round):.2f}–{max(per_round):.2f})"
                                            if len(per_round) > 1 else "")
        print(f"| {r['target']} | {wanted} | {fig} | {r['rounds_met']}/{len(per_round)} | "
              f"{'met' if r['met'] else 'missed'} |")
