"""The batch-time model (#13 item 3): what a replica's batches cost, learned from its answers, and the dispatch
loop timing the next batch by it so that it reaches the container as the running one finishes."""

from __future__ import annotations

import pytest

from clipper_core.serving.batch_times import BatchTimes
from tests.serving.fakes import FakeReplica, ServingHarness, doubles, run_until, settle


def test_nothing_is_predicted_before_the_first_answer() -> None:
    times = BatchTimes()
    assert times.compute(8) is None
    times.sent(10.0, 8, behind_another=False)
    assert times.answer_at is None
    assert times.send_next_at() is None


def test_fixed_and_per_item_cost_are_fit_from_batches_of_different_sizes() -> None:
    times = BatchTimes()
    for n in (1, 4, 16, 64, 8, 32) * 3:
        times.observe(n, 0.005 + 0.00005 * n)
    assert times.compute(64) == pytest.approx(0.0082)
    assert times.compute(1) == pytest.approx(0.00505)


def test_batches_of_one_size_predict_their_mean_and_tell_no_fixed_cost() -> None:
    times = BatchTimes()
    for seconds in (0.004, 0.006):
        times.observe(1, seconds)
    assert times.compute(1) == pytest.approx(times.compute(50))  # no slope can be told from one size
    assert 0.004 < (times.compute(1) or 0) < 0.006
    assert times.fixed() is None  # 5 ms for one input: per input or per batch? Not told: no merging
    assert not times.merging_pays()


def test_the_last_slope_told_is_kept_while_batches_have_one_size() -> None:
    times = BatchTimes()
    for n in (1, 8, 16, 4):
        times.observe(n, 0.004 * n)  # 4 ms an input, no fixed cost
    for _ in range(100):
        times.observe(1, 0.004)  # then only single inputs (light load)
    assert times.fixed() == pytest.approx(0.0, abs=1e-6)
    assert times.compute(10) == pytest.approx(0.04)
    assert not times.merging_pays()


def test_the_overhead_comes_only_from_batches_that_had_the_replica_to_themselves() -> None:
    times = BatchTimes(overhead_s=0.001)
    times.observe(4, 0.002, latency_s=None)  # sent behind another: its round trip waited in the container
    assert times.overhead == 0.001
    for _ in range(50):
        times.observe(4, 0.002, latency_s=0.0025)
    assert times.overhead == pytest.approx(0.0005, rel=1e-3)


def test_a_batch_behind_another_is_due_after_it() -> None:
    times = BatchTimes(overhead_s=0.001)
    times.observe(10, 0.004)
    times.sent(100.0, 10, behind_another=False)
    assert times.answer_at == pytest.approx(100.005)  # out and back (1 ms) + 4 ms of model time
    assert times.send_next_at() == pytest.approx(100.004)
    times.sent(100.004, 10, behind_another=True)  # reaches the container as the first one finishes
    assert times.answer_at == pytest.approx(100.009)


async def _teach(serving: ServingHarness, replica: FakeReplica, *, compute_ms: float, round_trip_ms: float,
                 sizes: tuple[int, ...] = (4, 4, 4), per_input_ms: float = 0.0) -> None:
    """Batches of ``sizes`` that had the replica to themselves, each costing ``compute_ms + per_input_ms × n`` of
    model time, answered after that and ``round_trip_ms`` more of fake time."""
    for i, n in enumerate(sizes):
        query = serving.predict_soon("app", [doubles(float(10 * i + j)) for j in range(n)])
        batch = await replica.next_batch()
        model_ms = compute_ms + per_input_ms * n
        serving.clock.advance((round_trip_ms + model_ms - compute_ms) / 1000)
        batch.answer([0.0] * n, compute_ms=model_ms)
        await query


async def _connect(serving: ServingHarness) -> FakeReplica:
    await serving.add_app(slo_micros=1_000_000)
    await serving.add_model(app="app", batch_size=8)
    return await serving.connect()  # two dispatch loops


