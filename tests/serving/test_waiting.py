"""The SLO wait: a query is answered when its outputs are in or at its deadline, whichever is first."""

from __future__ import annotations

from clipper_core.serving.prediction import SLO_MISSED
from tests.serving.fakes import ServingHarness, doubles, settle


async def test_a_replica_that_never_answers_gives_the_default_at_the_slo_deadline(serving: ServingHarness) -> None:
    await serving.add_app(slo_micros=100_000, default_output="-1.0")
    await serving.add_model(app="app")
    replica = await serving.connect()
    task = serving.predict_soon("app", [doubles(1.0)])
    await replica.next_batch()  # in flight, and never answered
    serving.clock.advance(0.099)
    await settle()
    assert not task.done()  # 1 ms before the deadline it still waits
    serving.clock.advance(0.002)
    [prediction] = await task
    assert (prediction.output, prediction.default, prediction.explanation) == (-1.0, True, SLO_MISSED)
    assert serving.snapshot.app("app").defaults == 1


async def test_a_late_answer_still_fills_the_cache(serving: ServingHarness) -> None:
    await serving.add_app(slo_micros=100_000)
    await serving.add_model(app="app")
    replica = await serving.connect()
    task = serving.predict_soon("app", [doubles(2.0)])
    batch = await replica.next_batch()
    serving.clock.advance(0.2)
    assert (await task)[0].explanation == SLO_MISSED
    batch.answer([4.0])  # nobody waits for it any more
    await settle()
    [again] = await serving.path.predict("app", [doubles(2.0)])
    assert (again.output, again.default) == (4.0, False)
    assert len(replica.batches) == 1


async def test_an_answer_before_the_deadline_ends_the_wait_without_time_passing(serving: ServingHarness) -> None:
    await serving.add_app(slo_micros=100_000)
    await serving.add_model(app="app")
    replica = await serving.connect()
    start = serving.clock()
    task = serving.predict_soon("app", [doubles(1.0)])
    (await replica.next_batch()).answer([1.0])
    assert (await task)[0].output == 1.0
    assert serving.clock() == start
