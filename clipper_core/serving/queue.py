"""Per model-version task queues that replicas pull batches from (DESIGN §5): where batches are formed.

A :class:`ModelQueue` orders tasks by deadline (arrival + the app's SLO). A replica's dispatch loop
(:mod:`clipper_core.serving.model_runtime`) calls :meth:`ModelQueue.get_batch` with the batch size its
:class:`~clipper_core.serving.batch_sizer.BatchSizer` proposes; expired tasks are dropped
before dispatch; tasks of one ``input_batch`` request share a group and stay together where they fit. Optional
delayed batching waits up to ``batch_wait_timeout`` (counted from the oldest queued task) for a fuller batch.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from clipper_core.timeouts import wait_future

__all__ = ["DeadlineExpired", "ModelQueue", "Task"]



class DeadlineExpired(Exception):
    """Set on a task's future when it was dropped before dispatch because its deadline passed."""


class Task:
    """One input waiting for one model version. ``future`` (the query that made the task) and ``joined`` (the
    identical queries that joined it through single flight) resolve to the model output or an exception; each
    query has its own, so one that stops waiting (its SLO passed, its client left) does not touch the others."""

    __slots__ = ("deadline", "done", "enqueued", "expires", "future", "group", "item", "joined", "key", "mirror",
                 "rank", "seq", "trace")

    def __init__(self, item: Any, key: bytes | None, deadline: float, future: asyncio.Future[Any],
                 group: int = 0, enqueued: float | None = None) -> None:
        self.item = item
        self.key = key
        self.deadline = deadline
        """The deadline of the query that made the task."""
        self.rank = deadline
        """Orders the queue (lowest first): the deadline, plus its app's priority class offset
        (:data:`clipper_core.serving.tenancy.RANK_OFFSET`; 0 for ``normal``)."""
        self.expires = deadline
        """When the task is dropped as too late: the latest deadline of the queries waiting for it (an identical
        query joining through single flight extends it)."""
        self.future = future
        self.joined: list[asyncio.Future[Any]] | None = None
        self.done = False
        """Answered or failed: a query that comes later cannot join it (its future would never be resolved)."""
        self.group = group
        self.enqueued = time.monotonic() if enqueued is None else enqueued
        self.seq = -1
        """Arrival order in its queue (ties between equal deadlines), set when first queued."""
        self.trace: Any = None
        """The span context of the traced request that made it (``clipper_core.tracing``; None: not traced)."""
        self.mirror = False
        """Its input and output go to the version's shadow candidate once answered (``serving.shadow``)."""

    def wanted(self) -> bool:
        """Whether any query still waits for this output."""
        if not self.future.done():
            return True
        joined = self.joined
        return joined is not None and any(not f.done() for f in joined)

    def resolve(self, output: Any) -> None:
        self.done = True
        if not self.future.done():
            self.future.set_result(output)
        if self.joined:
            for fut in self.joined:
                if not fut.done():
                    fut.set_result(output)

    def fail(self, exc: BaseException) -> None:
        self.done = True
        for fut in (self.future, *(self.joined or ())):
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # mark retrieved: the query may have stopped waiting

    def __lt__(self, other: Task) -> bool:
        return (self.rank, self.seq) < (other.rank, other.seq)


