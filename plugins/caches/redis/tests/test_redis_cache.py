"""The Redis prediction cache: the shared cache contract (with forced hash collisions), sharing between
frontends, TTL, configuration, outages, and registration through the entry point."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis
from clipper_cache_redis import RedisPredictionCache
from clipper_cache_redis.cache import PREFIX
from redis.exceptions import ResponseError

from clipper_core.errors import PluginError
from clipper_core.interfaces import PredictionCache
from clipper_core.plugins import PluginRegistry
from clipper_core.testing import CacheContract, RedisServer


class TestRedisCacheContract(CacheContract):
    @pytest.fixture
    async def cache(self, redis_url: str) -> AsyncIterator[RedisPredictionCache]:
        cache = RedisPredictionCache({"url": redis_url})
        await cache.start()
        yield cache
        await cache.stop()

    def force_hash_collisions(self, cache: PredictionCache, monkeypatch: pytest.MonkeyPatch
                              ) -> Callable[[bytes], bytes]:
        monkeypatch.setattr(cache, "_digest", lambda data: b"same-for-every-input")
        return bytes


@pytest.fixture
async def cache(redis_url: str) -> AsyncIterator[RedisPredictionCache]:
    cache = RedisPredictionCache({"url": redis_url, "ttl_seconds": 60})
    await cache.start()
    yield cache
    await cache.stop()


async def test_an_output_put_by_one_frontend_is_a_hit_for_another(redis_url: str) -> None:
    a, b = RedisPredictionCache({"url": redis_url}), RedisPredictionCache({"url": redis_url})
    await a.start()
    await b.start()
    try:
        await a.aput(("m", "1", b"shared"), {"label": "cat"})
        assert await b.aget(("m", "1", b"shared")) == (True, {"label": "cat"})
        assert (a.hits, a.misses, b.hits, b.misses) == (0, 0, 1, 0)
        await b.aclear()  # one Redis, one cache: clearing it clears it for every frontend
        assert await a.aget(("m", "1", b"shared")) == (False, None)
    finally:
        await a.stop()
        await b.stop()


async def test_key_layout_and_stored_value(redis_url: str, cache: RedisPredictionCache) -> None:
    await cache.aput(("model", "v1", b"\x00in"), [1, 2])
    raw = aioredis.Redis.from_url(redis_url)
    try:
        keys = [bytes(k) for k in await raw.keys(PREFIX + b"*") if isinstance(k, bytes)]
        assert len(keys) == 1 and keys[0].startswith(b"clipper:cache:model\0v1\0") and len(keys[0]) == 23 + 64
        assert 0 < await raw.pttl(keys[0]) <= 60_000
    finally:
        await raw.aclose()


async def test_entries_expire(redis_url: str) -> None:
    cache = RedisPredictionCache({"url": redis_url, "ttl_seconds": 0.2})
    await cache.start()
    try:
        await cache.aput(("m", "1", b"x"), 1)
        assert (await cache.aget(("m", "1", b"x")))[0] is True
        await asyncio.sleep(0.4)  # the TTL must run out
        assert await cache.aget(("m", "1", b"x")) == (False, None)
    finally:
        await cache.stop()


async def test_a_foreign_or_damaged_value_is_a_miss(redis_url: str, cache: RedisPredictionCache) -> None:
    key = ("m", "1", b"x")
    raw = aioredis.Redis.from_url(redis_url)
    try:
        for junk in (b"\xc1", b"not msgpack at all \xff", b"\x93\x01\x02\x03"):
            await raw.set(cache.redis_key(key), junk)
            assert await cache.aget(key) == (False, None)
    finally:
        await raw.aclose()


async def test_sync_calls_are_refused_clearly(cache: RedisPredictionCache) -> None:
    with pytest.raises(TypeError, match=r"asynchronous.*aget"):
        cache.get(("m", "1", b"x"))
    with pytest.raises(TypeError, match=r"asynchronous.*aput"):
        cache.put(("m", "1", b"x"), 1)


async def test_an_outage_costs_hits_not_answers(redis_server: RedisServer) -> None:
    cache = RedisPredictionCache({"url": redis_server.url, "retry_after_seconds": 0.2})
    await cache.start()
    try:
        await cache.aput(("m", "1", b"x"), 1)
        redis_server.kill9()
        started = time.monotonic()
        assert await cache.aget(("m", "1", b"x")) == (False, None)  # a miss, not an exception
        await cache.aput(("m", "1", b"y"), 2)  # dropped
        assert await cache.aget(("m", "1", b"x")) == (False, None)  # Redis left alone meanwhile
        assert time.monotonic() - started < 1.0 and cache.errors == 1
        redis_server.start()
        await asyncio.sleep(0.3)  # past retry_after_seconds
        assert await cache.aget(("m", "1", b"x")) == (True, 1)  # AOF kept it; the cache is back
    finally:
        await cache.stop()


async def test_manage_memory_sets_maxmemory_only_when_asked(redis_url: str) -> None:
    raw = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        plain = RedisPredictionCache({"url": redis_url, "max_memory_bytes": 50_000_000})
        await plain.start()
        await plain.stop()
        assert (await raw.config_get("maxmemory"))["maxmemory"] == "0"
        managed = RedisPredictionCache({"url": redis_url, "max_memory_bytes": 50_000_000, "manage_memory": True})
        await managed.start()
        await managed.stop()
        config = await raw.config_get("maxmemory*")
        assert config["maxmemory"] == "50000000" and config["maxmemory-policy"] == "volatile-lru"
        dedicated = RedisPredictionCache({"url": redis_url, "max_memory_bytes": 60_000_000, "manage_memory": True,
                                          "maxmemory_policy": "allkeys-lru"})
        await dedicated.start()
        await dedicated.stop()
        assert (await raw.config_get("maxmemory-policy"))["maxmemory-policy"] == "allkeys-lru"
    finally:
        await raw.aclose()


async def test_a_redis_that_forbids_config_fails_the_start_clearly(redis_url: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    async def forbidden(self: object, *args: object, **kwargs: object) -> None:
        raise ResponseError("unknown command 'CONFIG'")

    monkeypatch.setattr(aioredis.Redis, "config_set", forbidden)
    cache = RedisPredictionCache({"url": redis_url, "max_memory_bytes": 1 << 20, "manage_memory": True})
    with pytest.raises(PluginError, match=r"could not set maxmemory.*drop manage_memory"):
        await cache.start()
    await cache.stop()


def test_url_comes_from_config_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLIPPER_CACHE_REDIS_URL", raising=False)
    monkeypatch.setenv("CLIPPER_STATE_STORE", "sqlite")
    with pytest.raises(PluginError, match="needs a Redis URL"):
        RedisPredictionCache({})
    monkeypatch.setenv("CLIPPER_STATE_STORE", "redis://state:1/0")
    assert RedisPredictionCache({}).url == "redis://state:1/0"
    monkeypatch.setenv("CLIPPER_CACHE_REDIS_URL", "redis://cache:2/1")
    assert RedisPredictionCache({}).url == "redis://cache:2/1"
    assert RedisPredictionCache({"url": "redis://cfg:3/0"}).url == "redis://cfg:3/0"
    with pytest.raises(PluginError, match="ttl_seconds"):
        RedisPredictionCache({"url": "redis://cfg:3/0", "ttl_seconds": 0})


def test_registered_through_the_entry_point() -> None:
    assert PluginRegistry.create().caches.get("redis") is RedisPredictionCache
