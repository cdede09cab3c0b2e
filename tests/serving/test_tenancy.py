"""The query path's multi-tenancy (``serving.tenancy``, issue #18): API keys, rate limits and quotas, input limits,
priority classes and cancellation, over fake replicas and a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from clipper_core.config import Config
from clipper_core.errors import Forbidden, InvalidInput, Overloaded, PayloadTooLarge, RateLimited, Unauthorized
from clipper_core.serving.tenancy import Quota, TokenBucket, demand_shares, presented_key
from clipper_core.tenancy.keys import new_key
from clipper_core.tenancy.limits import KeyLimits
from tests.serving.fakes import FakeReplica, HarnessFactory, ServingHarness, doubles, run_until, settle


async def _served(serving: ServingHarness, **app: object) -> None:
    await serving.add_app(slo_micros=1_000_000, cache_enabled=False, **app)  # type: ignore[arg-type]
    await serving.add_model(app="app")


def _answering(replica: FakeReplica) -> asyncio.Task[None]:
    """A task answering each of the replica's batches with its inputs' first values, until cancelled."""
    async def answer() -> None:
        while True:
            batch = await replica.next_batch()
            batch.answer([float(x[0]) for x in batch.inputs])

    return asyncio.ensure_future(answer())


async def _answer_all(serving: ServingHarness, queries: list[asyncio.Task[object]]) -> None:
    serve = _answering(await serving.connect())
    try:
        await asyncio.gather(*queries)
    finally:
        serve.cancel()


# -- API keys ---------------------------------------------------------------------------------------------------
async def test_an_app_that_requires_a_key_refuses_none_a_wrong_one_and_another_apps(
        serving: ServingHarness) -> None:
    await _served(serving, require_api_key=True)
    await serving.add_app("other", slo_micros=1_000_000)
    mine, secret = new_key("app")
    theirs, other_secret = new_key("other")
    await serving.store.add_api_key(mine)
    await serving.store.add_api_key(theirs)
    await serving.snapshot.sync()
    path = serving.path
    with pytest.raises(Unauthorized, match="requires an API key"):
        await path.predict("app", [doubles(1.0)])
    with pytest.raises(Unauthorized, match="not valid"):
        await path.predict("app", [doubles(1.0)], api_key=secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    with pytest.raises(Unauthorized, match="not valid"):
        await path.predict("app", [doubles(1.0)], api_key="not-a-key")
    with pytest.raises(Forbidden, match=f"'{theirs.key_id}' is for application 'other'"):
        await path.predict("app", [doubles(1.0)], api_key=other_secret)
    answered = serving.predict_soon("app", [doubles(2.0)], api_key=secret)
    await _answer_all(serving, [answered])
    assert (await answered)[0].output == 2.0
    refusals = serving.snapshot.keys.refusals
    assert (refusals.missing["app"], refusals.invalid, refusals.other_app) == (1, 2, 1)


async def test_a_revoked_key_stops_working_with_the_next_snapshot(serving: ServingHarness) -> None:
    await _served(serving, require_api_key=True)
    record, secret = new_key("app")
    await serving.store.add_api_key(record)
    await serving.snapshot.sync()
    serving.snapshot.app("app").guard.precheck(secret, None)  # type: ignore[union-attr]
    assert await serving.store.delete_api_key(record.key_id)
    await serving.snapshot.sync()  # the store's api_key event reloaded it
    with pytest.raises(Unauthorized):
        serving.snapshot.app("app").guard.precheck(secret, None)  # type: ignore[union-attr]


async def test_an_app_without_keys_or_limits_has_no_guard_and_ignores_a_presented_key(
        serving: ServingHarness) -> None:
    await _served(serving)
    assert serving.snapshot.app("app").guard is None
    answered = serving.predict_soon("app", [doubles(3.0)], api_key="whatever")
    await _answer_all(serving, [answered])
    assert (await answered)[0].output == 3.0


def test_a_key_is_read_from_x_api_key_or_a_bearer_authorization() -> None:
    assert presented_key(None, "clk_x") == "clk_x"
    assert presented_key("Bearer clk_y", None) == "clk_y"
    assert presented_key("bearer  clk_z ", None) == "clk_z"
    assert presented_key("Basic abc", None) is None
    assert presented_key(None, None) is None


# -- rate limits and quotas -------------------------------------------------------------------------------------
async def test_requests_per_second_refuse_past_the_burst_then_refill_on_the_clock(serving: ServingHarness) -> None:
    await _served(serving, limits={"requests_per_second": 2.0, "requests_burst": 2})
    replica = await serving.connect()
    serve = _answering(replica)
    try:
        for i in range(2):
            await serving.path.predict("app", [doubles(float(i))])
        with pytest.raises(RateLimited) as refused:
            await serving.path.predict("app", [doubles(9.0)])
        assert refused.value.limit == "requests_per_second"
        assert refused.value.to_json()["scope"] == "application"
        assert refused.value.headers == {"Retry-After": "1"}
        assert "requests_per_second = 2" in refused.value.message
        serving.clock.advance(0.5)  # one token back
        assert (await serving.path.predict("app", [doubles(5.0)]))[0].output == 5.0
        quota = serving.snapshot.app("app").guard.quota  # type: ignore[union-attr]
        assert quota is not None
        assert (quota.admitted, quota.refused, quota.offered) == (3, {"requests_per_second": 1}, 4)
    finally:
        serve.cancel()


async def test_inputs_per_second_count_every_input_and_a_batch_over_the_burst_says_so(
        serving: ServingHarness) -> None:
    await _served(serving, limits={"inputs_per_second": 4.0, "inputs_burst": 4})
    replica = await serving.connect()
    serve = _answering(replica)
    try:
        await serving.path.predict("app", [doubles(1.0), doubles(2.0), doubles(3.0)])
        with pytest.raises(RateLimited, match="inputs_per_second") as refused:
            await serving.path.predict("app", [doubles(1.0), doubles(2.0)])
        assert refused.value.headers == {"Retry-After": "1"}  # 0.25 s for the missing token, rounded up
        with pytest.raises(RateLimited, match="a request of 5 inputs exceeds") as too_big:
            await serving.path.predict("app", [doubles(float(i)) for i in range(5)])
        assert too_big.value.limit == "inputs_burst"
    finally:
        serve.cancel()


async def test_max_concurrent_counts_queries_until_they_are_answered(make_serving: HarnessFactory) -> None:
    serving = await make_serving(Config(state_store="memory", batches_in_flight=1))
    await _served(serving, limits={"max_concurrent": 1})
    replica = await serving.connect()
    first = serving.predict_soon("app", [doubles(1.0)])
    batch = await replica.next_batch()
    with pytest.raises(RateLimited, match="has 1 queries running, its limit max_concurrent is 1"):
        await serving.path.predict("app", [doubles(2.0)])
    batch.answer([1.0])
    assert (await first)[0].output == 1.0
    second = serving.predict_soon("app", [doubles(3.0)])
    (await replica.next_batch()).answer([3.0])
    assert (await second)[0].output == 3.0


async def test_a_keys_own_limit_applies_to_it_alone_and_a_refusal_takes_nothing_from_the_app(
        serving: ServingHarness) -> None:
    await _served(serving, limits={"requests_per_second": 100.0})
    slow, slow_secret = new_key("app", limits=KeyLimits(requests_per_second=1.0))
    fast, fast_secret = new_key("app")
    await serving.store.add_api_key(slow)
    await serving.store.add_api_key(fast)
    await serving.snapshot.sync()
    replica = await serving.connect()
    serve = _answering(replica)
    try:
        await serving.path.predict("app", [doubles(1.0)], api_key=slow_secret)
        with pytest.raises(RateLimited) as refused:
            await serving.path.predict("app", [doubles(2.0)], api_key=slow_secret)
        assert refused.value.scope == "api_key"
        assert slow.key_id in refused.value.message
        for i in range(3):  # the other key (and no key) are limited by the app only
            await serving.path.predict("app", [doubles(float(i))], api_key=fast_secret)
        guard = serving.snapshot.app("app").guard
        assert guard is not None and guard.quota is not None
        assert guard.quota.admitted == 4  # the refused query took no app token
    finally:
        serve.cancel()


async def test_a_quota_keeps_its_tokens_across_snapshot_reloads(serving: ServingHarness) -> None:
    await _served(serving, limits={"requests_per_second": 1.0})
    replica = await serving.connect()
    serve = _answering(replica)
    try:
        await serving.path.predict("app", [doubles(1.0)])
        await serving.add_app("another")  # any change reloads the snapshot
        with pytest.raises(RateLimited):
            await serving.path.predict("app", [doubles(2.0)])
    finally:
        serve.cancel()


def test_a_token_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    bucket = TokenBucket(rate=10.0, burst=5.0, now=0.0)
    assert bucket.wait(5, 0.0) == 0.0
    bucket.tokens -= 5
    assert bucket.wait(1, 0.0) == pytest.approx(0.1)
    assert bucket.wait(1, 0.05) == pytest.approx(0.05)
    assert bucket.wait(5, 100.0) == 0.0 and bucket.tokens == 5.0  # never above the burst
    assert bucket.wait(6, 100.0) == float("inf")


def test_shares_follow_the_demand_and_add_up_to_one() -> None:
    mine = {"app": 30.0, "app/k": 0.0, "solo": 5.0}
    reports = [mine, {"app": 10.0, "app/k": 8.0}]
    shares = demand_shares(mine, reports)
    assert shares["app"] == pytest.approx(31 / 42)
    assert shares["app/k"] == pytest.approx(1 / 10)  # idle here: it keeps a little
    assert shares["solo"] == 1.0  # no other frontend serves it
    other = demand_shares(reports[1], reports)
    assert shares["app"] + other["app"] == pytest.approx(1.0)


def test_a_share_scales_the_rates_bursts_and_the_concurrency_cap() -> None:
    quota = Quota("app", "", KeyLimits(requests_per_second=10.0, requests_burst=10, max_concurrent=4),
                  clock=lambda: 0.0)
    quota.set_share(0.25)
    assert quota.requests is not None
    assert (quota.requests.rate, quota.requests.burst) == (2.5, 2.5)
    quota.active = 1
    with pytest.raises(RateLimited, match="applies 25% of it"):
        quota.check(1, 0.0)


# -- input limits -----------------------------------------------------------------------------------------------
async def test_input_limits_refuse_a_long_input_and_a_large_batch(serving: ServingHarness) -> None:
    await _served(serving, limits={"max_input_length": 3, "max_batch_size": 2, "max_body_bytes": 100})
    with pytest.raises(InvalidInput, match=r"input 1 has length 4; .* max_input_length = 3"):
        await serving.path.predict("app", [doubles(1.0), doubles(1.0, 2.0, 3.0, 4.0)])
    with pytest.raises(PayloadTooLarge, match=r"the request has 3 inputs; .* max_batch_size = 2"):
        await serving.path.predict("app", [doubles(1.0)] * 3)
    guard = serving.snapshot.app("app").guard
    assert guard is not None
    with pytest.raises(PayloadTooLarge, match=r"101 bytes; .* max_body_bytes = 100"):
        guard.precheck(None, 101)
    guard.precheck(None, None)  # a chunked body: checked once read


# -- priority classes -------------------------------------------------------------------------------------------
async def test_higher_classes_are_batched_first_and_low_is_served_when_room_is_left(
        make_serving: HarnessFactory) -> None:
    serving = await make_serving(Config(state_store="memory", batches_in_flight=1))
    for name, priority in (("low", "low"), ("normal", "normal"), ("high", "high")):
        await serving.add_app(name, slo_micros=1_000_000, cache_enabled=False, priority=priority)
    await serving.add_model(app="low")
    for name in ("normal", "high"):
        await serving.store.add_links(name, ["m"])
    await serving.snapshot.sync()
    replica = await serving.connect()
    blocker = serving.predict_soon("normal", [doubles(0.0)])
    first = await replica.next_batch()
    queries = [serving.predict_soon(name, [doubles(value)])  # queued lowest class first
               for name, value in (("low", 1.0), ("normal", 2.0), ("high", 3.0))]
    await run_until(lambda: len(serving.runtime().queue) == 3)
    first.answer([0.0])
    second = await replica.next_batch()
    assert second.inputs == [[3.0], [2.0]]  # the batch grew to 2: high, then normal; low waits behind them
    second.answer([3.0, 2.0])
    third = await replica.next_batch()  # nothing of a higher class is left: low is served
    assert third.inputs == [[1.0]]
    third.answer([1.0])
    assert [(await q)[0].output for q in (blocker, *queries)] == [0.0, 1.0, 2.0, 3.0]


async def test_under_overload_the_low_class_is_refused_first(make_serving: HarnessFactory) -> None:
    serving = await make_serving(Config(state_store="memory", batches_in_flight=1, max_queue_length=4))
    await serving.add_app("low", slo_micros=1_000_000, cache_enabled=False, priority="low")
    await serving.add_app("normal", slo_micros=1_000_000, cache_enabled=False)
    await serving.add_model(app="low")
    await serving.store.add_links("normal", ["m"])
    await serving.snapshot.sync()
    replica = await serving.connect()
    blocker = serving.predict_soon("normal", [doubles(0.0)])
    await replica.next_batch()
    queued = [serving.predict_soon("normal", [doubles(float(i))]) for i in (1, 2)]
    await run_until(lambda: len(serving.runtime().queue) == 2)
    with pytest.raises(Overloaded, match="limit 2"):  # low may fill half of the queue
        await serving.path.predict("low", [doubles(5.0)])
    more = serving.predict_soon("normal", [doubles(3.0)])  # normal still gets in
    await run_until(lambda: len(serving.runtime().queue) == 3)
    for task in (blocker, *queued, more):
        task.cancel()


# -- cancellation -----------------------------------------------------------------------------------------------
async def test_an_input_batch_cancelled_half_way_sends_nothing_more_and_is_counted(
        make_serving: HarnessFactory) -> None:
    serving = await make_serving(Config(state_store="memory", batches_in_flight=1))
    await serving.add_app(slo_micros=1_000_000, cache_enabled=False)
    await serving.add_model(app="app", batch_size=2)
    replica = await serving.connect()
    query = serving.predict_soon("app", [doubles(float(i)) for i in range(4)])
    first = await replica.next_batch()
    assert first.inputs == [[0.0], [1.0]]
    query.cancel()  # its client left with half of it sent
    await settle()
    first.answer([0.0, 1.0])  # answers nobody
    queue = serving.runtime().queue
    await run_until(lambda: queue.cancelled == 2)
    await settle()
    assert len(replica.batches) == 1  # the other half never reached the model
    assert len(queue) == 0 and queue.dropped == 0
    with pytest.raises(asyncio.CancelledError):
        await query
