"""A state store in Redis, shared by every frontend and admin server (``redis://[:password@]host:port/db``).

* :mod:`~clipper_core.state.redis.store`: :class:`RedisStateStore`, its reads and writes;
* :mod:`~clipper_core.state.redis.feed`: the change feed (publish, subscribe, reconnect, "reload");
* :mod:`~clipper_core.state.redis.layout`: the keys and the JSON records under them;
* :mod:`~clipper_core.state.redis.connection`: timeouts, retries and :class:`RedisUnavailable` (HTTP 503);
* :mod:`~clipper_core.state.redis.frontends`: the registry of live query frontends.
"""

from clipper_core.state.redis.connection import RedisUnavailable
from clipper_core.state.redis.layout import CHANNEL, PREFIX
from clipper_core.state.redis.store import RedisStateStore

__all__ = ["CHANNEL", "PREFIX", "RedisStateStore", "RedisUnavailable"]
