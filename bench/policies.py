"""Selection-policy overhead per query, in microseconds: select + combine (+ observe for learning policies),
with 3 and 10 linked models, the state JSON round trip included for stateful policies.

    .venv/bin/python bench/policies.py
"""

from __future__ import annotations

import random
import sys
import time

import numpy as np

from clipper_core.inputs import InputType
from clipper_core.interfaces import Query
from clipper_core.plugins import PluginRegistry
from clipper_core.state import Application


def measure(name: str, n_models: int, rounds: int = 2000) -> tuple[float, float]:
    registry = PluginRegistry.create()
    app = Application("bench", InputType.DOUBLES, "-1", 100_000)
    policy = registry.policies.get(name)(app, {"seed": 1})
    models = [f"m{i}" for i in range(n_models)]
    state = policy.initial_state(models) if policy.needs_state else None
    rng = random.Random(2)
    query = Query("bench", 0, np.arange(10, dtype=np.float64), 0)
    predictions_all = {m: str(rng.randint(0, 1)) for m in models}
    serve = observe = 0.0
    for i in range(rounds):
        query.query_id = i
        t0 = time.perf_counter()
        chosen = policy.select(state, query, models)
        predictions = {m: predictions_all[m] for m in chosen}
        policy.combine(state, query, predictions)
        t1 = time.perf_counter()
        if policy.needs_state:
            state = policy.loads_state(policy.dumps_state(policy.observe(state, query, 1.0, predictions)))
        t2 = time.perf_counter()
        serve += t1 - t0
        observe += t2 - t1
    return serve / rounds * 1e6, observe / rounds * 1e6


def main() -> int:
    names = PluginRegistry.create().policies.names()
    print("| policy | models | select+combine µs | observe+state round trip µs |\n|---|---|---|---|")
    for name in names:
        for n in (3, 10):
            serve, observe = measure(name, n)
            print(f"| {name} | {n} | {serve:.1f} | {observe:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
