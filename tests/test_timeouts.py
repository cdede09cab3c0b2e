"""``clipper_core.timeouts``: bounded waits that keep a cancellation which meets their result."""

from __future__ import annotations

import asyncio

from clipper_core.timeouts import wait_event, wait_future


async def _cancel_as_it_is_set(event: asyncio.Event, waiting: asyncio.Task[bool]) -> BaseException | bool:
    await asyncio.sleep(0)  # the task is now waiting on the event
    event.set()
    waiting.cancel()  # the same loop iteration: asyncio.wait_for on 3.10/3.11 would return True and drop this
    try:
        return await waiting
    except asyncio.CancelledError as exc:
        return exc


async def test_a_cancel_in_the_iteration_the_event_is_set_is_kept() -> None:
    event = asyncio.Event()
    outcome = await _cancel_as_it_is_set(event, asyncio.ensure_future(wait_event(event, 10)))
    assert isinstance(outcome, asyncio.CancelledError)


async def test_wait_event_says_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    asyncio.get_running_loop().call_soon(event.set)
    assert await wait_event(event, 10) is True
    assert await wait_event(event, 0) is True  # already set: no wait at all


async def test_wait_future_leaves_an_unfinished_future_running() -> None:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    assert await wait_future(future, 0.01) is False
    assert not future.cancelled()
    future.set_result(None)
    assert await wait_future(future, 10) is True


async def test_wait_future_keeps_a_cancel_that_meets_the_result() -> None:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    waiting = asyncio.ensure_future(wait_future(future, 10))
    await asyncio.sleep(0)
    future.set_result(None)
    waiting.cancel()
    try:
        await waiting
    except asyncio.CancelledError:
        return
    raise AssertionError("the cancel was lost")
