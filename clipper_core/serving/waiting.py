"""Waiting for many futures with one deadline timer (the SLO), without a task per future."""

from __future__ import annotations

import asyncio
from typing import Any

from clipper_core.serving.queue import DeadlineExpired

__all__ = ["wait_all", "wait_one"]


def _expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_exception(DeadlineExpired())


async def wait_one(loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any], timeout: float) -> None:
    """Return when ``fut`` (a query's own future) is done or ``timeout`` seconds passed: then it fails with
    :class:`DeadlineExpired` (whoever would answer it later finds it done). No waiter, no callback: one timer."""
    if fut.done():
        return
    if timeout <= 0:
        _expire(fut)
        fut.exception()
        return
    handle = loop.call_later(timeout, _expire, fut)
    try:
        await fut
    except Exception:  # the plan holds the future: combine reads what happened
        pass
    finally:
        handle.cancel()


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
