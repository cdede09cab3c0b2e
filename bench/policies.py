"""Selection-policy overhead per query and per feedback, in microseconds, for every installed policy with 3 and
10 linked models (Clipper's ``default`` policy links one model, so it is measured once).

    .venv/bin/python bench/policies.py [--rounds N]

Per query the router calls ``select`` and ``combine`` (the state comes from its in-memory cache); per feedback
it calls ``observe`` and stores ``dumps_state``; ``loads_state`` runs only when a user's state is not cached.
Inputs are 10 doubles (LinUCB's context: 10 features + a bias); outputs are "0"/"1" strings, one per model
asked; the label is 1. Medians of per-call times after a warm-up, so a neighbour's burst does not count.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from typing import Any

import numpy as np

from clipper_core.inputs import InputType
from clipper_core.interfaces import Query, SelectionPolicy
from clipper_core.plugins import PluginRegistry
from clipper_core.state import Application

APP = Application("bench", InputType.DOUBLES, "-1", 100_000)


def measure(cls: type[SelectionPolicy], n_models: int, rounds: int) -> dict[str, float]:
    """Median µs of select+combine, observe, dumps_state and loads_state over ``rounds`` queries."""
    config: dict[str, Any] = {"seed": 1} if "seed" in getattr(cls, "config_keys", ()) else {}
    policy = cls(APP, config)
    models = [f"m{i}" for i in range(n_models)]
    state = policy.initial_state(models)
    rng = random.Random(2)
    outputs = {m: str(rng.randint(0, 1)) for m in models}
    np_rng = np.random.default_rng(3)
    inputs = [np_rng.uniform(-1, 1, 10) for _ in range(64)]
    serve, observe, dumps, loads = [], [], [], []
    clock = time.perf_counter
    for i in range(rounds + 200):
        query = Query("bench", 0, inputs[i % 64], i)
        t0 = clock()
        chosen = policy.select(state, query, models)
        predictions = {m: outputs[m] for m in chosen}
        policy.combine(state, query, predictions)
        t1 = clock()
        if policy.needs_state:
            state = policy.observe(state, query, 1, predictions)
            t2 = clock()
            data = policy.dumps_state(state)
            t3 = clock()
            state = policy.loads_state(data)
            t4 = clock()
        else:
            t2 = t3 = t4 = t1
        if i >= 200:  # warm-up
            serve.append(t1 - t0)
            observe.append(t2 - t1)
            dumps.append(t3 - t2)
            loads.append(t4 - t3)
    return {k: statistics.median(v) * 1e6 for k, v in
            (("serve", serve), ("observe", observe), ("dumps", dumps), ("loads", loads))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5000, help="queries per policy and model count")
    args = parser.parse_args(argv)
    registry = PluginRegistry.create()
    print("| policy | models | select+combine µs | observe µs | dumps_state µs (bytes) | loads_state µs |")
    print("|---|---|---|---|---|---|")
    for name in registry.policies.names():
        cls = registry.policies.get(name)
        limit = cls.max_models
        for n in [n for n in (3, 10) if limit is None or n <= limit] or [limit or 1]:
            t = measure(cls, n, args.rounds)
            if not cls.needs_state:
                print(f"| {name} | {n} | {t['serve']:.1f} | - | - | - |")
                continue
            size = len(cls(APP, {}).dumps_state(_state_after(cls, n)))
            print(f"| {name} | {n} | {t['serve']:.1f} | {t['observe']:.1f} | {t['dumps']:.1f} ({size}) "
                  f"| {t['loads']:.1f} |")
    return 0


def _state_after(cls: type[SelectionPolicy], n_models: int, feedbacks: int = 50) -> Any:
    """A state after some feedback, for its stored size."""
    policy = cls(APP, {})
    models = [f"m{i}" for i in range(n_models)]
    state = policy.initial_state(models)
    for i in range(feedbacks):
        query = Query("bench", 0, np.full(10, i / feedbacks), i)
        chosen = policy.select(state, query, models)
        state = policy.observe(state, query, 1, {m: "1" for m in chosen})
    return state


if __name__ == "__main__":
    sys.exit(main())
