"""The loop of the management server's periodic controllers (the autoscaler, the rollout controller): one tick
every ``interval`` seconds until cancelled; a tick that fails (a store outage) is logged and the next one tried."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

__all__ = ["tick_forever"]


async def tick_forever(tick: Callable[[], Awaitable[object]], interval: float, log: logging.Logger, what: str,
                       failed: Callable[[], None] | None = None) -> None:
    """Run ``tick`` every ``interval`` seconds; ``failed`` is called after each failing tick."""
    while True:
        try:
            await tick()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if failed is not None:
                failed()
            log.warning("%s tick failed: %s", what, exc)
        await asyncio.sleep(interval)
