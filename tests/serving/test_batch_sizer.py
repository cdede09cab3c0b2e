"""Batch sizes as a replica sees them: AIMD from one input up while batches finish within the latency budget,
a cut when one does not, a fixed size when the model has one, and the replica's announced limit."""

from __future__ import annotations

import itertools
from typing import Any

from clipper_core.config import Config
from tests.serving.fakes import FakeReplica, HarnessFactory, ServingHarness, doubles, settle

_fresh = itertools.count()


async def _one_loop(make_serving: HarnessFactory, *, batch_size: int = -1,
                    info: dict[str, Any] | None = None) -> tuple[ServingHarness, FakeReplica]:
    """One dispatch loop per replica, so each batch is formed only after the previous one is answered."""
    serving = await make_serving(Config(state_store="memory", batches_in_flight=1))
    await serving.add_app(slo_micros=100_000)  # latency budget per batch: 0.5 × 100 ms
    await serving.add_model(app="app", batch_size=batch_size)
    return serving, await serving.connect(info=info)


async def _sizes(serving: ServingHarness, replica: FakeReplica, n: int, *, latency: float = 0.0) -> list[int]:
    """Send an input_batch of ``n``; answer each batch after ``latency`` fake seconds; return the batch sizes."""
    values = [float(next(_fresh)) for _ in range(n)]  # never seen before: no cache hits
    items = [doubles(v) for v in values]
    task = serving.predict_soon("app", items)
    sizes: list[int] = []
    while sum(sizes) < n:
        batch = await replica.next_batch()
        serving.clock.advance(latency)
        batch.answer([x[0] for x in batch.inputs])
        sizes.append(len(batch))
    assert [p.output for p in await task] == values
    return sizes


async def test_aimd_starts_at_one_and_grows_by_one_per_full_batch(make_serving: HarnessFactory) -> None:
    serving, replica = await _one_loop(make_serving)
    sizer = serving.runtime().sizers[replica.identity]
    assert sizer.batch_size == 1
    # 1 (full: grow to 2), 2 (full: grow to 3), then the last input alone (not full: no growth)
    assert await _sizes(serving, replica, 4) == [1, 2, 1]
    assert sizer.batch_size == 3
    assert await _sizes(serving, replica, 3) == [3]  # now an input_batch of 3 is one batch
    assert sizer.batch_size == 4


async def test_aimd_backs_off_when_a_batch_exceeds_the_latency_budget(make_serving: HarnessFactory) -> None:
    serving, replica = await _one_loop(make_serving)
    sizer = serving.runtime().sizers[replica.identity]
    await _sizes(serving, replica, 6)  # 1, 2, 3: grows to 4
    assert sizer.batch_size == 4
    assert sizer.budget == 0.05
    # each batch now takes 60 ms of fake time, over the 50 ms budget: × 0.9 per batch
    assert await _sizes(serving, replica, 4, latency=0.06) == [4]
    assert sizer.size == 4 * 0.9
    assert sizer.batch_size == 3


async def test_a_fixed_batch_size_never_adapts(make_serving: HarnessFactory) -> None:
    serving, replica = await _one_loop(make_serving, batch_size=2)
    assert await _sizes(serving, replica, 5) == [2, 2, 1]
    assert await _sizes(serving, replica, 3, latency=0.06) == [2, 1]
    assert serving.runtime().sizers[replica.identity].batch_size == 2


async def test_aimd_never_grows_past_the_replicas_announced_max_batch_size(make_serving: HarnessFactory) -> None:
    serving, replica = await _one_loop(make_serving, info={"max_batch_size": 2})
    assert await _sizes(serving, replica, 7) == [1, 2, 2, 2]
    assert serving.runtime().sizers[replica.identity].batch_size == 2


async def test_a_loop_coming_back_while_a_batch_flies_waits_for_a_full_batch(serving: ServingHarness) -> None:
    await serving.add_app(slo_micros=100_000)
    await serving.add_model(app="app", batch_size=2)
    replica = await serving.connect()  # two dispatch loops (batches_in_flight=2)
    first = serving.predict_soon("app", [doubles(1.0), doubles(2.0)])
    batch1 = await replica.next_batch()
    second = serving.predict_soon("app", [doubles(3.0), doubles(4.0)])
    batch2 = await replica.next_batch()  # a full batch is pipelined behind batch1
    batch2.answer([3.0, 4.0])
    assert [p.output for p in await second] == [3.0, 4.0]
    # the loop that sent batch2 is back while batch1 is still in flight: half a batch is not worth sending
    half = serving.predict_soon("app", [doubles(5.0)])
    await settle()
    assert replica.waiting_batches == 0
    assert len(serving.runtime().queue) == 1
    batch1.answer([1.0, 2.0])  # the replica is free again: now the half batch goes
    batch3 = await replica.next_batch()
    assert batch3.inputs == [[5.0]]
    batch3.answer([5.0])
    assert [p.output for p in await first] == [1.0, 2.0]
    assert (await half)[0].output == 5.0


async def test_an_idle_replica_pipelines_only_full_batches(serving: ServingHarness) -> None:
    await serving.add_app(slo_micros=100_000)
    await serving.add_model(app="app", batch_size=2)
    replica = await serving.connect()  # two dispatch loops, both parked waiting for work
    first = serving.predict_soon("app", [doubles(1.0), doubles(2.0)])
    batch1 = await replica.next_batch()
    half = serving.predict_soon("app", [doubles(3.0)])
    await settle()
    assert replica.waiting_batches == 0, "half a batch was sent while a batch was in flight"
    batch1.answer([1.0, 2.0])
    (await replica.next_batch()).answer([3.0])
    assert [p.output for p in await first] == [1.0, 2.0]
    assert (await half)[0].output == 3.0
