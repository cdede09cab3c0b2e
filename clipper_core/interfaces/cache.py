"""PredictionCache: outputs keyed by (model, version, exact input bytes); never a hash-only match.

Lifecycle::

    cache = CacheClass(config)     # once at startup; config["size_bytes"] is the byte budget
    await cache.start(); ...; await cache.stop()

On the request path the query path calls the synchronous ``get``/``put`` of in-process caches
(``is_async = False``) or awaits ``aget``/``aput`` of remote ones (``is_async = True``).
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

__all__ = ["CacheKey", "PredictionCache"]

CacheKey = tuple[str, str, bytes]
"""(model name, model version, exact input bytes incl. a type tag)."""


class PredictionCache(abc.ABC):
    name: ClassVar[str]
    is_async: ClassVar[bool] = False

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = dict(config or {})
        self.hits = 0
        self.misses = 0

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def get(self, key: CacheKey) -> tuple[bool, Any]:
        """Return (found, output)."""
        raise NotImplementedError

    def put(self, key: CacheKey, output: Any) -> None:
        raise NotImplementedError

    async def aget(self, key: CacheKey) -> tuple[bool, Any]:
        return self.get(key)

    async def aput(self, key: CacheKey, output: Any) -> None:
        self.put(key, output)

    @abc.abstractmethod
    def clear(self) -> None: ...
