"""The in-process prediction cache: exact keys, a byte budget, least-recently-used eviction."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, ClassVar

import orjson

from clipper_core.hookspecs import hookimpl
from clipper_core.interfaces import CacheKey, PredictionCache

__all__ = ["LRUCache"]

_ENTRY_OVERHEAD = 96  # dict slot, tuple and bookkeeping: keeps many tiny entries from escaping the budget


def _output_size(output: Any) -> int:
    if isinstance(output, (str, bytes)):
        return len(output)
    if isinstance(output, (int, float, bool)) or output is None:
        return 8
    try:
        return len(orjson.dumps(output, option=orjson.OPT_SERIALIZE_NUMPY))
    except TypeError:
        return len(repr(output))


class LRUCache(PredictionCache):
    """Keyed by (model, version, exact input bytes); the dict compares whole keys, so a hash collision can
    never return another input's output. ``config["size_bytes"]`` bounds keys plus outputs (0 disables)."""

    name: ClassVar[str] = "lru"

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.capacity = int(self.config.get("size_bytes", 32 * 1024 * 1024))
        self.size = 0
        self._entries: OrderedDict[CacheKey, tuple[Any, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> tuple[bool, Any]:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return False, None
        self._entries.move_to_end(key)
        self.hits += 1
        return True, entry[0]

    def put(self, key: CacheKey, output: Any) -> None:
        cost = len(key[2]) + len(key[0]) + len(key[1]) + _output_size(output) + _ENTRY_OVERHEAD
        if cost > self.capacity:
            return  # larger than the whole cache: never cached (as in Clipper)
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= old[1]
        self._entries[key] = (output, cost)
        self.size += cost
        while self.size > self.capacity:
            _, (_, evicted) = self._entries.popitem(last=False)
            self.size -= evicted

    def clear(self) -> None:
        self._entries.clear()
        self.size = 0


@hookimpl
def clipper_register_caches() -> list[type[PredictionCache]]:
    return [LRUCache]
