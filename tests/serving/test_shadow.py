"""A shadow rollout's mirror (``serving.shadow``), over fake replicas: cache hits are mirrored too; the current
version's failure leaves nothing to compare; the candidate's failures, per-item errors and lost replicas count as
its outcomes; a full mirror drops inputs; a batch smaller than the candidate's waits for the hold; the mirror goes
away with the rollout."""

from __future__ import annotations

import asyncio
from typing import Any

from clipper_core.config import Config
from clipper_core.rollouts.record import Rollout
from clipper_core.rollouts.settings import RolloutSettings
from clipper_core.serving.rollout import VersionCounters
from clipper_core.serving.shadow import SHADOW_HOLD_S, ShadowMirror
from tests.serving.fakes import FakeReplica, HarnessFactory, ServingHarness, doubles, run_until, settle


async def _shadow(serving: ServingHarness) -> tuple[FakeReplica, FakeReplica, ShadowMirror, VersionCounters]:
    await serving.add_app(slo_micros=100_000)
    await serving.add_model(app="app", batch_size=8)  # (fixed: a query's inputs go in one batch)
    await serving.add_model(version="2", make_current=False, batch_size=8)
    current, candidate = await serving.connect(), await serving.connect(version="2")
    rollout = Rollout("m", "2", "1", RolloutSettings.from_dict({"mode": "shadow"}), salt=7)
    await serving.store.put_rollout(rollout.to_dict())
    await serving.snapshot.sync()
    shadow, counts = serving.runtime(version="1").shadow, serving.runtime(version="2").rollout
    assert shadow is not None and counts is not None
    shadow.hold = 0.0  # a batch as soon as the candidate is idle (the hold has a test of its own)
    return current, candidate, shadow, counts


async def _serve(replica: FakeReplica, output: Any) -> None:
    while True:
        batch = await replica.next_batch()
        batch.answer([output] * len(batch))


async def test_a_cache_hit_is_mirrored_like_a_computed_output(serving: ServingHarness) -> None:
    current, candidate, shadow, counts = await _shadow(serving)
    query = serving.predict_soon("app", [doubles(1.0)], uid=1)
    (await current.next_batch()).answer(["4"])
    assert (await query)[0].output == 4
    (await candidate.next_batch()).answer(["4"])
    [p] = await serving.predict_soon("app", [doubles(1.0)], uid=1)  # the current version's cached output
    assert p.output == 4 and len(current.batches) == 1
    (await candidate.next_batch()).answer(["5"])
    await run_until(lambda: counts.step.agree + counts.step.disagree == 2)
    assert (counts.step.agree, counts.step.disagree, counts.step.queries, shadow.sent) == (1, 1, 2, 2)


async def test_the_current_versions_failure_leaves_nothing_to_compare(serving: ServingHarness) -> None:
    current, candidate, _, counts = await _shadow(serving)
    query = serving.predict_soon("app", [doubles(1.0), doubles(2.0)], uid=1)
    batch = await current.next_batch()
    batch.answer(["1", "2"], errors={1: "ValueError: no"})
    await query
    mirrored = await candidate.next_batch()
    assert mirrored.inputs == [[1.0], [2.0]]  # the candidate still sees both inputs
    mirrored.answer(["1", "7"])
    await run_until(lambda: counts.step.queries == 2)
    assert (counts.step.agree, counts.step.disagree, counts.step.errors) == (1, 0, 0)
    query = serving.predict_soon("app", [doubles(3.0)], uid=1)
    (await current.next_batch()).fail("RuntimeError: down")
    [p] = await query
    assert p.default
    (await candidate.next_batch()).answer(["3"])
    await run_until(lambda: counts.step.queries == 3)
    assert (counts.step.agree, counts.step.disagree) == (1, 0)


async def test_the_candidates_failures_and_lost_batches_count_as_its_outcomes(serving: ServingHarness) -> None:
    current, candidate, shadow, counts = await _shadow(serving)
    serving_current = asyncio.get_running_loop().create_task(_serve(current, "1"))
    try:
        await serving.predict_soon("app", [doubles(1.0), doubles(2.0)], uid=1)
        (await candidate.next_batch()).fail("RuntimeError: the candidate raised")
        await run_until(lambda: counts.step.errors == 2)
        await serving.predict_soon("app", [doubles(3.0), doubles(4.0)], uid=1)
        (await candidate.next_batch()).answer(["1", "1"], errors={0: "ValueError: one input"})
        await run_until(lambda: counts.step.queries == 4)
        assert (counts.step.errors, counts.step.agree) == (3, 1)
        assert serving.runtime(version="2").errors == 3
        await serving.predict_soon("app", [doubles(5.0)], uid=1)
        await candidate.next_batch()
        candidate.lose()  # the batch in flight is lost: no output, counted as missed (not re-sent)
        await run_until(lambda: counts.step.defaults == 1)
        assert counts.step.queries == 5 and not shadow.pending
    finally:
        serving_current.cancel()


async def test_a_full_mirror_drops_what_it_cannot_hold(make_serving: HarnessFactory) -> None:
    serving = await make_serving(Config(state_store="memory", batches_in_flight=1))
    current, candidate, shadow, counts = await _shadow(serving)
    shadow.limit = 2
    serving_current = asyncio.get_running_loop().create_task(_serve(current, "1"))
    try:
        busy = serving.predict_soon("app", [doubles(9.0)], uid=1, version="2")  # the candidate is busy
        batch = await candidate.next_batch()
        await serving.predict_soon("app", [doubles(1.0), doubles(2.0), doubles(3.0)], uid=1)
        await run_until(lambda: counts.step.dropped == 1)
        assert [item.tolist() for item, _ in shadow.pending] == [[1.0], [2.0]]
        batch.answer(["1"])
        await busy
        (await candidate.next_batch()).answer(["1", "1"])
        await run_until(lambda: counts.step.agree == 2)
    finally:
        serving_current.cancel()


async def test_the_mirror_holds_inputs_for_a_fuller_batch_until_the_oldest_waited_the_hold(
        serving: ServingHarness) -> None:
    current, candidate, shadow, _ = await _shadow(serving)
    shadow.hold = SHADOW_HOLD_S
    serving_current = asyncio.get_running_loop().create_task(_serve(current, "1"))
    try:
        await serving.predict_soon("app", [doubles(float(i)) for i in range(3)], uid=1)
        await settle()
        assert not candidate.batches and len(shadow.pending) == 3  # three of a batch of eight: held
        serving.clock.advance(SHADOW_HOLD_S)
        held = await candidate.next_batch()
        assert len(held) == 3
        held.answer(["1"] * 3)
        await serving.predict_soon("app", [doubles(float(i)) for i in range(10, 18)], uid=1)
        full = await candidate.next_batch()  # a full batch goes at once
        assert len(full) == 8 and not shadow.pending
        full.answer(["1"] * 8)
    finally:
        serving_current.cancel()


async def test_the_mirror_goes_with_the_rollout(serving: ServingHarness) -> None:
    _, _, shadow, _ = await _shadow(serving)
    record = await serving.store.get_rollout("m")
    assert record is not None
    await serving.store.put_rollout({**record, "state": "rolled_back"})
    await serving.snapshot.sync()
    assert serving.runtime(version="1").shadow is None
    await run_until(lambda: shadow._loop.done())
