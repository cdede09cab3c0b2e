"""The rollout controller over a real (in-memory) store, with load reports as frontends publish them and a fake
wall clock: it sums the step's figures over frontends, rolls a failing candidate back naming the guard, advances
and promotes a good one (the version flip included), writes only changes, and a new controller (a restarted
management server) resumes a rollout where the record left it. RolloutOperations' rules too."""

from __future__ import annotations

from typing import Any

import pytest

from clipper_core.errors import ClipperError
from clipper_core.inputs import InputType
from clipper_core.management.rollouts import RolloutController, RolloutOperations
from clipper_core.metrics import LATENCY_BUCKETS
from clipper_core.rollouts.figures import StepFigures
from clipper_core.state import ChangeEvent, Model, Replica
from clipper_core.state.memory import MemoryStateStore
from clipper_core.state.records import load_key


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def _store() -> MemoryStateStore:
    store = MemoryStateStore()
    await store.open()
    await store.add_model(Model("m", "1", InputType.DOUBLES))
    await store.add_model(Model("m", "2", InputType.DOUBLES), make_current=False)
    await store.add_model(Model("m", "3", InputType.DOUBLES), make_current=False)  # no replica
    for version in ("1", "2"):
        await store.add_replica(Replica("m", version, 0, InputType.DOUBLES, frontend="fe1:7000"))
    return store


def _counts(rollout_id: int, step_id: int, queries: int, errors: int = 0,
            latency_s: float = 0.004) -> dict[str, float]:
    latency = [0] * (len(LATENCY_BUCKETS) + 1)
    latency[next(i for i, b in enumerate(LATENCY_BUCKETS) if b >= latency_s)] = queries - errors
    return StepFigures(queries=queries, errors=errors, latency=latency).flat(rollout_id, step_id)


async def _report(store: MemoryStateStore, frontend: str, step_id: int, candidate: int, errors: int = 0,
                  baseline: int = 100, rollout_id: int | None = None) -> None:
    """A frontend's load report with these counts of the current rollout's step (or of ``rollout_id``'s)."""
    record = await store.get_rollout("m")
    assert record is not None
    salt = record["salt"] if rollout_id is None else rollout_id
    await store.put_load(frontend, {load_key("m", "2"): _counts(salt, step_id, candidate, errors),
                                    load_key("m", "1"): _counts(salt, step_id, baseline)}, ttl=60)


async def _started(store: MemoryStateStore, clock: Clock, **settings: Any) -> tuple[RolloutController,
                                                                                   RolloutOperations]:
    controller = RolloutController(store, clock=clock)
    ops = RolloutOperations(store, controller, clock=clock)
    view = await ops.start("m", "2", {"steps": [10, 100], "step_seconds": 30, "min_queries_per_step": 20,
                                      **settings})
    assert view["state"] == "running" and view["weights"] == {"2": 0.1, "1": 0.9} and view["baseline"] == "1"
    return controller, ops


async def test_a_failing_candidate_is_rolled_back_with_the_guard_and_figures_over_every_frontend() -> None:
    store, clock = await _store(), Clock()
    controller, ops = await _started(store, clock)
    await _report(store, "fe1", 1, candidate=15, errors=2)
    await _report(store, "fe2", 1, candidate=15, errors=2)  # 30 queries, 4 failed, over two frontends
    await _report(store, "fe3", 99, candidate=500, errors=500)  # another step's counts: not this one's
    await _report(store, "fe4", 1, candidate=500, errors=500, rollout_id=12345)  # another rollout's
    clock.now += 1
    [rolled] = await controller.tick()
    assert rolled.state == "rolled_back" and "max_error_rate: 4 of 30 queries failed" in rolled.reason
    view = await ops.get("m")
    assert view["state"] == "rolled_back" and view["weights"] == {"2": 0.0, "1": 1.0}
    assert view["figures"]["candidate"]["queries"] == 30 and view["figures"]["baseline"]["queries"] == 200
    assert view["history"][-1]["event"] == "rollback"
    assert await store.get_current_version("m") == "1"
    assert await controller.tick() == []  # ended: left alone


