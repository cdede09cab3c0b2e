"""The built-in state-store plugin: which classes it registers, and what it knows about Redis without redis."""

from __future__ import annotations

from clipper_core.default_plugins import state_stores
from clipper_core.state.memory import MemoryStateStore
from clipper_core.state.redis_store import RedisStateStore
from clipper_core.state.sqlite import SqliteStateStore


def test_registers_sqlite_memory_and_redis() -> None:
    assert state_stores.clipper_register_state_stores() == [SqliteStateStore, MemoryStateStore, RedisStateStore]


def test_the_optional_schemes_are_the_redis_stores_own() -> None:
    assert tuple(state_stores.OPTIONAL_SCHEMES) == RedisStateStore.url_schemes
    assert set(state_stores.OPTIONAL_SCHEMES.values()) == {("redis", "clipper-core[redis]")}


def test_nothing_is_missing_where_redis_is_installed() -> None:
    assert [state_stores.missing_package(s) for s in ("redis", "rediss", "unix", "sqlite", "foo")] == [None] * 5
