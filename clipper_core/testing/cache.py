"""CacheContract: the behaviour every PredictionCache backend must have.

A backend package subclasses it in its tests and overrides the async ``cache`` fixture (yielding a started
cache, stopping it afterwards)::

    class TestMyCache(CacheContract):
        @pytest.fixture
        async def cache(self):
            cache = MyCache({...}); await cache.start(); yield cache; await cache.stop()

Synchronous backends (``is_async = False``) are exercised through ``get``/``put``, asynchronous ones through
``aget``/``aput``, exactly as the router calls them.
"""

from __future__ import annotations

from typing import Any

from clipper_core.interfaces import CacheKey, PredictionCache

__all__ = ["CacheContract"]


async def _get(cache: PredictionCache, key: CacheKey) -> tuple[bool, Any]:
    return await cache.aget(key) if cache.is_async else cache.get(key)


async def _put(cache: PredictionCache, key: CacheKey, output: Any) -> None:
    if cache.is_async:
        await cache.aput(key, output)
    else:
        cache.put(key, output)


class CacheContract:
    """Exact keys, version and model isolation, JSON-like outputs, hit/miss counting."""

    async def test_miss_then_hit(self, cache: PredictionCache) -> None:
        key = ("m", "1", b"\x00\x01\x02")
        assert await _get(cache, key) == (False, None)
        await _put(cache, key, "0.5")
        assert await _get(cache, key) == (True, "0.5")

    async def test_outputs_keep_their_json_shape(self, cache: PredictionCache) -> None:
        for i, output in enumerate([1.5, 7, "text", [1, 2, [3]], {"label": "cat", "p": 0.9}, None, True]):
            key = ("m", "1", f"input-{i}".encode())
            await _put(cache, key, output)
            assert await _get(cache, key) == (True, output)

    async def test_exact_input_bytes_only(self, cache: PredictionCache) -> None:
        await _put(cache, ("m", "1", b"abc"), "abc")
        for other in (b"abd", b"ab", b"abc\x00", b""):
            assert (await _get(cache, ("m", "1", other)))[0] is False

    async def test_versions_and_models_are_isolated(self, cache: PredictionCache) -> None:
        await _put(cache, ("m", "1", b"x"), "v1")
        assert (await _get(cache, ("m", "2", b"x")))[0] is False
        assert (await _get(cache, ("n", "1", b"x")))[0] is False
        await _put(cache, ("m", "2", b"x"), "v2")
        assert await _get(cache, ("m", "1", b"x")) == (True, "v1")
        assert await _get(cache, ("m", "2", b"x")) == (True, "v2")

    async def test_put_replaces(self, cache: PredictionCache) -> None:
        await _put(cache, ("m", "1", b"x"), "old")
        await _put(cache, ("m", "1", b"x"), "new")
        assert await _get(cache, ("m", "1", b"x")) == (True, "new")

    async def test_hits_and_misses_are_counted(self, cache: PredictionCache) -> None:
        hits, misses = cache.hits, cache.misses
        await _put(cache, ("m", "1", b"y"), 1)
        await _get(cache, ("m", "1", b"y"))
        await _get(cache, ("m", "1", b"z"))
        assert (cache.hits - hits, cache.misses - misses) == (1, 1)
