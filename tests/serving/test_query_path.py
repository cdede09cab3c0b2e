"""QueryPath.predict and feedback over fake replicas: what reaches the replica, what comes back, the cache and
single flight, version rules, draining."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import numpy as np
import pytest

from clipper_core.errors import ModelUnavailable, QueryError, UnknownQueryApp, version_missing
from clipper_core.inputs import InputType
from clipper_core.serving.prediction import NO_MODELS, SLO_MISSED
from tests.serving.fakes import OneAtATime, ServingHarness, doubles, run_until, settle


@pytest.mark.parametrize(("input_type", "item", "header", "seen"), [
    (InputType.DOUBLES, np.array([1.5, -2.25]), {"kind": "array", "dtype": "<f8", "shape": [1, 2]}, [1.5, -2.25]),
    (InputType.INTS, np.array([7, -3, 0], dtype="<i4"), {"kind": "array", "dtype": "<i4", "shape": [1, 3]},
     [7, -3, 0]),
    (InputType.STRINGS, "héllo", {"kind": "str", "lens": [6]}, "héllo"),
    (InputType.BYTES, b"\x00\xff\x10", {"kind": "bytes", "lens": [3]}, b"\x00\xff\x10"),
], ids=["doubles", "ints", "strings", "bytes"])
async def test_a_prediction_carries_the_decoded_input_and_returns_the_models_output(
        serving: ServingHarness, input_type: InputType, item: Any, header: dict[str, Any], seen: Any) -> None:
    await serving.add_app(input_type=input_type)
    await serving.add_model(input_type=input_type, app="app")
    replica = await serving.connect()
    task = serving.predict_soon("app", [item])
    batch = await replica.next_batch()
    assert batch.inputs == [seen]
    assert {k: batch.header[k] for k in header} == header
    batch.answer(["42.5"])  # Clipper re-parses string outputs as JSON
    [prediction] = await task
    assert (prediction.output, prediction.default, prediction.explanation) == (42.5, False, "")
    assert len(replica.batches) == 1


async def test_an_app_without_a_connected_replica_answers_its_default_at_once(serving: ServingHarness) -> None:
    await serving.add_app(default_output="[0, 1]")
    await serving.add_model(app="app")  # registered, but no replica is connected
    [prediction] = await serving.path.predict("app", [doubles(1.0)])
    assert (prediction.output, prediction.default, prediction.explanation) == ([0, 1], True, NO_MODELS)


async def test_an_unknown_app_is_refused(serving: ServingHarness) -> None:
    with pytest.raises(UnknownQueryApp) as refused:
        await serving.path.predict("nope", [doubles(1.0)])
    assert refused.value.status == 404


async def test_input_batch_travels_as_one_batch_and_answers_in_order(serving: ServingHarness) -> None:
    await serving.add_app()
    await serving.add_model(app="app", batch_size=4)
    replica = await serving.connect()
    items = [doubles(1.0), doubles(2.0, 3.0), doubles(4.0), doubles(5.0, 5.0)]
    task = serving.predict_soon("app", items)
    batch = await replica.next_batch()
    assert batch.inputs == [[1.0], [2.0, 3.0], [4.0], [5.0, 5.0]]
    assert batch.header["kind"] == "ragged" and batch.header["lens"] == [1, 2, 1, 2]
    batch.answer([sum(x) for x in batch.inputs])
    predictions = await task
    assert [p.output for p in predictions] == [1.0, 5.0, 4.0, 10.0]
    assert [p.default for p in predictions] == [False] * 4
    ids = [p.query_id for p in predictions]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert replica.waiting_batches == 0


# -- the prediction cache and single flight --------------------------------------------------------------
async def test_a_repeated_input_is_answered_from_the_cache_without_the_replica(serving: ServingHarness) -> None:
    await serving.add_app()
    await serving.add_model(app="app")
    replica = await serving.connect()
    first = serving.predict_soon("app", [doubles(1.0, 2.0)])
    (await replica.next_batch()).answer([3.0])
    assert (await first)[0].output == 3.0
    [again] = await serving.path.predict("app", [doubles(1.0, 2.0)])  # nothing to wait for: a cache hit
    assert (again.output, again.default) == (3.0, False)
    assert len(replica.batches) == 1
    mr = serving.runtime()
    assert (mr.cache_hits, mr.cache_misses) == (1, 1)


async def test_an_app_with_the_cache_off_asks_the_replica_every_time(serving: ServingHarness) -> None:
    await serving.add_app(cache_enabled=False)
    await serving.add_model(app="app")
    replica = await serving.connect()
    for expected in (3.0, 4.0):
        task = serving.predict_soon("app", [doubles(1.0, 2.0)])
        (await replica.next_batch()).answer([expected])
        assert (await task)[0].output == expected
    assert len(replica.batches) == 2


async def test_identical_concurrent_queries_make_one_task(serving: ServingHarness) -> None:
    await serving.add_app()
    await serving.add_model(app="app")
    replica = await serving.connect()
    first = serving.predict_soon("app", [doubles(9.0)])
    second = serving.predict_soon("app", [doubles(9.0)])
    batch = await replica.next_batch()
    await run_until(lambda: serving.runtime().cache_misses == 2)  # the second query has joined the first
    assert batch.inputs == [[9.0]]
    assert len(serving.runtime().queue) == 0
    batch.answer([81.0])
    assert [(await first)[0].output, (await second)[0].output] == [81.0, 81.0]
    assert len(replica.batches) == 1


async def test_a_repeated_input_within_one_request_makes_one_task(serving: ServingHarness) -> None:
    await serving.add_app()
    await serving.add_model(app="app", batch_size=8)
    replica = await serving.connect()
    task = serving.predict_soon("app", [doubles(1.0), doubles(2.0), doubles(1.0)])
    batch = await replica.next_batch()
    assert batch.inputs == [[1.0], [2.0]]
    batch.answer([10.0, 20.0])
    assert [p.output for p in await task] == [10.0, 20.0, 10.0]


# -- versions --------------------------------------------------------------------------------------------
async def test_a_version_the_model_does_not_have_is_refused(serving: ServingHarness) -> None:
    await serving.add_app()
    await serving.add_model(app="app")
    with pytest.raises(QueryError) as refused:
        await serving.path.predict("app", [doubles(1.0)], version="9")
    assert (refused.value.status, refused.value.message) == (400, version_missing("m", "9"))


async def test_a_version_is_refused_for_an_app_with_two_linked_models(serving: ServingHarness) -> None:
    await serving.add_app()
    await serving.add_model("m", app="app")
    await serving.add_model("n", app="app")
    with pytest.raises(QueryError, match="Too many models linked to application app"):
        await serving.path.predict("app", [doubles(1.0)], version="1")


async def test_a_version_is_refused_for_an_app_without_linked_models(serving: ServingHarness) -> None:
    await serving.add_app()
    with pytest.raises(QueryError, match="has no linked model"):
        await serving.path.predict("app", [doubles(1.0)], version="1")


async def test_a_requested_version_is_routed_to_that_versions_replica(serving: ServingHarness) -> None:
    await serving.add_app()
    await serving.add_model(version="1", app="app")
    await serving.add_model(version="2")  # now the current version
    old, new = await serving.connect(version="1"), await serving.connect(version="2")
    pinned = serving.predict_soon("app", [doubles(1.0)], version="1")
    (await old.next_batch()).answer(["v1"])
    current = serving.predict_soon("app", [doubles(1.0)])
    (await new.next_batch()).answer(["v2"])
    assert [(await pinned)[0].output, (await current)[0].output] == ["v1", "v2"]
    assert (len(old.batches), len(new.batches)) == (1, 1)


# -- draining --------------------------------------------------------------------------------------------
async def test_drain_refuses_new_queries_and_lets_the_one_in_flight_finish(serving: ServingHarness) -> None:
    await serving.add_app()
    await serving.add_model(app="app")
    replica = await serving.connect()
    in_flight = serving.predict_soon("app", [doubles(1.0)])
    batch = await replica.next_batch()
    drained = asyncio.get_running_loop().create_task(serving.path.drain(timeout=30.0))
    await run_until(lambda: serving.path.draining)
    rt = serving.snapshot.app("app")
    for app in ("app", rt):  # by name (REST) and as an opened app (V2)
        with pytest.raises(ModelUnavailable) as refused:
            await serving.path.predict(app, [doubles(2.0)])
        assert (refused.value.status, refused.value.headers) == (503, {"Retry-After": "1"})
    with pytest.raises(ModelUnavailable):
        await serving.path.feedback("app", doubles(1.0), 1.0)
    await settle()
    assert not drained.done()
    batch.answer([5.0])
    [prediction] = await in_flight
    assert (prediction.output, prediction.default) == (5.0, False)
    await drained
    assert serving.path.active == 0
    assert len(replica.batches) == 1


async def test_drain_with_nothing_in_flight_returns_at_once(serving: ServingHarness) -> None:
    await serving.add_app()
    await serving.path.drain(timeout=30.0)
    with pytest.raises(ModelUnavailable, match="shutting down"):
        await serving.path.predict("app", [doubles(1.0)])


# -- feedback --------------------------------------------------------------------------------------------
async def test_feedback_is_stored_and_numbered(serving: ServingHarness) -> None:
    await serving.add_app("raw", input_type=InputType.BYTES)
    await serving.add_app("nums")
    first = await serving.path.feedback("raw", b"\x00\xffhi", 1.0, uid=3, query_id=17)
    second = await serving.path.feedback("raw", b"", 0.0)
    other = await serving.path.feedback("nums", doubles(1.5, 2.0), 2.5)
    assert (first.seq, second.seq, other.seq) == (1, 2, 1)
    assert first.query_id != second.query_id
    stored = await serving.store.list_feedback("raw")
    assert [(f.seq, f.input, f.label, f.uid, f.query_id) for f in stored] == [
        (1, base64.b64encode(b"\x00\xffhi").decode(), 1.0, 3, 17), (2, "", 0.0, 0, None)]
    assert all(f.received_at > 0 for f in stored)
    [nums] = await serving.store.list_feedback("nums")
    assert (nums.input, nums.label) == ([1.5, 2.0], 2.5)


async def test_a_query_joining_single_flight_keeps_its_own_deadline(one_at_a_time: OneAtATime) -> None:
    serving, replica = one_at_a_time
    blocker = serving.predict_soon("app", [doubles(0.0)])
    busy = await replica.next_batch()
    leader = serving.predict_soon("app", [doubles(5.0)])  # queued behind the blocker, deadline in 100 ms
    await run_until(lambda: len(serving.runtime().queue) == 1)
    serving.clock.advance(0.06)
    joiner = serving.predict_soon("app", [doubles(5.0)])  # same input 60 ms later: deadline in 100 ms
    await run_until(lambda: serving.runtime().cache_misses == 3)
    serving.clock.advance(0.05)  # the leader's deadline has passed, the joiner has 50 ms left
    assert (await leader)[0].explanation == SLO_MISSED
    assert (await blocker)[0].explanation == SLO_MISSED
    busy.answer([0.0])  # the replica is free: the leader's task is dropped as expired
    await settle()
    assert not joiner.done(), f"answered early: {joiner.result()[0].explanation}"
    (await replica.next_batch()).answer([25.0])
    assert (await joiner)[0].output == 25.0


async def test_a_query_arriving_after_an_identical_querys_task_failed_gets_its_own_task(
        serving: ServingHarness) -> None:
    """The leader still waits (for its second input) when its first input's task has failed: an identical query
    must not join that finished task (nothing would ever resolve its future: it waited out its SLO)."""
    await serving.add_app()
    await serving.add_model(app="app", batch_size=1)
    replica = await serving.connect()
    leader = serving.predict_soon("app", [doubles(1.0), doubles(2.0)])
    (await replica.next_batch()).answer([None], errors={0: "ValueError: boom"})
    await settle()
    later = serving.predict_soon("app", [doubles(1.0)])
    batch = await replica.next_batch()  # the leader's second input
    batch.answer([2.0])
    (await replica.next_batch()).answer([1.0])  # the later query's own task: sent, not joined to the failed one
    assert (await later)[0].output == 1.0
    first, second = await leader
    assert "boom" in first.explanation and second.output == 2.0
