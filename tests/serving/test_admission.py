"""Admission control: a full queue, or more queued work than the SLO allows, is refused with 503 + Retry-After
and none of the refused request's tasks are queued."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from clipper_core.config import Config
from clipper_core.errors import Overloaded
from clipper_core.serving import query_path
from clipper_core.serving.admission import admit
from clipper_core.serving.model_runtime import ModelRuntime
from clipper_core.serving.queue import Task
from tests.serving.fakes import FakeReplica, HarnessFactory, OneAtATime, SentBatch, ServingHarness, doubles, run_until


@pytest.fixture
def admitted(monkeypatch: pytest.MonkeyPatch) -> list[list[Task]]:
    """The tasks each admission decision was asked about (the query path calls admit() by module global)."""
    seen: list[list[Task]] = []

    def spy(limit: float, slo: float, enqueued: dict[ModelRuntime, list[Task]]) -> None:
        seen.append([t for tasks in enqueued.values() for t in tasks])
        admit(limit, slo, enqueued)

    monkeypatch.setattr(query_path, "admit", spy)
    return seen


async def _busy_with_full_queue(make_serving: HarnessFactory) -> tuple[ServingHarness, FakeReplica, SentBatch,
                                                                       list[asyncio.Task[Any]]]:
    """One loop busy with a batch it holds, and a queue of 2 (its limit) behind it."""
    serving = await make_serving(Config(state_store="memory", batches_in_flight=1, max_queue_length=2))
    await serving.add_app(slo_micros=100_000)
    await serving.add_model(app="app")
    replica = await serving.connect()
    tasks = [serving.predict_soon("app", [doubles(0.0)])]
    batch = await replica.next_batch()
    tasks += [serving.predict_soon("app", [doubles(1.0)]), serving.predict_soon("app", [doubles(2.0)])]
    await run_until(lambda: len(serving.runtime().queue) == 2)
    return serving, replica, batch, tasks


async def test_a_full_queue_refuses_with_503_and_cancels_the_refused_tasks(
        make_serving: HarnessFactory, admitted: list[list[Task]]) -> None:
    serving, replica, batch, waiting = await _busy_with_full_queue(make_serving)
    with pytest.raises(Overloaded) as refused:
        await serving.path.predict("app", [doubles(3.0), doubles(4.0)])
    assert refused.value.status == 503
    assert refused.value.headers == {"Retry-After": "1"}
    assert "model m:1 is overloaded: its queue is full (2 tasks waiting, limit 2)" in refused.value.message
    refused_tasks = admitted[-1]
    assert [t.item.tolist() for t in refused_tasks] == [[3.0], [4.0]]
    assert all(t.future.cancelled() for t in refused_tasks)
    assert len(serving.runtime().queue) == 2  # nothing of the refused request was queued
    # the admitted queries are unaffected and, once the replica catches up, the refused input is served
    batch.answer([0.0])
    await replica.serve(lambda x: x[0], *waiting)
    assert [(await t)[0].output for t in waiting] == [0.0, 1.0, 2.0]
    retry = serving.predict_soon("app", [doubles(3.0), doubles(4.0)])
    await replica.serve(lambda x: x[0], retry)
    assert [p.output for p in await retry] == [3.0, 4.0]


async def test_work_predicted_to_outlast_the_slo_is_refused(one_at_a_time: OneAtATime) -> None:
    serving, replica = one_at_a_time
    first = serving.predict_soon("app", [doubles(1.0)])
    (await replica.next_batch()).answer([1.0], compute_ms=300.0)  # 300 ms per input on this replica
    assert (await first)[0].output == 1.0
    assert serving.runtime().item_seconds == pytest.approx(0.3)
    with pytest.raises(Overloaded) as refused:
        await serving.path.predict("app", [doubles(2.0)])
    assert "about 300 ms of work for an SLO of 100 ms" in refused.value.message
    assert refused.value.headers == {"Retry-After": "1"}
    assert len(serving.runtime().queue) == 0
    assert len(replica.batches) == 1


async def test_cache_hits_are_served_while_the_queue_is_full(make_serving: HarnessFactory) -> None:
    serving, _, _, _ = await _busy_with_full_queue(make_serving)
    assert serving.cache is not None
    serving.cache.put(("m", "1", doubles(9.0).tobytes()), 81.0)
    [hit] = await serving.path.predict("app", [doubles(9.0)])
    assert (hit.output, hit.default) == (81.0, False)


async def test_an_identical_query_right_after_a_refusal_is_refused_too(make_serving: HarnessFactory) -> None:
    """admit() cancels the refused tasks' futures; QueryPath used to forget them as single-flight entries only
    in their done callbacks (a loop step later), so an identical query in between joined a cancelled future and
    predict() raised CancelledError instead of answering 503."""
    serving, _, _, _ = await _busy_with_full_queue(make_serving)
    loop = asyncio.get_running_loop()
    # two requests arriving together, as two HTTP requests handled in the same loop iteration
    refused = loop.create_task(serving.path.predict("app", [doubles(3.0), doubles(4.0)]))
    identical = loop.create_task(serving.path.predict("app", [doubles(3.0)]))
    await asyncio.wait([refused, identical])
    assert isinstance(refused.exception(), Overloaded)
    assert not identical.cancelled(), "predict() raised CancelledError"
    assert isinstance(identical.exception(), Overloaded)
