"""The query path under a rollout, over fake replicas: a canary takes its share of the users (sticky, never a
query naming its version; composing with an ensemble policy, which chooses the models while the rollout chooses
the version of each), counts each version's outcomes per step, joins feedback to the version that answered;
a shadow candidate gets the inputs of mirrored queries once the current version answered them, when it has no
real work, never changes an answer, and its agreement with the
current version is counted."""

from __future__ import annotations

import asyncio
from typing import Any

from clipper_policy_ensemble.mean import Mean

from clipper_core.config import Config
from clipper_core.rollouts.figures import StepFigures
from clipper_core.rollouts.record import Rollout
from clipper_core.rollouts.settings import RolloutSettings
from clipper_core.serving.shadow import SHADOW_HOLD_S
from tests.serving.fakes import FakeReplica, HarnessFactory, ServingHarness, doubles, run_until


async def _two_versions(serving: ServingHarness, **settings: Any) -> tuple[FakeReplica, FakeReplica, Rollout]:
    await serving.add_app(slo_micros=100_000)
    await serving.add_model(app="app")
    await serving.add_model(version="2", make_current=False)
    current, candidate = await serving.connect(), await serving.connect(version="2")
    rollout = Rollout("m", "2", "1", RolloutSettings.from_dict(settings), salt=7)
    await serving.store.put_rollout(rollout.to_dict())
    await serving.snapshot.sync()
    return current, candidate, rollout


async def _answer_all(replica: FakeReplica, output: Any) -> None:
    while True:
        batch = await replica.next_batch()
        batch.answer([output(x) if callable(output) else output for x in batch.inputs])


async def test_a_canary_takes_its_share_of_users_sticky_and_counts_each_version(serving: ServingHarness) -> None:
    current, candidate, rollout = await _two_versions(serving, steps=[50, 100])
    loop = asyncio.get_running_loop()
    servers = [loop.create_task(_answer_all(current, "old")), loop.create_task(_answer_all(candidate, "new"))]
    try:
        seen: dict[int, set[Any]] = {}
        for uid in range(1, 41):
            for _ in range(3):
                [p] = await serving.predict_soon("app", [doubles(float(uid))], uid=uid)
                seen.setdefault(uid, set()).add(p.output)
        assert all(len(outputs) == 1 for outputs in seen.values())  # one version per user
        on_candidate = sum(outputs == {"new"} for outputs in seen.values())
        assert 10 <= on_candidate <= 30, on_candidate
        # a query naming its version is never re-routed
        for uid in range(1, 41):
            [p] = await serving.predict_soon("app", [doubles(0.5)], uid=uid, version="1")
            assert p.output == "old"
        step = serving.runtime(version="2").rollout
        base = serving.runtime(version="1").rollout
        assert step is not None and base is not None
        assert step.step.queries == 3 * on_candidate and step.step.errors == 0
        assert base.step.queries == 3 * (40 - on_candidate) + 40  # explicit-version queries count for their version
        figures = StepFigures()
        assert figures.add_flat(step.report(), rollout.salt, rollout.step_id) and figures.queries == 3 * on_candidate
        assert not StepFigures().add_flat(step.report(), rollout.salt, rollout.step_id + 1)  # another step's
        assert not StepFigures().add_flat(step.report(), rollout.salt + 1, rollout.step_id)  # another rollout's
    finally:
        for task in servers:
            task.cancel()


async def test_failures_and_misses_count_against_the_candidate_and_feedback_is_its_reward(
        serving: ServingHarness) -> None:
    current, candidate, _ = await _two_versions(serving, steps=[100], min_feedback_reward=0.5)
    query = serving.predict_soon("app", [doubles(1.0)], uid=3)
    batch = await candidate.next_batch()
    batch.fail("ValueError: bad input")
    [p] = await query
    assert p.default
    query = serving.predict_soon("app", [doubles(2.0)], uid=3)
    batch = await candidate.next_batch()
    batch.answer(["1"])
    [p] = await query
    assert p.output == 1 and not p.default
    counts = serving.runtime(version="2").rollout
    assert counts is not None and (counts.step.queries, counts.step.errors) == (2, 1)
    await serving.path.feedback("app", doubles(2.0), 1.0, uid=3)
    await serving.path.feedback("app", doubles(9.0), 1.0, uid=3)  # no answer of it remembered: no reward
    assert (counts.step.reward_n, counts.step.reward_sum) == (1, 1.0)
    assert not current.batches


