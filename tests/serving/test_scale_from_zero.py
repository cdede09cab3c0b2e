"""A version that autoscales to zero, in the query path on a fake clock: its queries wait in its queue for the
replica the autoscaler starts (the cold-demand hook fires at once), are answered when one connects in time, get
the default "scaling model 'm' from zero" when none does, and leave no task behind; a version that does not scale
to zero is skipped as before."""

from __future__ import annotations

from clipper_core.serving.prediction import NO_MODELS
from tests.serving.fakes import ServingHarness, doubles, run_until


async def _autoscaled(serving: ServingHarness, min_replicas: int) -> None:
    await serving.add_app("app", slo_micros=100_000)
    await serving.add_model("m", app="app")
    model = await serving.store.get_model("m", "1")
    assert model is not None
    await serving.store.update_model(model.replace(container_name="/models/m",
                                                   autoscaling={"min_replicas": min_replicas, "max_replicas": 2}))
    await serving.snapshot.sync()


async def test_a_query_waits_for_the_replica_and_is_answered_when_it_connects_in_time(
        serving: ServingHarness) -> None:
    await _autoscaled(serving, 0)
    woken: list[int] = []
    serving.path.cold_demand = lambda: woken.append(1)
    query = serving.predict_soon("app", [doubles(1.0)])
    queue = serving.runtime().queue
    await run_until(lambda: len(queue) == 1)
    assert woken == [1]  # the load reporter is told at once
    serving.clock.advance(0.05)
    replica = await serving.connect()
    batch = await replica.next_batch()
    batch.answer([7.0])
    [prediction] = await query
    assert (prediction.output, prediction.default) == (7.0, False)


async def test_without_a_replica_in_time_the_default_says_it_is_scaling_from_zero(serving: ServingHarness) -> None:
    await _autoscaled(serving, 0)
    query = serving.predict_soon("app", [doubles(1.0)])
    queue = serving.runtime().queue
    await run_until(lambda: len(queue) == 1)
    serving.clock.advance(0.101)
    [prediction] = await query
    assert prediction.default and prediction.explanation == "scaling model 'm' from zero"
    later = serving.predict_soon("app", [doubles(2.0)])  # the expired task is pruned, not left to pile up
    await run_until(lambda: queue.dropped == 1)
    assert len(queue) == 1
    serving.clock.advance(0.101)
    assert (await later)[0].explanation == "scaling model 'm' from zero"


async def test_an_identical_query_that_joined_the_cold_task_is_told_the_same(serving: ServingHarness) -> None:
    await _autoscaled(serving, 0)
    first = serving.predict_soon("app", [doubles(1.0)])
    queue = serving.runtime().queue
    await run_until(lambda: len(queue) == 1)
    second = serving.predict_soon("app", [doubles(1.0)])  # the same input: it joins the first one's task
    await run_until(lambda: serving.path._single_flight and next(iter(
        serving.path._single_flight.values())).joined is not None)
    serving.clock.advance(0.101)
    assert [(await q)[0].explanation for q in (first, second)] == ["scaling model 'm' from zero"] * 2


async def test_a_version_that_does_not_scale_to_zero_is_skipped_as_before(serving: ServingHarness) -> None:
    await _autoscaled(serving, 1)
    [prediction] = await serving.path.predict("app", [doubles(1.0)])
    assert prediction.default and prediction.explanation == NO_MODELS
    assert len(serving.runtime().queue) == 0
