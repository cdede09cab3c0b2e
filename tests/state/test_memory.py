"""The in-memory backend against the state store contract."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from clipper_core.state.base import StateStore
from clipper_core.state.memory import MemoryStateStore
from clipper_core.testing import StateStoreContract


class TestMemoryStateStore(StateStoreContract):
    persistent = False

    @pytest.fixture
    async def store(self) -> AsyncIterator[StateStore]:
        store = MemoryStateStore()
        await store.open()
        yield store
        await store.close()


async def test_close_and_open_keep_the_data() -> None:
    store = MemoryStateStore()
    await store.open()
    assert await store.next_replica_id("m", "1") == 0
    await store.close()
    await store.open()
    assert await store.next_replica_id("m", "1") == 1
