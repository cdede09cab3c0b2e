"""Simulated feedback streams for the bandit tests (seeded, fast), and the learning figures of the README:

    .venv/bin/python plugins/policies/bandits/tests/bandit_streams.py

Each query a policy picks models, each picked model is right with its accuracy, feedback tells the truth, and
the state goes through ``dumps_state``/``loads_state`` after every feedback, as it does through the store."""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from clipper_core.inputs import InputType
from clipper_core.interfaces import Query, SelectionPolicy
from clipper_core.plugins import PluginRegistry
from clipper_core.state import Application

APP = Application("app", InputType.DOUBLES, "-1", 100_000)
MODELS = ["m-good", "m-ok", "m-bad"]
ACCURACY = {"m-good": 0.9, "m-ok": 0.7, "m-bad": 0.5}
DEGRADED = {"m-good": 0.2, "m-ok": 0.7, "m-bad": 0.5}
CONFIGS: dict[str, dict[str, Any]] = {
    "exp3": {"gamma": 0.07},
    "epsilon-greedy": {"epsilon": 0.1},
    "ucb1": {"c": 0.5},
    "thompson": {},
    "thompson-gaussian": {"sigma": 0.3},
    "linucb": {"alpha": 1.0},
}
"""The configs the tests use."""
DISCOUNT = dict.fromkeys(CONFIGS, 0.99) | {"ucb1": 0.995, "linucb": 0.995, "exp3": 0.998}
"""The ``discount`` added for the streams whose best model changes (memory ≈ 1 / (1 - d) feedbacks). Shorter
memories switch sooner but serve the best model less often in between: ucb1's and linucb's bonuses stay wide
with 0.99, and exp3, which learns at rate γ/K, stays near 50% unless it remembers ~500 feedbacks."""


def make(name: str, seed: int, **extra: Any) -> SelectionPolicy:
    return PluginRegistry.create().policies.get(name)(APP, {**CONFIGS[name], "seed": seed, **extra})


class Stream:
    """One user's stream of queries and feedback against a policy; ``picks`` records the models chosen."""

    def __init__(self, policy: SelectionPolicy, rng: random.Random, uid: int = 0) -> None:
        self.policy, self.rng, self.uid = policy, rng, uid
        self.state: Any = policy.initial_state(MODELS)
        self.picks: list[str] = []
        self.n = 0

    def run(self, accuracy: dict[str, float], n: int) -> list[str]:
        policy, rng = self.policy, self.rng
        for _ in range(n):
            self.n += 1
            query = Query("app", self.uid, np.array([rng.random(), rng.random()]), self.n)
            chosen = policy.select(self.state, query, MODELS)
            assert len(chosen) == 1, chosen
            label = rng.randint(0, 1)
            predictions = {m: str(label if rng.random() < accuracy[m] else 1 - label) for m in chosen}
            output, is_default, _ = policy.combine(self.state, query, predictions)
            assert not is_default and output == predictions[chosen[0]]
            state = policy.observe(self.state, query, float(label), predictions)
            self.state = policy.loads_state(policy.dumps_state(state))
            self.picks.append(chosen[0])
        return self.picks[-n:]


def share(picks: list[str], model: str) -> float:
    return picks.count(model) / len(picks)


def switch_delay(picks: list[str], model: str, window: int = 50) -> int | None:
    """Queries after a change until ``model`` is picked for most of the next ``window`` queries."""
    return next((i for i in range(len(picks) - window + 1) if picks[i:i + window].count(model) * 2 > window),
                None)


def figures() -> list[tuple[str, float, float, int | None, float, float, float]]:
    """Per policy: best-model share of the last 1000 of 5000; with ``DISCOUNT``, the best model's share of the
    500 queries before it degrades (at query 2000), the switch delay and the new best's share of the last 500 of
    1500 after; each user group's best-model share (per-user state)."""
    rows = []
    for name in CONFIGS:
        stationary = Stream(make(name, seed=1), random.Random(2)).run(ACCURACY, 5000)
        drifting = Stream(make(name, seed=3, discount=DISCOUNT[name]), random.Random(4))
        before = drifting.run(ACCURACY, 2000)
        after = drifting.run(DEGRADED, 1500)
        group_a, group_b = per_user(name)
        rows.append((name, share(stationary[-1000:], "m-good"), share(before[-500:], "m-good"),
                     switch_delay(after, "m-ok"), share(after[-500:], "m-ok"), share(group_a, "m-good"),
                     share(group_b, "m-bad")))
    return rows


GROUP_A = {"m-good": 0.9, "m-ok": 0.6, "m-bad": 0.5}
GROUP_B = {"m-good": 0.4, "m-ok": 0.6, "m-bad": 0.9}


def per_user(name: str, users: int = 4, rounds: int = 30, chunk: int = 100) -> tuple[list[str], list[str]]:
    """Users 0, 2, ... are best served by m-good, users 1, 3, ... by m-bad; they arrive interleaved and share
    one policy object (as in the router), each with its own state. Returns each group's last 1000 picks."""
    policy, rng = make(name, seed=5), random.Random(6)
    streams = [Stream(policy, rng, uid) for uid in range(users)]
    for _ in range(rounds):
        for stream in streams:
            stream.run(GROUP_A if stream.uid % 2 == 0 else GROUP_B, chunk)
    tail = 1000 // (users // 2)
    return ([p for s in streams[0::2] for p in s.picks[-tail:]], [p for s in streams[1::2] for p in s.picks[-tail:]])


if __name__ == "__main__":
    print("| policy | best model, last 1000 of 5000 | with discount: best before the change | switch delay "
          "| new best, last 500 | group A best | group B best |\n|---|---|---|---|---|---|---|")
    for name, best, before, delay, after, a, b in figures():
        print(f"| {name} | {best:.1%} | {before:.1%} | {delay} | {after:.1%} | {a:.1%} | {b:.1%} |")