async def test_a_good_candidate_advances_and_is_promoted_writing_only_changes() -> None:
    store, clock = await _store(), Clock()
    controller, ops = await _started(store, clock)
    events: list[ChangeEvent] = []
    store.subscribe(events.append)
    await _report(store, "fe1", 1, candidate=40)
    clock.now += 10
    assert await controller.tick() == []  # within the step's 30 s: held, nothing written
    assert "10 s of 30 s" in (await ops.get("m"))["reason"]  # the live reason
    assert not [e for e in events if e.kind == "rollout"]
    clock.now += 25
    [advanced] = await controller.tick()
    assert advanced.step == 1 and advanced.step_id == 2 and advanced.share == 1.0
    await _report(store, "fe1", 2, candidate=25)
    clock.now += 31
    [promoted] = await controller.tick()
    assert promoted.state == "promoted" and await store.get_current_version("m") == "2"
    assert [e.kind for e in events].count("rollout") == 2 and ChangeEvent("current_version", "m") in events


async def test_a_new_controller_resumes_the_rollout_from_the_record() -> None:
    store, clock = await _store(), Clock()
    await _started(store, clock)
    await _report(store, "fe1", 1, candidate=40)
    clock.now += 31
    restarted = RolloutController(store, clock=clock)  # the management server restarted mid-step
    [advanced] = await restarted.tick()
    assert advanced.step == 1


async def test_operations_check_their_rules_and_pause_resume_abort_promote() -> None:
    store, clock = await _store(), Clock()
    controller, ops = await _started(store, clock)
    with pytest.raises(ClipperError, match="already has an active rollout"):
        await ops.start("m", "2", {})
    with pytest.raises(ClipperError, match="already the current version"):
        await ops.start("m", "1", {})
    with pytest.raises(ClipperError, match="'x'"):
        await ops.start("x", "1", {})
    with pytest.raises(ClipperError, match="'steps' is"):
        await ops.start("m", "2", {"steps": "all"})
    await ops.abort("m")
    with pytest.raises(ClipperError, match="'3' of model 'm' has no connected replica"):
        await ops.start("m", "3", {})
    await _started(store, clock)
    paused = await ops.pause("m")
    assert paused["state"] == "paused"
    with pytest.raises(ClipperError, match="paused already"):
        await ops.pause("m")
    await _report(store, "fe1", 1, candidate=40)
    clock.now += 100
    assert await controller.tick() == []  # paused: no advance
    resumed = await ops.resume("m")
    assert resumed["state"] == "running" and resumed["step_id"] == 2 and resumed["step_started_at"] == clock.now
    aborted = await ops.abort("m")
    assert aborted["state"] == "aborted" and await store.get_current_version("m") == "1"
    with pytest.raises(ClipperError, match="has ended"):
        await ops.promote("m")
    await _started(store, clock)  # a new rollout once the last ended
    promoted = await ops.promote("m")
    assert promoted["state"] == "promoted" and await store.get_current_version("m") == "2"
    with pytest.raises(ClipperError, match="has no rollout"):
        await ops.get("other")


async def test_a_deleted_candidate_ends_its_rollout() -> None:
    store, clock = await _store(), Clock()
    controller, _ = await _started(store, clock)
    await store.delete_model("m", "2")
    [ended] = await controller.tick()
    assert ended.state == "aborted" and "was deleted" in ended.reason


async def test_a_new_rollout_of_the_same_version_does_not_inherit_the_last_ones_counts() -> None:
    store, clock = await _store(), Clock()
    controller, ops = await _started(store, clock)
    await _report(store, "fe1", 1, candidate=30, errors=30)
    [rolled] = await controller.tick()
    assert rolled.state == "rolled_back"
    await ops.start("m", "2", {"steps": [10, 100], "step_seconds": 30, "min_queries_per_step": 20})
    assert await controller.tick() == []  # the frontend still reports step 1 of the old rollout: not this one's
    view = await ops.get("m")
    assert view["state"] == "running" and view["figures"]["candidate"]["queries"] == 0


async def test_the_baseline_deleted_or_no_longer_current_ends_the_rollout() -> None:
    store, clock = await _store(), Clock()
    controller, _ = await _started(store, clock)
    await store.set_current_version("m", "3")  # an operator's set_model_version meanwhile
    [ended] = await controller.tick()
    assert ended.state == "aborted" and "the current version became 3" in ended.reason
    assert await store.get_current_version("m") == "3"  # not overridden


async def test_a_candidate_of_another_input_type_is_refused() -> None:
    store, clock = await _store(), Clock()
    await store.add_model(Model("m", "4", InputType.STRINGS), make_current=False)
    await store.add_replica(Replica("m", "4", 0, InputType.STRINGS, frontend="fe1:7000"))
    with pytest.raises(ClipperError, match="takes strings, the current version '1' doubles"):
        await RolloutOperations(store, RolloutController(store, clock=clock), clock=clock).start("m", "4", {})
