"""ModelQueue and BatchSizer on the real clock: deadline order, expiry before dispatch, input_batch groups kept
together, AIMD sizing (the fake-clock tests are beside this file)."""

from __future__ import annotations

import asyncio
import time

import pytest

from clipper_core.serving.batch_sizer import BatchSizer
from clipper_core.serving.queue import DeadlineExpired, ModelQueue, Task


def make_task(loop: asyncio.AbstractEventLoop, item: object, deadline_in: float, group: int = 0) -> Task:
    return Task(item, None, time.monotonic() + deadline_in, loop.create_future(), group)


async def test_batches_come_out_earliest_deadline_first() -> None:
    loop = asyncio.get_running_loop()
    queue = ModelQueue("m", "1")
    tasks = [make_task(loop, i, d) for i, d in enumerate([3.0, 1.0, 2.0])]
    queue.put_many(tasks)
    batch = await queue.get_batch(10)
    assert [t.item for t in batch] == [1, 2, 0]


async def test_expired_tasks_are_dropped_before_dispatch() -> None:
    loop = asyncio.get_running_loop()
    queue = ModelQueue("m", "1")
    expired = make_task(loop, "old", -0.001)
    fresh = make_task(loop, "new", 5.0)
    queue.put_many([expired, fresh])
    batch = await queue.get_batch(10)
    assert [t.item for t in batch] == ["new"]
    assert isinstance(expired.future.exception(), DeadlineExpired)
    assert queue.dropped == 1


async def test_get_batch_waits_for_work_and_wakes_on_put() -> None:
    loop = asyncio.get_running_loop()
    queue = ModelQueue("m", "1")
    getter = asyncio.create_task(queue.get_batch(4))
    await asyncio.sleep(0)
    assert not getter.done()
    queue.put(make_task(loop, "x", 5.0))
    batch = await asyncio.wait_for(getter, 1.0)
    assert [t.item for t in batch] == ["x"]


async def test_input_batch_group_is_not_split_when_it_fits_in_the_next_batch() -> None:
    loop = asyncio.get_running_loop()
    queue = ModelQueue("m", "1")
    queue.put_many([make_task(loop, "a", 1.0), make_task(loop, "b", 1.0)])
    queue.put_many([make_task(loop, f"g{i}", 2.0, group=7) for i in range(3)])
    first = await queue.get_batch(4)
    assert [t.item for t in first] == ["a", "b"]
    second = await queue.get_batch(4)
    assert [t.item for t in second] == ["g0", "g1", "g2"]


async def test_delayed_batching_waits_for_a_fuller_batch() -> None:
    loop = asyncio.get_running_loop()
    queue = ModelQueue("m", "1", batch_wait_timeout_s=0.5)
    queue.put(make_task(loop, 0, 5.0))
    getter = asyncio.create_task(queue.get_batch(3))
    await asyncio.sleep(0)
    queue.put(make_task(loop, 1, 5.0))
    await asyncio.sleep(0)
    assert not getter.done()
    queue.put(make_task(loop, 2, 5.0))
    batch = await asyncio.wait_for(getter, 1.0)
    assert len(batch) == 3


async def test_delayed_batching_gives_up_at_the_timeout() -> None:
    loop = asyncio.get_running_loop()
    queue = ModelQueue("m", "1", batch_wait_timeout_s=0.02)
    queue.put(make_task(loop, 0, 5.0))
    batch = await asyncio.wait_for(queue.get_batch(8), 1.0)
    assert len(batch) == 1


def test_requeue_keeps_only_live_tasks() -> None:
    loop = asyncio.new_event_loop()
    try:
        queue = ModelQueue("m", "1")
        alive, dead = make_task(loop, "a", 5.0), make_task(loop, "b", -1.0)
        assert queue.requeue([alive, dead]) == 1
        assert len(queue) == 1
    finally:
        loop.close()


class FakeReplica:
    """Batch latency = fixed cost + per-item cost, as a simulated clock (no sleeping)."""

    def __init__(self, fixed: float, per_item: float) -> None:
        self.fixed = fixed
        self.per_item = per_item

    def latency(self, n: int) -> float:
        return self.fixed + self.per_item * n


def drive(sizer: BatchSizer, replica: FakeReplica, rounds: int) -> list[int]:
    sizes = []
    for _ in range(rounds):
        n = sizer.batch_size
        sizer.observe(n, replica.latency(n))
        sizes.append(n)
    return sizes


def test_aimd_grows_until_the_budget_then_oscillates_just_below_it() -> None:
    replica = FakeReplica(fixed=0.005, per_item=0.0005)  # budget 0.05 s → at most 90 items
    sizer = BatchSizer(budget_s=0.05)
    sizes = drive(sizer, replica, 400)
    tail = sizes[-100:]
    # 90 items fit the budget: it probes 91 once, backs off 10% to 81, climbs again; it never collapses.
    assert max(tail) == 91
    assert min(tail) >= 81


def test_aimd_backs_off_after_a_latency_step() -> None:
    sizer = BatchSizer(budget_s=0.05)
    drive(sizer, FakeReplica(0.005, 0.0005), 300)
    before = sizer.batch_size
    slower = FakeReplica(0.005, 0.002)  # four times slower per item: ≤ 22 items fit
    sizes = drive(sizer, slower, 60)
    assert sizes[-1] < before / 2
    assert max(sizes[-20:]) <= 23


def test_fixed_batch_size_never_adapts() -> None:
    sizer = BatchSizer(budget_s=0.001, fixed=9)
    drive(sizer, FakeReplica(1.0, 1.0), 10)
    assert sizer.batch_size == 9


@pytest.mark.parametrize("backoff", [0.9])
def test_aimd_only_grows_on_full_batches(backoff: float) -> None:
    sizer = BatchSizer(budget_s=1.0, backoff=backoff)
    for _ in range(10):
        sizer.observe(1, 0.001)
    grown = sizer.batch_size
    for _ in range(10):
        sizer.observe(1, 0.001)  # half-empty batches say nothing about bigger ones
    assert sizer.batch_size == grown
