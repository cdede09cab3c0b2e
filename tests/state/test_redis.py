"""The Redis state store: the shared contract, change notifications across stores (deletions included: Clipper
lost them), the shared frontend registry, and Redis outages (kill -9, a hung server): fail fast, recover,
announce "reload", keep everything acknowledged."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from clipper_core.errors import ClipperError
from clipper_core.inputs import InputType
from clipper_core.state import ApiKey, Application, ChangeEvent, Feedback, Model, Replica, StateStore
from clipper_core.state.redis import CHANNEL, PREFIX, RedisStateStore, RedisUnavailable, feed
from clipper_core.state.redis.layout import API_KEYS, APPS, FRONTENDS, ROLLOUTS
from clipper_core.testing import RedisServer, StateStoreContract
from tests.state.recorder import Recorder


class TestRedisStateStore(StateStoreContract):
    persistent = True

    @pytest.fixture
    async def store(self, redis_url: str) -> AsyncIterator[StateStore]:
        self._opened: list[RedisStateStore] = []
        store = RedisStateStore(redis_url)
        await store.open()
        self._opened.append(store)
        yield store
        for s in self._opened:
            await s.close()

    async def reopen(self, store: StateStore) -> StateStore:
        assert isinstance(store, RedisStateStore)
        await store.close()
        fresh = RedisStateStore(store.url)
        await fresh.open()
        self._opened.append(fresh)
        return fresh


def app(name: str, **changes: object) -> Application:
    return Application(name, InputType.DOUBLES, "-1.0", 100_000).replace(**changes)


def model(name: str = "m", version: str = "1") -> Model:
    return Model(name, version, InputType.DOUBLES)


@pytest.fixture
async def pair(redis_url: str) -> AsyncIterator[tuple[RedisStateStore, RedisStateStore]]:
    """Two stores over one Redis, as two frontends would have."""
    a, b = RedisStateStore(redis_url), RedisStateStore(redis_url)
    await a.open()
    await b.open()
    yield a, b
    await a.close()
    await b.close()


# -- change notifications across stores ---------------------------------------------------------------
async def test_every_change_by_one_store_reaches_another_as_the_same_events(
        pair: tuple[RedisStateStore, RedisStateStore]) -> None:
    a, b = pair
    mine, theirs = Recorder(a), Recorder(b)
    await a.add_app(app("shared"))
    await theirs.wait_for_count(1)
    assert theirs.events == [ChangeEvent("app", "shared")]
    assert await b.get_app("shared") == app("shared")  # visible when announced
    await a.add_links("shared", ["m"])
    await a.add_model(model("m", "1"))
    await a.add_model(model("m", "2"), make_current=False)
    await a.set_current_version("m", "2")
    await a.update_app(app("shared", latency_slo_micros=5))
    await a.add_replica(Replica("m", "2", 0, InputType.DOUBLES, "fe"))
    await a.delete_model("m", "2")
    await a.delete_links("shared", ["m"])
    await a.delete_app("shared")  # Clipper's frontends missed this one (DEL vs hdel); it must arrive
    await theirs.wait_for_count(len(mine.events))
    assert theirs.events == mine.events == [
        ChangeEvent("app", "shared"), ChangeEvent("link", "shared"), ChangeEvent("model", "m", "1"),
        ChangeEvent("current_version", "m"), ChangeEvent("model", "m", "2"), ChangeEvent("current_version", "m"),
        ChangeEvent("app", "shared"), ChangeEvent("replica", "m", "2"), ChangeEvent("model", "m", "2"),
        ChangeEvent("current_version", "m"), ChangeEvent("replica", "m", "2"), ChangeEvent("link", "shared"),
        ChangeEvent("app", "shared")]
    assert await b.get_app("shared") is None and await b.list_models() == [model("m", "1")]
    assert await b.current_versions() == {}


async def test_rollouts_are_shared_and_announced_across_stores(
        redis_url: str, pair: tuple[RedisStateStore, RedisStateStore]) -> None:
    a, b = pair
    mine, theirs = Recorder(a), Recorder(b)
    record = {"model": "m", "candidate": "2", "weight": 0.25, "steps": [{"weight": 0.5}]}
    await a.put_rollout(record)
    await theirs.wait_for_count(1)
    assert theirs.events == [ChangeEvent("rollout", "m")]
    assert await b.get_rollout("m") == record  # visible when announced
    await b.put_rollout({"model": "a", "weight": 1.0})
    await a.delete_rollout("m")
    await a.delete_rollout("m")  # nothing deleted: nothing announced
    await theirs.wait_for_count(3)
    await mine.wait_for_count(3)
    assert theirs.events == [ChangeEvent("rollout", "m"), ChangeEvent("rollout", "a"), ChangeEvent("rollout", "m")]
    assert sorted(e.name for e in mine.events) == ["a", "m", "m"] and len(mine.events) == 3
    assert await a.list_rollouts() == [{"model": "a", "weight": 1.0}]
    raw = aioredis.Redis.from_url(redis_url)
    try:  # the layout: one hash, model name -> the record's JSON
        assert await raw.hgetall(ROLLOUTS) == {b"a": b'{"model":"a","weight":1.0}'}
        assert ROLLOUTS == "clipper:rollouts"
    finally:
        await raw.aclose()


async def test_api_keys_are_shared_and_a_revocation_reaches_another_store_within_a_second(
        redis_url: str, pair: tuple[RedisStateStore, RedisStateStore]) -> None:
    """What makes "a revoked key stops working within 1 s on every frontend" possible: each frontend's store hears
    the api_key event of a key added or revoked through another store, and reads the change when it does."""
    a, b = pair
    await a.add_app(app("tenant"))
    theirs = Recorder(b)
    key = ApiKey("0123456789ab", "tenant", "ci", "00" * 16, "ab" * 32, 1.7e9, {"requests_per_second": 2.0})
    await a.add_api_key(key)
    await theirs.wait(lambda events: ChangeEvent("api_key", "tenant") in events)
    assert await b.get_api_key(key.key_id) == key  # visible when announced
    before = len(theirs.events)
    started = time.monotonic()
    assert await a.delete_api_key(key.key_id) is True
    await theirs.wait(lambda events: events[before:] == [ChangeEvent("api_key", "tenant")], timeout=1.0)
    assert time.monotonic() - started < 1.0
    assert await b.get_api_key(key.key_id) is None and await b.list_api_keys() == []
    await b.add_api_key(key.replace(key_id="ba9876543210"))
    await a.delete_app("tenant")  # its keys go with it, announced as such
    await theirs.wait(lambda events: events[-2:] == [ChangeEvent("app", "tenant"), ChangeEvent("api_key", "tenant")])
    raw = aioredis.Redis.from_url(redis_url)
    try:  # the layout: one hash, key id -> the record's JSON
        assert API_KEYS == "clipper:api_keys" and await raw.hgetall(API_KEYS) == {}
        await a.add_app(app("tenant"))
        await a.add_api_key(key)
        stored = await raw.hget(API_KEYS, key.key_id)
        assert stored is not None and b'"digest":"' + b"ab" * 32 + b'"' in stored
    finally:
        await raw.aclose()


async def test_an_app_record_written_before_api_keys_reads_with_the_defaults(redis_url: str) -> None:
    raw = aioredis.Redis.from_url(redis_url)
    try:  # exactly what a clipper before multi-tenancy wrote for an app
        await raw.hset(APPS, "old", b'{"name":"old","input_type":"doubles","default_output":"-1.0",'
                                    b'"latency_slo_micros":1000,"policy":"default","policy_config":{},'
                                    b'"cache_enabled":true}')
        await raw.hset(PREFIX + "links", "old", b"[]")
    finally:
        await raw.aclose()
    store = RedisStateStore(redis_url)
    await store.open()
    try:
        got = await store.get_app("old")
        assert got == Application("old", InputType.DOUBLES, "-1.0", 1000)
        assert got is not None and (got.require_api_key, got.priority, got.limits) == (False, "normal", None)
        await store.update_app(got.replace(require_api_key=True, limits={"max_body_bytes": 1024}))
        assert await store.get_app("old") == got.replace(require_api_key=True, limits={"max_body_bytes": 1024})
    finally:
        await store.close()


async def test_a_store_hears_its_own_changes_exactly_once(pair: tuple[RedisStateStore, RedisStateStore]) -> None:
    a, b = pair
    at_a, at_b = Recorder(a), Recorder(b)
    await b.add_app(app("x"))
    assert at_b.events == [ChangeEvent("app", "x")]  # synchronously, by the writer
    await a.add_app(app("y"))
    # Redis delivers b's announcement of x before a's of y: once y arrived, an echo of x would have too
    await at_b.wait(lambda events: ChangeEvent("app", "y") in events)
    assert at_b.events == [ChangeEvent("app", "x"), ChangeEvent("app", "y")]
    await at_a.wait_for_count(2)  # its own y at once, b's x whenever the feed delivers it
    assert sorted(e.name for e in at_a.events) == ["x", "y"] and len(at_a.events) == 2


async def test_a_malformed_announcement_is_ignored(redis_url: str,
                                                   pair: tuple[RedisStateStore, RedisStateStore]) -> None:
    a, b = pair
    theirs = Recorder(b)
    raw = aioredis.Redis.from_url(redis_url)
    try:
        for junk in (b"not json", b"[1, 2]", b'{"name": "no kind"}'):
            await raw.publish(CHANNEL, junk)
    finally:
        await raw.aclose()
    await a.add_app(app("after"))
    await theirs.wait_for_count(1)
    assert theirs.events == [ChangeEvent("app", "after")]


# -- the frontend registry ----------------------------------------------------------------------------
async def test_frontend_registry_is_shared_and_expires(redis_url: str,
                                                       pair: tuple[RedisStateStore, RedisStateStore]) -> None:
    a, b = pair
    await a.register_frontend("tcp://127.0.0.1:7001", ttl=0.3)
    await b.register_frontend("tcp://127.0.0.1:7002", ttl=30)
    await b.register_frontend("tcp://127.0.0.1:7003", ttl=30)
    assert await b.list_frontends() == ["tcp://127.0.0.1:7001", "tcp://127.0.0.1:7002", "tcp://127.0.0.1:7003"]
    await a.unregister_frontend("tcp://127.0.0.1:7003")
    assert await b.list_frontends() == ["tcp://127.0.0.1:7001", "tcp://127.0.0.1:7002"]
    await asyncio.sleep(0.4)  # let the first registration's TTL run out
    assert await a.list_frontends() == ["tcp://127.0.0.1:7002"]
    raw = aioredis.Redis.from_url(redis_url)
    try:
        assert await raw.hkeys(FRONTENDS) == [b"tcp://127.0.0.1:7002"]  # the expired entry was pruned
    finally:
        await raw.aclose()
    await a.register_frontend("tcp://127.0.0.1:7001", ttl=30)  # a refresh brings it back
    assert await b.list_frontends() == ["tcp://127.0.0.1:7001", "tcp://127.0.0.1:7002"]


# -- outages ------------------------------------------------------------------------------------------
async def _expect_fast_503(call: Callable[[], object], url: str, within: float) -> None:
    started = time.monotonic()
    with pytest.raises(RedisUnavailable) as info:
        await call()  # type: ignore[misc]
    assert time.monotonic() - started < within
    assert isinstance(info.value, ClipperError) and info.value.status == 503
    assert f"Redis at {url}" in info.value.message and "unreachable" in info.value.message


async def test_kill_9_fails_fast_then_recovers_with_everything(redis_server: RedisServer) -> None:
    url = redis_server.url
    a, b = RedisStateStore(url, timeout=1.0), RedisStateStore(url, timeout=1.0)
    await a.open()
    await b.open()
    at_a, at_b = Recorder(a), Recorder(b)
    try:
        await a.add_app(app("durable"))
        await a.add_links("durable", ["m"])
        await a.add_model(model("m", "1"))
        await a.add_model(model("m", "2"), make_current=False)
        await a.put_policy_state("durable", 3, b"\x00state")
        assert await a.next_replica_id("m", "1") == 0
        assert [await a.append_feedback(Feedback("durable", uid, [1.0], 1.0)) for uid in (1, 2)] == [1, 2]

        redis_server.kill9()
        for call in (a.list_apps, lambda: a.add_app(app("lost")), lambda: b.append_feedback(
                Feedback("durable", 9, [1.0], 1.0)), lambda: a.register_frontend("tcp://h:1")):
            await _expect_fast_503(call, url, within=2.0)

        redis_server.start()
        await at_a.wait_for_reload(timeout=10)
        await at_b.wait_for_reload(timeout=10)
        assert [x.name for x in await b.list_apps()] == ["durable"]
        assert await b.get_links("durable") == ["m"]
        assert await b.list_models() == [model("m", "1"), model("m", "2")]
        assert await b.current_versions() == {"m": "1"}
        assert await b.get_policy_state("durable", 3) == b"\x00state"
        assert await b.next_replica_id("m", "1") == 1
        assert [(f.seq, f.uid) for f in await b.list_feedback("durable")] == [(1, 1), (2, 2)]
        assert await b.append_feedback(Feedback("durable", 3, [1.0], 1.0)) == 3
        before = len(at_b.events)
        await a.delete_app("durable")  # the feed works again
        await at_b.wait(lambda events: events[before:] == [ChangeEvent("app", "durable")])
    finally:
        await a.close()
        await b.close()


async def test_an_immediate_restart_still_announces_reload(redis_server: RedisServer) -> None:
    store = RedisStateStore(redis_server.url, timeout=1.0)
    await store.open()
    events = Recorder(store)
    try:
        await store.add_app(app("x"))
        redis_server.restart()  # kill -9 and start at once: the drop must not go unnoticed
        await events.wait_for_reload(timeout=10)
        assert [x.name for x in await store.list_apps()] == ["x"]
    finally:
        await store.close()


async def test_a_hung_redis_times_out_and_the_feed_reconnects(redis_server: RedisServer,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed, "_IDLE_PING", 0.3)  # notice the silent connection sooner
    store = RedisStateStore(redis_server.url, timeout=0.5)
    await store.open()
    events = Recorder(store)
    try:
        redis_server.pause()  # connections stay open, nothing answers: without timeouts every call would hang
        await _expect_fast_503(store.list_apps, redis_server.url, within=1.5)
        await asyncio.sleep(2.0)  # an outage longer than the feed's PING deadline (0.3 + 2 * 0.5 s)
        redis_server.resume()
        await events.wait_for_reload(timeout=10)
        await store.add_app(app("after"))
        assert await store.get_app("after") == app("after")
    finally:
        redis_server.resume()
        await store.close()


async def test_open_fails_fast_when_redis_is_down(redis_server: RedisServer) -> None:
    url = redis_server.url
    redis_server.kill9()
    store = RedisStateStore(url, timeout=0.5)
    await _expect_fast_503(store.open, url, within=1.5)
    await store.close()


def test_passwords_never_appear_in_messages() -> None:
    store = RedisStateStore("redis://user:s3cret@db.example:6380/2")
    assert "s3cret" not in repr(store)
    error = store._unavailable(ConnectionError("refused"))
    assert "s3cret" not in error.message and "redis://user:***@db.example:6380/2" in error.message


async def test_a_task_cancelled_mid_call_stops_even_when_redis_py_drops_the_cancel(redis_url: str) -> None:
    """redis-py bounds writes with ``asyncio.wait_for``, which on Python 3.11 drops a cancel arriving as the write
    completes; a loop of store calls (the load reporter's) must stop anyway, or a server's stop waits forever."""
    store = RedisStateStore(redis_url)
    await store.open()

    async def report_forever() -> None:
        while True:
            await store.put_load("frontend", {}, ttl=5.0)

    try:
        for steps in range(120):  # cancel at each point of a call's progress in turn
            task = asyncio.ensure_future(report_forever())
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            done, _ = await asyncio.wait((task,), timeout=5)
            assert done, f"the task cancelled after {steps} loop steps went on running"
            assert task.cancelled()
    finally:
        await store.close()
