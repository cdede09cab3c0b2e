"""The Redis prediction cache: exact keys, version isolation, sharing between frontends, TTL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from clipper_cache_redis import RedisPredictionCache
from clipper_cache_redis import cache as cache_module

from clipper_core.plugins import PluginRegistry
from clipper_core.testing import CacheContract


@pytest.fixture
async def cache(redis_url: str) -> AsyncIterator[RedisPredictionCache]:
    cache = RedisPredictionCache({"url": redis_url, "ttl_seconds": 60})
    await cache.start()
    yield cache
    await cache.stop()


async def test_roundtrip_and_counters(cache: RedisPredictionCache) -> None:
    key = ("m", "1", b"\x00\x01")
    assert await cache.aget(key) == (False, None)
    await cache.aput(key, [1.5, "x"])
    assert await cache.aget(key) == (True, [1.5, "x"])
    assert (cache.hits, cache.misses) == (1, 1)


async def test_versions_and_models_are_isolated(cache: RedisPredictionCache) -> None:
    await cache.aput(("m", "1", b"in"), "v1")
    assert await cache.aget(("m", "2", b"in")) == (False, None)
    assert await cache.aget(("n", "1", b"in")) == (False, None)


async def test_a_hash_collision_never_answers_for_another_input(cache: RedisPredictionCache,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_module, "redis_key", lambda key: b"clipper:cache:collide")
    await cache.aput(("m", "1", b"first"), "first")
    assert await cache.aget(("m", "1", b"second")) == (False, None)
    assert await cache.aget(("m", "1", b"first")) == (True, "first")


async def test_an_output_put_by_one_frontend_is_a_hit_for_another(redis_url: str) -> None:
    a, b = RedisPredictionCache({"url": redis_url}), RedisPredictionCache({"url": redis_url})
    await a.start()
    await b.start()
    try:
        await a.aput(("m", "1", b"shared"), 42)
        assert await b.aget(("m", "1", b"shared")) == (True, 42)
    finally:
        await a.stop()
        await b.stop()


async def test_entries_expire(redis_url: str) -> None:
    cache = RedisPredictionCache({"url": redis_url, "ttl_seconds": 1})
    await cache.start()
    try:
        await cache.aput(("m", "1", b"x"), 1)
        await asyncio.sleep(1.5)  # the TTL must run out
        assert await cache.aget(("m", "1", b"x")) == (False, None)
    finally:
        await cache.stop()


def test_registered_through_the_entry_point() -> None:
    assert PluginRegistry.create().caches.get("redis") is RedisPredictionCache


async def test_sync_calls_are_refused_clearly(cache: RedisPredictionCache) -> None:
    with pytest.raises(TypeError, match="asynchronous"):
        cache.get(("m", "1", b"x"))


class TestRedisCacheContract(CacheContract):
    @pytest.fixture
    async def cache(self, redis_url: str) -> AsyncIterator[RedisPredictionCache]:
        cache = RedisPredictionCache({"url": redis_url})
        await cache.start()
        yield cache
        await cache.stop()
