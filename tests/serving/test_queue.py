"""The model queue under the query path: tasks whose deadline passed are dropped before dispatch."""

from __future__ import annotations

from clipper_core.config import Config
from clipper_core.serving.prediction import SLO_MISSED
from tests.serving.fakes import HarnessFactory, OneAtATime, ServingHarness, doubles, run_until, settle


async def test_a_task_whose_deadline_passed_in_the_queue_is_dropped_not_sent(one_at_a_time: OneAtATime) -> None:
    serving, replica = one_at_a_time
    first = serving.predict_soon("app", [doubles(1.0)])
    batch = await replica.next_batch()  # the replica's only dispatch loop now waits for this answer
    queued = serving.predict_soon("app", [doubles(2.0)])
    queue = serving.runtime().queue
    await run_until(lambda: len(queue) == 1)
    serving.clock.advance(0.101)
    assert [(await first)[0].explanation, (await queued)[0].explanation] == [SLO_MISSED, SLO_MISSED]
    assert (len(queue), queue.dropped) == (1, 0)
    batch.answer([1.0])  # the loop comes back for more: the queued task has expired
    await run_until(lambda: queue.dropped == 1)
    assert len(queue) == 0
    assert len(replica.batches) == 1


async def test_the_earliest_deadline_is_sent_first_across_apps(make_serving: HarnessFactory) -> None:
    serving = await make_serving(Config(state_store="memory", batches_in_flight=1))
    await serving.add_app("patient", slo_micros=1_000_000)
    await serving.add_app("hurried", slo_micros=100_000)
    await serving.add_model(app="patient")
    await serving.store.add_links("hurried", ["m"])
    await serving.snapshot.sync()
    replica = await serving.connect()
    blocker = serving.predict_soon("patient", [doubles(0.0)])
    first = await replica.next_batch()
    patient = serving.predict_soon("patient", [doubles(1.0)])  # queued first, deadline in 1 s
    hurried = serving.predict_soon("hurried", [doubles(2.0)])  # queued second, deadline in 0.1 s
    await run_until(lambda: len(serving.runtime().queue) == 2)
    first.answer([0.0])  # a full batch within budget: the sizer grows to 2
    second = await replica.next_batch()
    assert second.inputs == [[2.0], [1.0]]
    second.answer([2.0, 1.0])
    assert [(await t)[0].output for t in (blocker, patient, hurried)] == [0.0, 1.0, 2.0]


async def test_delayed_batching_waits_on_the_clock_for_a_fuller_batch(serving: ServingHarness) -> None:
    await serving.add_app(slo_micros=100_000)
    await serving.add_model(app="app", batch_size=4, batch_wait_timeout_micros=10_000)
    replica = await serving.connect()
    first = serving.predict_soon("app", [doubles(1.0)])
    await settle()
    second = serving.predict_soon("app", [doubles(2.0)])
    serving.clock.advance(0.009)
    await settle()
    assert replica.waiting_batches == 0  # 9 ms after the first task: still waiting for a fuller batch
    serving.clock.advance(0.001)
    batch = await replica.next_batch()  # the wait is counted from the oldest queued task
    assert batch.inputs == [[1.0], [2.0]]
    batch.answer([1.0, 2.0])
    assert [(await first)[0].output, (await second)[0].output] == [1.0, 2.0]


async def test_a_cancelled_querys_queued_task_is_not_sent(one_at_a_time: OneAtATime) -> None:
    serving, replica = one_at_a_time
    first = serving.predict_soon("app", [doubles(1.0)])
    batch = await replica.next_batch()
    queued = serving.predict_soon("app", [doubles(2.0)])
    queue = serving.runtime().queue
    await run_until(lambda: len(queue) == 1)
    queued.cancel()  # its client went away
    await settle()
    batch.answer([1.0])
    assert (await first)[0].output == 1.0
    await run_until(lambda: len(queue) == 0)
    await settle()
    assert len(replica.batches) == 1
    assert queue.dropped == 0  # not too late: nobody wanted it
