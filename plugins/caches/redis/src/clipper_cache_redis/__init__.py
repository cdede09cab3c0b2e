"""clipper-cache-redis: a prediction cache shared by every query frontend (``CLIPPER_CACHE=redis``)."""

from clipper_cache_redis.cache import RedisPredictionCache

__all__ = ["RedisPredictionCache"]
