"""The predictions of recent queries, kept so feedback can be joined with what the models said."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from clipper_core.interfaces import Query
from clipper_core.serving.cache_keys import item_key

__all__ = ["RecentPredictions"]


class RecentPredictions:
    """The predictions of recent queries, so feedback can be joined with what the models said (bounded)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._by_id: OrderedDict[int, tuple[Query, dict[str, Any], tuple[str, int, bytes]]] = OrderedDict()
        self._by_input: dict[tuple[str, int, bytes], int] = {}

    def remember(self, query: Query, predictions: dict[str, Any]) -> None:
        key = (query.app, query.uid, item_key(query.input))
        self._by_id[query.query_id] = (query, predictions, key)
        self._by_input[key] = query.query_id
        while len(self._by_id) > self.capacity:
            _, (_, _, old_key) = self._by_id.popitem(last=False)
            self._by_input.pop(old_key, None)

    def find(self, app: str, uid: int, key: bytes, query_id: int | None) -> tuple[Query, dict[str, Any]] | None:
        if query_id is None or query_id not in self._by_id:
            query_id = self._by_input.get((app, uid, key))
        entry = self._by_id.get(query_id) if query_id is not None else None
        if entry is None or entry[0].app != app:
            return None
        return entry[0], entry[1]
