"""RedisPredictionCache: outputs keyed by (model, version, exact input bytes), shared by all frontends.

Key: ``clipper:cache:<model>\\0<version>\\0<sha256 of the input>``; value: msgpack ``[input bytes, output]``.
A lookup compares the stored input bytes with the query's, so two inputs whose hashes collide can never
answer for each other (the interface forbids hash-only matches). Entries expire after ``ttl_seconds``;
memory is bounded by Redis's ``maxmemory`` with ``allkeys-lru``, which this cache sets only when told to
(``manage_memory: true``), since a shared Redis may forbid CONFIG.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, ClassVar

import msgpack
import redis.asyncio as aioredis

from clipper_core.interfaces import CacheKey, PredictionCache

__all__ = ["RedisPredictionCache"]

PREFIX = b"clipper:cache:"


def redis_key(key: CacheKey) -> bytes:
    model, version, data = key
    return PREFIX + model.encode() + b"\0" + version.encode() + b"\0" + hashlib.sha256(data).digest()


class RedisPredictionCache(PredictionCache):
    """Config: ``url`` (default ``$CLIPPER_CACHE_REDIS_URL``, else ``$CLIPPER_STATE_STORE`` when it is a Redis
    URL), ``ttl_seconds`` (3600), ``max_memory_bytes`` with ``manage_memory`` (off)."""

    name: ClassVar[str] = "redis"
    is_async: ClassVar[bool] = True

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        url = self.config.get("url") or os.environ.get("CLIPPER_CACHE_REDIS_URL") or os.environ.get(
            "CLIPPER_STATE_STORE", "")
        if not str(url).startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("the redis cache needs a Redis URL: config 'url' or CLIPPER_CACHE_REDIS_URL")
        self.url = str(url)
        self.ttl = int(self.config.get("ttl_seconds", 3600))
        self._redis: aioredis.Redis | None = None

    async def start(self) -> None:
        self._redis = aioredis.Redis.from_url(self.url, socket_connect_timeout=1.0, socket_timeout=1.0)
        if self.config.get("manage_memory") and self.config.get("max_memory_bytes"):
            await self._redis.config_set("maxmemory", int(self.config["max_memory_bytes"]))
            await self._redis.config_set("maxmemory-policy", "allkeys-lru")

    async def stop(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    @property
    def r(self) -> aioredis.Redis:
        if self._redis is None:
            raise RuntimeError("RedisPredictionCache is not started")
        return self._redis

    def get(self, key: CacheKey) -> tuple[bool, Any]:
        raise TypeError("RedisPredictionCache is asynchronous: use 'await cache.aget(key)'")

    def put(self, key: CacheKey, output: Any) -> None:
        raise TypeError("RedisPredictionCache is asynchronous: use 'await cache.aput(key, output)'")

    async def aget(self, key: CacheKey) -> tuple[bool, Any]:
        raw = await self.r.get(redis_key(key))
        if raw is not None:
            stored_input, output = msgpack.unpackb(raw, raw=False)
            if stored_input == key[2]:
                self.hits += 1
                return True, output
        self.misses += 1
        return False, None

    async def aput(self, key: CacheKey, output: Any) -> None:
        await self.r.set(redis_key(key), msgpack.packb([key[2], output], use_bin_type=True), ex=self.ttl)

    def clear(self) -> None:
        raise TypeError("RedisPredictionCache is asynchronous: use 'await cache.aclear()'")

    async def aclear(self) -> None:
        async for name in self.r.scan_iter(match=PREFIX + b"*", count=1000):
            await self.r.delete(name)
