"""Model runtimes and their replicas: a lost replica's batch goes to another replica."""

from __future__ import annotations

from clipper_core.serving.prediction import SLO_MISSED
from tests.serving.fakes import ServingHarness, doubles, run_until, settle


async def test_a_batch_in_flight_on_a_lost_replica_is_answered_by_another(serving: ServingHarness) -> None:
    await serving.add_app(slo_micros=100_000)
    await serving.add_model(app="app", batch_size=2)
    doomed = await serving.connect()
    task = serving.predict_soon("app", [doubles(1.0), doubles(2.0)])
    lost = await doomed.next_batch()
    survivor = await serving.connect()
    await serving.disconnect(doomed)
    assert lost.future.done()
    retried = await survivor.next_batch()
    assert retried.inputs == lost.inputs == [[1.0], [2.0]]
    retried.answer([10.0, 20.0])
    assert [(p.output, p.default) for p in await task] == [(10.0, False), (20.0, False)]
    mr = serving.runtime()
    assert (mr.num_replicas, list(mr.replicas.values())) == (1, [survivor])
    assert len(doomed.batches) == 1
    # the lost replica's dispatch loops are gone too: the next query goes to the survivor
    nxt = serving.predict_soon("app", [doubles(3.0)])
    (await survivor.next_batch()).answer([30.0])
    assert (await nxt)[0].output == 30.0
    assert len(doomed.batches) == 1


async def test_a_lost_replica_without_a_successor_leaves_the_query_to_its_deadline(serving: ServingHarness) -> None:
    await serving.add_app(slo_micros=100_000)
    await serving.add_model(app="app")
    replica = await serving.connect()
    task = serving.predict_soon("app", [doubles(1.0)])
    await replica.next_batch()
    await serving.disconnect(replica)
    await run_until(lambda: len(serving.runtime().queue) == 1)  # re-queued, waiting for a replica
    serving.clock.advance(0.101)
    assert (await task)[0].explanation == SLO_MISSED
    # a replica that connects later finds the expired task and drops it instead of sending it
    late = await serving.connect()
    await run_until(lambda: serving.runtime().queue.dropped == 1)
    assert late.batches == []


async def test_an_input_whose_lost_batch_expired_can_be_predicted_again(serving: ServingHarness) -> None:
    """ModelQueue.requeue used to drop the expired tasks of a lost batch without resolving their futures, so
    the single-flight entry for that input was never removed: every later identical query joined a future that
    never completed and got the SLO default, even from a healthy replica."""
    await serving.add_app(slo_micros=100_000)
    await serving.add_model(app="app")
    replica = await serving.connect()
    task = serving.predict_soon("app", [doubles(7.0)])
    await replica.next_batch()
    serving.clock.advance(0.101)
    assert (await task)[0].explanation == SLO_MISSED
    await serving.disconnect(replica)  # the batch comes back after its deadline: not re-queued
    await run_until(lambda: not replica.pending)
    await settle()  # the dispatch loop hands the lost batch back (a query joining it before then: see test_query_path)
    assert not serving.path._single_flight
    healthy = await serving.connect()
    again = serving.predict_soon("app", [doubles(7.0)])
    await settle()
    assert healthy.batches, "the new query never reached the healthy replica"
    healthy.batches[0].answer([49.0])
    assert (await again)[0].output == 49.0


async def test_a_busy_replica_woken_for_work_hands_it_to_an_idle_one(serving: ServingHarness) -> None:
    """Two replicas share the queue; the loop woken for a new query belongs to the busy one (it holds for a
    full batch behind its running one): it passes the wake-up on, so the idle replica takes the query."""
    await serving.add_app(cache_enabled=False)
    await serving.add_model(app="app", batch_size=8)
    a = await serving.connect()
    b = await serving.connect()
    queries = [serving.predict_soon("app", [doubles(1.0)])]
    await settle()
    queries.append(serving.predict_soon("app", [doubles(2.0)]))
    await settle()
    assert (len(a.batches), len(b.batches)) == (1, 1)  # the second went to b: a was busy
    a.batches[0].answer([1.0])
    await settle()
    queries.append(serving.predict_soon("app", [doubles(3.0)]))
    await settle()
    a.batches[1].answer([3.0])  # a is idle again, b still busy; b's loop now waits first in line
    await settle()
    fourth = serving.predict_soon("app", [doubles(4.0)])
    await run_until(lambda: len(a.batches) == 3)  # taken by the idle replica, not left behind busy b
    a.batches[2].answer([4.0])
    assert (await fourth)[0].output == 4.0
    b.batches[0].answer([2.0])
    assert [(await q)[0].output for q in queries] == [1.0, 2.0, 3.0]
