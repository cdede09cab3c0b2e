"""The built-in state-store plugin: which classes it registers, with and without the redis package."""

from __future__ import annotations

import sys

import pytest

from clipper_core.default_plugins import state_stores
from clipper_core.plugins import OPTIONAL_SCHEMES
from clipper_core.state.memory import MemoryStateStore
from clipper_core.state.redis import RedisStateStore
from clipper_core.state.sqlite import SqliteStateStore


def test_registers_sqlite_memory_and_redis() -> None:
    assert state_stores.clipper_register_state_stores() == [SqliteStateStore, MemoryStateStore, RedisStateStore]


def test_without_redis_registers_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # as if it were not installed
    for module in [m for m in sys.modules if m.startswith("clipper_core.state.redis")]:
        monkeypatch.delitem(sys.modules, module)  # imported afresh, they fail like that
    assert state_stores.clipper_register_state_stores() == [SqliteStateStore, MemoryStateStore]


def test_the_registry_knows_the_redis_stores_schemes_without_redis() -> None:
    assert tuple(OPTIONAL_SCHEMES) == RedisStateStore.url_schemes
    assert set(OPTIONAL_SCHEMES.values()) == {("redis", "clipper-core[redis]")}
