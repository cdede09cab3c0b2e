"""The Redis state store: the shared contract, change notifications across stores, outages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from clipper_core.errors import ModelUnavailable
from clipper_core.inputs import InputType
from clipper_core.state import Application, ChangeEvent, Feedback, StateStore
from clipper_core.state.redis_store import RedisStateStore
from clipper_core.testing import RedisServer, StateStoreContract


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


def app(name: str) -> Application:
    return Application(name, InputType.DOUBLES, "-1.0", 100_000)


async def wait_for_event(events: asyncio.Queue[ChangeEvent], kind: str, name: str = "", timeout: float = 1.0
                         ) -> ChangeEvent:
    deadline = time.monotonic() + timeout
    while True:
        event = await asyncio.wait_for(events.get(), max(0.0, deadline - time.monotonic()))
        if event.kind == kind and event.name == name:
            return event


async def test_changes_by_one_store_reach_another_within_a_second(redis_url: str) -> None:
    a, b = RedisStateStore(redis_url), RedisStateStore(redis_url)
    await a.open()
    await b.open()
    try:
        events: asyncio.Queue[ChangeEvent] = asyncio.Queue()
        b.subscribe(events.put_nowait)
        await a.add_app(app("shared"))
        await wait_for_event(events, "app", "shared")
        assert (await b.get_app("shared")) == app("shared")
        await a.delete_app("shared")  # Clipper missed deletions; this must arrive too
        await wait_for_event(events, "app", "shared")
        assert await b.get_app("shared") is None
    finally:
        await a.close()
        await b.close()


async def test_frontend_registry_is_shared_and_expires(redis_url: str) -> None:
    a, b = RedisStateStore(redis_url), RedisStateStore(redis_url)
    await a.open()
    await b.open()
    try:
        await a.register_frontend("tcp://127.0.0.1:7001", ttl=0.3)
        await b.register_frontend("tcp://127.0.0.1:7002", ttl=30)
        assert await b.list_frontends() == ["tcp://127.0.0.1:7001", "tcp://127.0.0.1:7002"]
        await asyncio.sleep(0.4)  # let the first registration's TTL run out
        assert await a.list_frontends() == ["tcp://127.0.0.1:7002"]
    finally:
        await a.close()
        await b.close()


async def test_redis_kill_9_fails_fast_then_recovers_with_everything(redis_server: RedisServer) -> None:
    store = RedisStateStore(redis_server.url, timeout=1.0)
    await store.open()
    events: asyncio.Queue[ChangeEvent] = asyncio.Queue()
    store.subscribe(events.put_nowait)
    try:
        await store.add_app(app("durable"))
        assert await store.append_feedback(Feedback("durable", 1, [1.0], 1.0)) == 1
        redis_server.kill9()
        started = time.monotonic()
        with pytest.raises(ModelUnavailable, match="unreachable"):
            await store.list_apps()
        assert time.monotonic() - started < 3
        redis_server.start()
        await wait_for_event(events, "reload", timeout=10)
        assert [a.name for a in await store.list_apps()] == ["durable"]
        assert [f.uid for f in await store.list_feedback("durable")] == [1]
    finally:
        await store.close()
