"""CacheContract: the behaviour every :class:`~clipper_core.interfaces.PredictionCache` backend must have.

A backend package subclasses it in one of its test modules (with a ``Test`` name) and overrides the async
``cache`` fixture, yielding a started cache and stopping it afterwards. A backend that can be made to see a
hash collision overrides :meth:`CacheContract.force_hash_collisions` too (else that test is skipped)::

    class TestMyCache(CacheContract):
        @pytest.fixture
        async def cache(self):
            cache = MyCache({...})
            await cache.start()
            yield cache
            await cache.stop()

        def force_hash_collisions(self, cache, monkeypatch):
            monkeypatch.setattr(cache, "_digest", lambda data: b"same for every input")
            return lambda data: data

Synchronous backends (``is_async = False``) are exercised through ``get``/``put``, asynchronous ones through
``aget``/``aput``, as the query path calls them. ``clear()`` is synchronous in the interface; for asynchronous
backends the contract calls it from a worker thread (it may block on the network). The tests are async and
need pytest-asyncio in ``auto`` mode; this module imports only pytest.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from clipper_core.interfaces import CacheKey, PredictionCache

__all__ = ["CacheContract"]


async def _get(cache: PredictionCache, key: CacheKey) -> tuple[bool, Any]:
    return await cache.aget(key) if cache.is_async else cache.get(key)


async def _put(cache: PredictionCache, key: CacheKey, output: Any) -> None:
    if cache.is_async:
        await cache.aput(key, output)
    else:
        cache.put(key, output)


async def _clear(cache: PredictionCache) -> None:
    if cache.is_async:
        await asyncio.to_thread(cache.clear)
    else:
        cache.clear()


class CacheContract:
    """Exact keys (never a hash-only match), model and version isolation, JSON-shaped outputs, replacement,
    hit/miss counting and ``clear()``."""

    @pytest.fixture
    async def cache(self) -> AsyncIterator[PredictionCache]:
        raise NotImplementedError("override the 'cache' fixture: yield a started cache, stop it afterwards")
        yield  # pragma: no cover

    def force_hash_collisions(self, cache: PredictionCache, monkeypatch: pytest.MonkeyPatch
                              ) -> Callable[[bytes], bytes] | None:
        """Make every input the cache sees hash alike, if the backend allows injecting that.

        Returns a function that turns input bytes into what to put in a key (usually ``lambda b: b``; an
        in-process dict backend can return a ``bytes`` subclass with a constant ``__hash__``), or None when the
        backend offers no way (the collision test is then skipped)."""
        return None

    async def test_miss_then_hit(self, cache: PredictionCache) -> None:
        key = ("m", "1", b"\x00\x01\x02")
        assert await _get(cache, key) == (False, None)
        await _put(cache, key, "0.5")
        assert await _get(cache, key) == (True, "0.5")

    async def test_outputs_keep_their_json_shape(self, cache: PredictionCache) -> None:
        for i, output in enumerate([1.5, 7, "text", "", [1, 2, [3]], {"label": "cat", "p": 0.9}, None, True]):
            key = ("m", "1", f"input-{i}".encode())
            await _put(cache, key, output)
            assert await _get(cache, key) == (True, output)

    async def test_any_input_bytes_roundtrip(self, cache: PredictionCache) -> None:
        for data in (b"", bytes(range(256)), b"\x00" * 3, b"x" * 100_000):
            await _put(cache, ("m", "1", data), len(data))
        for data in (b"", bytes(range(256)), b"\x00" * 3, b"x" * 100_000):
            assert await _get(cache, ("m", "1", data)) == (True, len(data))

    async def test_exact_input_bytes_only(self, cache: PredictionCache) -> None:
        await _put(cache, ("m", "1", b"abc"), "abc")
        for other in (b"abd", b"ab", b"abc\x00", b"\x00abc", b"ABC", b""):
            assert (await _get(cache, ("m", "1", other)))[0] is False
        assert await _get(cache, ("m", "1", b"abc")) == (True, "abc")

    async def test_a_hash_collision_never_answers_for_another_input(
            self, cache: PredictionCache, monkeypatch: pytest.MonkeyPatch) -> None:
        wrap = self.force_hash_collisions(cache, monkeypatch)
        if wrap is None:
            pytest.skip(f"{type(cache).__name__} offers no way to force a hash collision")
        first, second = ("m", "1", wrap(b"first")), ("m", "1", wrap(b"second"))
        await _put(cache, first, "first")
        assert await _get(cache, second) == (False, None)
        assert await _get(cache, first) == (True, "first")
        await _put(cache, second, "second")  # both may be kept, or the second may replace the first ...
        assert await _get(cache, second) == (True, "second")
        found, output = await _get(cache, first)
        assert (found, output) in ((True, "first"), (False, None))  # ... but never answer for it

    async def test_versions_and_models_are_isolated(self, cache: PredictionCache) -> None:
        await _put(cache, ("m", "1", b"x"), "v1")
        assert (await _get(cache, ("m", "2", b"x")))[0] is False
        assert (await _get(cache, ("n", "1", b"x")))[0] is False
        assert (await _get(cache, ("m1", "", b"x")))[0] is False  # no ambiguity in how parts are joined
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
        assert cache.hits == hits and cache.misses == misses  # a put is neither
        await _get(cache, ("m", "1", b"y"))
        await _get(cache, ("m", "1", b"y"))
        await _get(cache, ("m", "1", b"z"))
        assert (cache.hits - hits, cache.misses - misses) == (2, 1)

    async def test_clear(self, cache: PredictionCache) -> None:
        for i in range(5):
            await _put(cache, ("m", str(i), b"x"), i)
        await _clear(cache)
        for i in range(5):
            assert await _get(cache, ("m", str(i), b"x")) == (False, None)
        await _put(cache, ("m", "1", b"x"), "again")  # still usable
        assert await _get(cache, ("m", "1", b"x")) == (True, "again")
