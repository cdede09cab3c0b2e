"""The Redis state store's former module: it is the package :mod:`clipper_core.state.redis` now, and
``from clipper_core.state.redis_store import RedisStateStore, RedisUnavailable`` keeps working."""

from clipper_core.state.redis import CHANNEL, PREFIX, RedisStateStore, RedisUnavailable

__all__ = ["CHANNEL", "PREFIX", "RedisStateStore", "RedisUnavailable"]
