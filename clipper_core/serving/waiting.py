"""Waiting for many futures with one deadline timer (the SLO), without a task per future."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["wait_all"]


async def wait_all(loop: asyncio.AbstractEventLoop, futures: list[asyncio.Future[Any]], timeout: float) -> None:
    """Return when every future is done or ``timeout`` seconds passed, whichever is first (one timer)."""
    pending = [f for f in futures if not f.done()]
    if not pending or timeout <= 0:
        return
    waiter: asyncio.Future[None] = loop.create_future()
    remaining = len(pending)

    def one_done(_: asyncio.Future[Any]) -> None:
        nonlocal remaining
        remaining -= 1
        if remaining == 0 and not waiter.done():
            waiter.set_result(None)

    for fut in pending:
        fut.add_done_callback(one_done)
    def expire() -> None:
        if not waiter.done():
            waiter.set_result(None)

    handle = loop.call_later(timeout, expire)
    try:
        await waiter
    finally:
        handle.cancel()
        for fut in pending:
            fut.remove_done_callback(one_done)
