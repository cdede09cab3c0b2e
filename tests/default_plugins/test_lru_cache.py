"""The built-in LRU cache: the shared cache contract, plus its byte budget and eviction order."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from clipper_core.default_plugins.lru_cache import LRUCache
from clipper_core.interfaces import PredictionCache
from clipper_core.testing import CacheContract


class _SameHash(bytes):
    """Input bytes whose hash is the same for every value: the dict must fall back to comparing them."""

    def __hash__(self) -> int:
        return 0


class TestLRUCache(CacheContract):
    @pytest.fixture
    async def cache(self) -> AsyncIterator[LRUCache]:
        cache = LRUCache({"size_bytes": 1 << 20})
        await cache.start()
        yield cache
        await cache.stop()

    def force_hash_collisions(self, cache: PredictionCache, monkeypatch: pytest.MonkeyPatch
                              ) -> Callable[[bytes], bytes]:
        return _SameHash


def test_byte_budget_evicts_least_recently_used() -> None:
    cache = LRUCache({"size_bytes": 1000})
    for i in range(20):
        cache.put(("m", "1", bytes([i]) * 10), "x" * 10)
        cache.get(("m", "1", bytes([0]) * 10))  # keep the first one fresh
    assert cache.size <= 1000
    assert cache.get(("m", "1", bytes([0]) * 10))[0] is True
    assert cache.get(("m", "1", bytes([1]) * 10))[0] is False


def test_an_output_larger_than_the_cache_is_not_cached() -> None:
    cache = LRUCache({"size_bytes": 200})
    cache.put(("m", "1", b"k"), "y" * 500)
    assert cache.get(("m", "1", b"k"))[0] is False and cache.size == 0
