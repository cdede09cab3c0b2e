"""RedisPredictionCache: outputs keyed by (model, version, exact input bytes), shared by every query frontend.

Key and value::

    clipper:cache:<model>\\0<version>\\0<hex SHA-256 of the input bytes>
        -> msgpack [model, version, input bytes, output], expiring after ttl_seconds

A lookup compares the stored model, version and input bytes with the query's, so two inputs whose hashes
collide can never answer for each other (the interface forbids hash-only matches). Memory is bounded by
Redis's ``maxmemory`` and an LRU eviction policy; this cache sets them (``CONFIG SET``) only with
``manage_memory: true``, since a shared or managed Redis may forbid CONFIG. The policy it sets by default is
``volatile-lru``: every cache entry has a TTL and nothing of the state store has one, so when cache and state
store share a Redis only cache entries are ever evicted (``allkeys-lru`` could evict registered apps).

The cache is asynchronous (``is_async = True``): the router awaits :meth:`aget` and :meth:`aput`; the
synchronous ``get``/``put`` raise. A Redis outage costs cache hits, never answers: a failed call counts as a
miss (or a dropped put), is logged once, and Redis is left alone for ``retry_after_seconds`` so queries do
not wait on it again and again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from typing import Any, ClassVar

import msgpack
import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry as SyncRetry

from clipper_core.errors import PluginError
from clipper_core.interfaces import CacheKey, PredictionCache

__all__ = ["PREFIX", "RedisPredictionCache"]

log = logging.getLogger(__name__)

PREFIX = b"clipper:cache:"
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class RedisPredictionCache(PredictionCache):
    """A prediction cache in Redis. Config (all optional):

    * ``url``: the Redis URL; default ``$CLIPPER_CACHE_REDIS_URL``, else ``$CLIPPER_STATE_STORE`` when that
      is a Redis URL (the server passes its Redis state store's URL);
    * ``ttl_seconds`` (3600): how long an output is reused;
    * ``manage_memory`` (false) and ``max_memory_bytes``: when both are set, :meth:`start` runs ``CONFIG SET
      maxmemory <bytes>`` and ``CONFIG SET maxmemory-policy <maxmemory_policy>``;
    * ``maxmemory_policy`` (``volatile-lru``): ``allkeys-lru`` only for a Redis that holds nothing but the cache;
    * ``timeout_seconds`` (0.5): connect and reply timeout of each call;
    * ``retry_after_seconds`` (1.0): after a failure, calls skip Redis for this long.

    ``size_bytes`` (the in-process cache's budget, passed by the server) is ignored.
    """

    name: ClassVar[str] = "redis"
    is_async: ClassVar[bool] = True

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        url = str(self.config.get("url") or os.environ.get("CLIPPER_CACHE_REDIS_URL") or "")
        if not url:
            state_store = os.environ.get("CLIPPER_STATE_STORE", "")
            url = state_store if state_store.startswith(_REDIS_SCHEMES) else ""
        if not url.startswith(_REDIS_SCHEMES):
            raise PluginError("the redis cache needs a Redis URL: config 'url', CLIPPER_CACHE_REDIS_URL, or a "
                              f"redis:// state store (got {url!r})")
        self.url = url
        self.ttl = float(self.config.get("ttl_seconds", 3600))
        if self.ttl <= 0:
            raise PluginError(f"the redis cache's ttl_seconds must be positive (got {self.ttl})")
        self.timeout = float(self.config.get("timeout_seconds", 0.5))
        self.retry_after = float(self.config.get("retry_after_seconds", 1.0))
        self.maxmemory_policy = str(self.config.get("maxmemory_policy", "volatile-lru"))
        if self.maxmemory_policy not in ("volatile-lru", "allkeys-lru", "volatile-lfu", "allkeys-lfu"):
            raise PluginError("the redis cache's maxmemory_policy must be volatile-lru, allkeys-lru, volatile-lfu "
                              f"or allkeys-lfu (got {self.maxmemory_policy!r})")
        self.errors = 0
        """Redis calls that failed (each counted as a miss or a dropped put)."""
        self._down_until = 0.0
        self._redis: aioredis.Redis | None = None

    # -- lifecycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect; apply the memory settings when ``manage_memory`` asks for them.

        An unreachable Redis is only logged (the frontend serves without cache hits until it is back);
        a Redis that refuses ``CONFIG SET`` under ``manage_memory`` raises :class:`PluginError`."""
        self._redis = aioredis.Redis.from_url(self.url, socket_connect_timeout=self.timeout,
                                              socket_timeout=self.timeout, retry=Retry(NoBackoff(), 0))
        max_memory = int(self.config.get("max_memory_bytes") or 0)
        try:
            await self._redis.ping()
            if self.config.get("manage_memory") and max_memory > 0:
                await self._redis.config_set("maxmemory", max_memory)
                await self._redis.config_set("maxmemory-policy", self.maxmemory_policy)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            self._failed(exc)
        except RedisError as exc:
            raise PluginError(f"the redis cache could not set maxmemory on {self._where()} ({exc}); set it in "
                              "Redis's own configuration and drop manage_memory") from None

    async def stop(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()

    @property
    def _r(self) -> aioredis.Redis:
        if self._redis is None:
            raise RuntimeError("RedisPredictionCache is not started")
        return self._redis

    def _where(self) -> str:
        return f"Redis at {self.url.split('@')[-1]}"  # never the password

    # -- keys and values ------------------------------------------------------------------------------
    def _digest(self, data: bytes) -> bytes:
        """The input part of the Redis key (tests replace it to force collisions)."""
        return hashlib.sha256(data).hexdigest().encode()

    def redis_key(self, key: CacheKey) -> bytes:
        model, version, data = key
        return PREFIX + model.encode() + b"\0" + version.encode() + b"\0" + self._digest(data)

    @staticmethod
    def _decode(raw: bytes | str, key: CacheKey) -> tuple[bool, Any]:
        try:
            model, version, data, output = msgpack.unpackb(raw, raw=False, strict_map_key=False)
        except (ValueError, TypeError, msgpack.UnpackException):
            return False, None  # not ours, or damaged: a miss
        if (model, version, data) != (key[0], key[1], bytes(key[2])):
            return False, None  # a hash collision (or a foreign key): never another input's output
        return True, output

    # -- outages --------------------------------------------------------------------------------------
    def _skipping(self) -> bool:
        return time.monotonic() < self._down_until

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        if not self._down_until:
            log.warning("prediction cache: %s failed (%s); serving without it, retrying every %.1f s",
                        self._where(), exc, self.retry_after)
        self._down_until = time.monotonic() + self.retry_after

    def _succeeded(self) -> None:
        if self._down_until:
            log.warning("prediction cache: %s is reachable again", self._where())
            self._down_until = 0.0

    # -- the cache ------------------------------------------------------------------------------------
    def get(self, key: CacheKey) -> tuple[bool, Any]:
        raise TypeError("RedisPredictionCache is asynchronous (is_async = True): use 'await cache.aget(key)'")

    def put(self, key: CacheKey, output: Any) -> None:
        raise TypeError("RedisPredictionCache is asynchronous (is_async = True): use "
                        "'await cache.aput(key, output)'")

    async def aget(self, key: CacheKey) -> tuple[bool, Any]:
        """(True, output) only when the stored model, version and input bytes equal ``key``'s."""
        if self._skipping():
            self.misses += 1
            return False, None
        try:
            raw = await self._r.get(self.redis_key(key))
        except (RedisError, OSError) as exc:
            self._failed(exc)
            self.misses += 1
            return False, None
        self._succeeded()
        found, output = (False, None) if raw is None else self._decode(raw, key)
        if found:
            self.hits += 1
        else:
            self.misses += 1
        return found, output

    async def aput(self, key: CacheKey, output: Any) -> None:
        """Store ``output`` for ``ttl_seconds`` (replacing any previous one). Dropped while Redis is down."""
        value = msgpack.packb([key[0], key[1], bytes(key[2]), output], use_bin_type=True)
        if self._skipping():
            return
        try:
            await self._r.set(self.redis_key(key), value, px=max(1, int(self.ttl * 1000)))
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return
        self._succeeded()

    def clear(self) -> None:
        """Delete every cached output in this Redis (of every frontend). Blocking: from async code use
        :meth:`aclear`."""
        client = redis.Redis.from_url(self.url, socket_connect_timeout=self.timeout, socket_timeout=self.timeout,
                                      retry=SyncRetry(NoBackoff(), 0))
        try:
            batch: list[bytes] = []
            for name in client.scan_iter(match=PREFIX + b"*", count=1000):
                batch.append(name)
                if len(batch) >= 1000:
                    client.unlink(*batch)
                    batch.clear()
            if batch:
                client.unlink(*batch)
        finally:
            client.close()

    async def aclear(self) -> None:
        """:meth:`clear` without blocking the event loop."""
        batch: list[bytes] = []
        async for name in self._r.scan_iter(match=PREFIX + b"*", count=1000):
            batch.append(name)
            if len(batch) >= 1000:
                await self._r.unlink(*batch)
                batch.clear()
        if batch:
            await self._r.unlink(*batch)
