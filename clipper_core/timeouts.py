"""Waits bounded by a timeout that never lose a cancellation.

``asyncio.wait_for`` on Python 3.10 and 3.11 swallows a ``cancel()`` that arrives in the same loop iteration as
the result it waits for (CPython gh-86296, fixed in 3.12): a task cancelled at shutdown just as its event is set
goes on running, and whoever awaits it hangs. ``asyncio.wait`` never cancels nor swallows, so these use it."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["wait_event", "wait_future"]


async def wait_future(future: asyncio.Future[Any], timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``future``; True when it is done. It is left running otherwise."""
    done, _ = await asyncio.wait((future,), timeout=timeout)
    return bool(done)


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``event`` to be set; True when it is."""
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait((waiter,), timeout=timeout)
    finally:
        waiter.cancel()
    return event.is_set()