async def test_a_shadow_candidate_is_mirrored_once_answered_and_never_changes_the_answer(
        serving: ServingHarness) -> None:
    current, candidate, _ = await _two_versions(serving, mode="shadow", agreement_tolerance=0.01)
    query = serving.predict_soon("app", [doubles(1.0)], uid=1)
    primary = await current.next_batch()
    assert not candidate.batches  # nothing is mirrored before the current version answered
    primary.answer(["3.0"])
    [p] = await query
    assert p.output == 3.0 and not p.default  # answered before the shadow was even asked
    mirrored = await candidate.next_batch()  # (a full batch: the candidate's adaptive size starts at one)
    assert mirrored.inputs == [[1.0]]
    mirrored.answer(["3.001"])
    counts = serving.runtime(version="2").rollout
    assert counts is not None
    await run_until(lambda: counts.step.agree == 1)
    query = serving.predict_soon("app", [doubles(2.0)], uid=1)
    (await current.next_batch()).answer(["5.0"])
    [p] = await query
    assert p.output == 5.0
    serving.clock.advance(SHADOW_HOLD_S)  # one input, the batch size now two: held for a fuller batch until then
    (await candidate.next_batch()).answer(["9.0"])
    await run_until(lambda: counts.step.disagree == 1)
    assert counts.step.queries == 2 and counts.step.errors == 0
    assert serving.runtime(version="2").predictions == 2


async def test_shadow_work_waits_for_the_candidates_real_work_and_is_dropped_without_replicas(
        make_serving: HarnessFactory) -> None:
    serving = await make_serving(Config(state_store="memory", batches_in_flight=1))  # one batch at a time
    current, candidate, _ = await _two_versions(serving, mode="shadow")
    serving_current = asyncio.get_running_loop().create_task(_answer_all(current, "1"))
    shadow = serving.runtime(version="1").shadow
    assert shadow is not None and shadow.candidate is serving.runtime(version="2")
    try:
        # The candidate busy with a query naming it; two mirrored queries answered meanwhile wait in the mirror,
        # and a second query naming the candidate, queued behind the busy batch, is sent before them.
        first = serving.predict_soon("app", [doubles(9.0)], uid=1, version="2")
        busy = await candidate.next_batch()
        await asyncio.gather(*[serving.predict_soon("app", [doubles(float(i))], uid=1) for i in (2, 3)])
        await run_until(lambda: len(shadow.pending) == 2)
        second = serving.predict_soon("app", [doubles(8.0)], uid=1, version="2")
        await run_until(lambda: len(serving.runtime(version="2").queue) == 1)
        busy.answer(["1"])
        real = await candidate.next_batch()
        assert real.inputs == [[8.0]]  # real work first, although the mirrored inputs came before it
        assert not candidate.waiting_batches  # nothing is mirrored while the real batch is in flight
        real.answer(["1"])
        serving.clock.advance(SHADOW_HOLD_S)  # (the candidate's batch size is above two now)
        mirrored = await candidate.next_batch()
        assert mirrored.inputs == [[2.0], [3.0]]  # the mirrored inputs batched anew, together
        mirrored.answer(["1", "2"])
        assert [p.output for p in await first] == [1] and [p.output for p in await second] == [1]
        counts = serving.runtime(version="2").rollout
        assert counts is not None
        await run_until(lambda: counts.step.agree + counts.step.disagree == 2)
        assert (counts.step.agree, counts.step.disagree, shadow.sent) == (1, 1, 2)
        await serving.disconnect(candidate)  # no replica: mirrored queries are dropped, not held
        await serving.predict_soon("app", [doubles(1.0)], uid=1)
        await run_until(lambda: counts.step.dropped == 1)
        assert not shadow.pending
    finally:
        serving_current.cancel()


async def _serve(replica: FakeReplica, output: str) -> None:
    while True:
        (await replica.next_batch()).answer([output])


async def test_the_mean_of_two_models_takes_the_candidate_of_the_one_under_a_canary() -> None:
    serving = await ServingHarness.start()
    try:
        # (an ensemble plugin, installed in this venv: the selection policy composes with the rollout)
        serving.registry.policies.add(Mean, "clipper-policy-ensemble")
        await serving.add_app(policy="mean")
        await serving.add_model("a", app="app")
        await serving.add_model("b", app="app")
        await serving.add_model("a", "2", make_current=False)
        replicas = {("a", "1"): "1.0", ("b", "1"): "3.0", ("a", "2"): "5.0"}
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(_serve(await serving.connect(name, version), output))
                 for (name, version), output in replicas.items()]
        [before] = await serving.predict_soon("app", [doubles(1.0)], uid=4)
        assert before.output == 2.0  # (a:1 + b:1) / 2
        rollout = Rollout("a", "2", "1", RolloutSettings.from_dict({"steps": [100]}))
        await serving.store.put_rollout(rollout.to_dict())
        await serving.snapshot.sync()
        [during] = await serving.predict_soon("app", [doubles(2.0)], uid=4)
        assert during.output == 4.0 and sorted(during.models or []) == ["a", "b"]  # (a:2 + b:1) / 2
        counts = serving.runtime("a", "2").rollout
        assert counts is not None and counts.step.queries == 1
        assert serving.runtime("b", "1").rollout is None  # b has no rollout: nothing counted for it
        for task in tasks:
            task.cancel()
    finally:
        await serving.close()