async def test_with_a_small_fixed_cost_the_next_batch_leaves_as_the_running_one_finishes(
        serving: ServingHarness) -> None:
    replica = await _connect(serving)
    times = serving.runtime().batch_times[replica.identity]
    # the model's time (1.2 ms) is more than the round trip's own (0.5 ms), less than that and an echo (1 ms)
    await _teach(serving, replica, compute_ms=1.2, round_trip_ms=1.7)
    assert times.compute(4) == pytest.approx(0.0012)
    assert not times.merging_pays()

    first = serving.predict_soon("app", [doubles(float(100 + j)) for j in range(4)])
    batch1 = await replica.next_batch()
    send_next = times.send_next_at()
    assert send_next is not None and send_next > serving.clock()
    half = serving.predict_soon("app", [doubles(200.0)])
    await settle()
    assert replica.waiting_batches == 0, "half a batch left long before the running one could finish"
    serving.clock.set(send_next)
    await run_until(lambda: replica.waiting_batches == 1)  # sent while batch1 is still in flight
    assert not batch1.future.done()
    batch2 = await replica.next_batch()
    assert batch2.inputs == [[200.0]]
    batch1.answer([1.0] * 4)
    batch2.answer([2.0])
    assert [p.output for p in await first] == [1.0] * 4
    assert (await half)[0].output == 2.0


async def test_when_the_model_is_quicker_than_the_round_trip_the_next_batch_waits_for_the_answer(
        serving: ServingHarness) -> None:
    replica = await _connect(serving)
    times = serving.runtime().batch_times[replica.identity]
    await _teach(serving, replica, compute_ms=0.1, round_trip_ms=2.0)  # (a noop model)
    first = serving.predict_soon("app", [doubles(float(100 + j)) for j in range(4)])
    batch1 = await replica.next_batch()
    assert times.send_next_at() is None  # a batch sent behind would only cost the frontend one batch more
    half = serving.predict_soon("app", [doubles(200.0)])
    serving.clock.advance(0.0019)
    await settle()
    assert replica.waiting_batches == 0
    batch1.answer([1.0] * 4)
    batch2 = await replica.next_batch()
    assert batch2.inputs == [[200.0]]
    batch2.answer([2.0])
    assert [p.output for p in await first] == [1.0] * 4
    assert (await half)[0].output == 2.0


async def test_with_a_large_fixed_cost_the_queued_part_waits_for_the_answered_clients(
        serving: ServingHarness) -> None:
    replica = await _connect(serving)
    times = serving.runtime().batch_times[replica.identity]
    # the model's fixed cost (4 ms) dominates: told apart from the per-input cost by batches of three sizes
    await _teach(serving, replica, compute_ms=4.0, round_trip_ms=5.0, sizes=(2, 4, 6), per_input_ms=0.05)
    assert times.fixed() == pytest.approx(0.004)
    assert times.merging_pays()

    first = serving.predict_soon("app", [doubles(float(100 + j)) for j in range(4)])
    batch1 = await replica.next_batch()
    queued = serving.predict_soon("app", [doubles(200.0)])
    serving.clock.advance(0.004)  # past the time a pipelined batch would have left
    await settle()
    assert replica.waiting_batches == 0, "the queued input was not held for the running batch's clients"
    batch1.answer([1.0] * 4, compute_ms=4.2)
    assert [p.output for p in await first] == [1.0] * 4
    await settle()
    assert replica.waiting_batches == 0, "the queued input left before the answered clients could come back"
    echoes = [serving.predict_soon("app", [doubles(float(300 + j))]) for j in range(4)]  # they come back
    batch2 = await replica.next_batch()
    assert batch2.inputs == [[200.0], [300.0], [301.0], [302.0], [303.0]]  # one batch carries both
    batch2.answer([2.0, 3.0, 3.0, 3.0, 3.0])
    assert (await queued)[0].output == 2.0
    assert [(await echo)[0].output for echo in echoes] == [3.0] * 4


async def test_an_echo_that_does_not_come_is_waited_for_no_longer_than_its_time(serving: ServingHarness) -> None:
    replica = await _connect(serving)
    times = serving.runtime().batch_times[replica.identity]
    await _teach(serving, replica, compute_ms=4.0, round_trip_ms=5.0, sizes=(2, 4, 6), per_input_ms=0.05)
    first = serving.predict_soon("app", [doubles(float(100 + j)) for j in range(4)])
    batch1 = await replica.next_batch()
    queued = serving.predict_soon("app", [doubles(200.0)])
    await settle()
    batch1.answer([1.0] * 4, compute_ms=4.2)
    await first
    wait = times.echo_wait(serving.clock())
    assert wait is not None
    _target, seconds = wait
    assert seconds == pytest.approx(3 * times.echo_seconds)  # (less than the 4 ms fixed cost)
    ratio = times.echo_ratio
    serving.clock.advance(seconds)  # nobody came back (open-loop traffic)
    batch2 = await replica.next_batch()
    assert batch2.inputs == [[200.0]]
    assert times.echo_ratio < ratio
    batch2.answer([2.0])
    assert (await queued)[0].output == 2.0
