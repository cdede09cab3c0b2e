"""A state-store subscriber for tests that waits (bounded, on an asyncio.Event gate) for the events it expects."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from clipper_core.state import ChangeEvent, StateStore


class Recorder:
    """Subscriber that records events; :meth:`wait` blocks (bounded) on an asyncio.Event gate until a
    condition on the recorded events holds."""

    def __init__(self, store: StateStore) -> None:
        self.events: list[ChangeEvent] = []
        self._condition: Callable[[list[ChangeEvent]], bool] | None = None
        self._gate = asyncio.Event()
        store.subscribe(self)

    def __call__(self, event: ChangeEvent) -> None:
        self.events.append(event)
        if self._condition is not None and self._condition(self.events):
            self._gate.set()

    async def wait(self, condition: Callable[[list[ChangeEvent]], bool], timeout: float = 1.0) -> None:
        self._gate.clear()
        self._condition = condition
        try:
            if not condition(self.events):
                await asyncio.wait_for(self._gate.wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"condition not met within {timeout} s; events: {self.events}") from None
        finally:
            self._condition = None

    async def wait_for_count(self, n: int, timeout: float = 1.0) -> None:
        await self.wait(lambda events: len(events) >= n, timeout)

    async def wait_for_reload(self, timeout: float) -> None:
        await self.wait(lambda events: ChangeEvent("reload") in events, timeout)
