"""Registers the Redis cache with clipper (entry point group ``clipper``)."""

from __future__ import annotations

from clipper_core import hookimpl
from clipper_core.interfaces import PredictionCache


@hookimpl
def clipper_register_caches() -> list[type[PredictionCache]]:
    from clipper_cache_redis.cache import RedisPredictionCache

    return [RedisPredictionCache]