class ModelQueue:
    """The deadline-ordered queue of one model version."""

    def __init__(self, name: str, version: str, batch_wait_timeout_s: float = 0.0,
                 max_length: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.clock = clock
        self.version = version
        self.batch_wait_timeout = batch_wait_timeout_s
        self.max_length = max_length
        self._heap: list[Task] = []
        self._arrivals = itertools.count()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._length_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.dropped = 0
        self.cancelled = 0
        """Tasks taken out before dispatch because every query waiting for them was cancelled (clients left)."""

    def __len__(self) -> int:
        return len(self._heap)

    def prune(self) -> int:
        """Drop the tasks nobody can wait for any more (expired, or their queries gone), failing the expired
        ones; return how many were dropped. Batching does this as it takes work; a version with no replica
        takes none, so its queue is pruned when it is reported or gets new work."""
        now = self.clock()
        kept = [t for t in self._heap if t.expires > now and t.wanted()]
        dropped = len(self._heap) - len(kept)
        if dropped:
            for task in self._heap:
                if task.expires <= now:
                    self.dropped += 1
                    task.fail(DeadlineExpired())
                elif not task.wanted() and task.future.cancelled():
                    self.cancelled += 1
            heapq.heapify(kept)
            self._heap = kept
        return dropped

    def put(self, task: Task) -> None:
        self.put_many([task])

    def put_many(self, tasks: list[Task]) -> None:
        for task in tasks:
            if task.seq < 0:
                task.seq = next(self._arrivals)
            heapq.heappush(self._heap, task)
        self._wake()

    def _wake(self) -> None:
        if self._length_waiters:
            length, still = len(self._heap), []
            for wanted, fut in self._length_waiters:
                if fut.done():
                    continue
                if length >= wanted:
                    fut.set_result(None)
                else:
                    still.append((wanted, fut))
            self._length_waiters = still
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def pass_wakeup(self) -> None:
        """A dispatch loop that was woken for work but will not take it now (its replica is busy) hands the
        wake-up on to the next waiting loop (another replica's, which may be idle)."""
        if self._heap:
            self._wake()

    async def wait_for_work(self) -> None:
        """Return once at least one task is queued (at once if one is)."""
        while not self._heap:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # pass the wake-up on: this waiter is going away
                raise

    def length_reached(self, length: int) -> asyncio.Future[None]:
        """A future done once at least ``length`` tasks are queued (at once if they already are)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if len(self._heap) >= length:
            fut.set_result(None)
        else:
            self._length_waiters.append((length, fut))
        return fut

    async def get_batch(self, max_size: int) -> list[Task]:
        """Wait for tasks and return up to ``max_size`` of them, earliest deadline first, never an expired one."""
        while True:
            await self.wait_for_work()
            if self.batch_wait_timeout > 0 and len(self._heap) < max_size:
                await self._delay(max_size)
            batch = self._pop(max_size)
            if batch:
                if self._heap:
                    self._wake()  # more work left: let another idle dispatcher take it
                return batch

    async def _delay(self, max_size: int) -> None:
        oldest = min(t.enqueued for t in self._heap)
        until = oldest + self.batch_wait_timeout
        while len(self._heap) < max_size:
            remaining = until - self.clock()
            if remaining <= 0:
                return
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                if not await wait_future(waiter, remaining):
                    return
            finally:
                if not waiter.done():
                    waiter.cancel()

    def _pop(self, max_size: int) -> list[Task]:
        heap = self._heap
        now = self.clock()
        batch: list[Task] = []
        while heap and len(batch) < max_size:
            task = heapq.heappop(heap)
            if task.expires <= now:
                self.dropped += 1
                task.fail(DeadlineExpired())
                continue
            if not task.wanted():  # nobody waits for it any more (its queries were cancelled: their clients left)
                if task.future.cancelled():
                    self.cancelled += 1
                continue
            batch.append(task)
        if heap and batch and batch[-1].group:
            self._keep_group_together(batch)
        return batch

    def _keep_group_together(self, batch: list[Task]) -> None:
        """If the batch ends in the middle of an input_batch request, and that request started inside this
        batch (so it could fit in a batch of its own), hand its tail back rather than splitting it."""
        group = batch[-1].group
        first = next(i for i, t in enumerate(batch) if t.group == group)
        if first == 0 or not any(t.group == group for t in self._heap):
            return
        for task in batch[first:]:
            heapq.heappush(self._heap, task)
        del batch[first:]

    def requeue(self, tasks: list[Task]) -> int:
        """Put back tasks of a failed dispatch whose deadline still allows; return how many went back. The
        others expire now (their futures must resolve: a query joining them through single flight waits on them)."""
        now = self.clock()
        back = []
        for task in tasks:
            if not task.wanted():
                continue
            if task.expires > now:
                back.append(task)
            else:
                self.dropped += 1
                task.fail(DeadlineExpired())
        self.put_many(back)
        return len(back)

    def fail_all(self, exc: BaseException) -> None:
        while self._heap:
            heapq.heappop(self._heap).fail(exc)
