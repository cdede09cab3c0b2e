"""A shadow rollout's mirror (docs/rollouts.md, "Shadow traffic"): the inputs the current version computed for
mirrored queries, with its outputs, batched anew for the candidate and sent to it when it is idle.

The query path marks a mirrored query's task (``Task.mirror``); when the current version's batch is answered,
:meth:`ShadowMirror.offer` takes those tasks' inputs and outputs, and nothing else happens per query: no second
task, future or callback. The mirror's own loop sends the candidate a batch when one of its replicas has nothing in
flight and no real task waits in its queue, and compares the candidate's outputs with the current version's in one
pass over the answer. Nobody waits for a shadow output, so the mirror batches for the candidate's cost, not for
latency: it sends a full batch (the replica's adaptive batch size) at once and a smaller one only once its oldest
input has waited :data:`SHADOW_HOLD_S`; a fast candidate otherwise gets a batch of one or two per round trip,
and on a small machine their RPCs cost the served traffic more than the model does.

Shadow work is dropped first: an input is not taken when the mirror holds :data:`SHADOW_QUEUE_LIMIT` inputs
already or the candidate has no replica (``dropped``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from clipper_container.protocol import encode_inputs

from clipper_core.rpc import ReplicaLost
from clipper_core.serving.rollout import agrees

if TYPE_CHECKING:
    from clipper_core.serving.model_runtime import ModelRuntime
    from clipper_core.serving.queue import Task
    from clipper_core.serving.replica import Replica

__all__ = ["NO_OUTPUT", "SHADOW_QUEUE_LIMIT", "ShadowMirror"]

log = logging.getLogger(__name__)

SHADOW_QUEUE_LIMIT = 1000
"""Most inputs a mirror holds for its candidate; more are dropped (shadow work goes first)."""
SHADOW_HOLD_S = 0.02
"""Longest the mirror holds inputs for a fuller batch while the candidate is idle."""
BUSY_RETRY_S = 0.001
"""How long the mirror waits before looking again when the candidate's only work is real work not sent yet."""
NO_OUTPUT: Any = object()
"""The current version had no output for a mirrored input (it failed, or was not asked): nothing to compare."""


class ShadowMirror:
    """Mirrors the current version's computed inputs of mirrored queries to a shadow candidate.

    :param candidate: the candidate version's runtime (its replicas, sizers and rollout counters)
    :param tolerance: numbers agree within it (``agreement_tolerance``)
    """

    def __init__(self, candidate: ModelRuntime, tolerance: float, *, limit: int = SHADOW_QUEUE_LIMIT,
                 hold: float = SHADOW_HOLD_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.candidate = candidate
        self.tolerance = tolerance
        self.limit = limit
        self.hold = hold
        self.clock = clock
        self.pending: list[tuple[Any, Any]] = []
        """(input, the current version's output or :data:`NO_OUTPUT`), oldest first."""
        self.sent = 0
        """Inputs sent to the candidate (the bench reads it beside ``dropped``)."""
        self._oldest = 0.0
        """When the oldest input pending arrived (about: reset at each send)."""
        self._waiter: asyncio.Future[None] | None = None
        self._want = 1
        """How many pending inputs end the loop's wait (:meth:`_until_offered`)."""
        self._loop = asyncio.get_running_loop().create_task(self._run())

    # -- what the current version computed ------------------------------------------------------------
    def offer(self, batch: list[Task], outputs: list[Any] | None, errors: dict[int, Any] | None = None) -> None:
        """The current version answered ``batch`` (``outputs``: None when it failed the whole batch): take its
        mirrored tasks' inputs."""
        taken = 0
        for i, task in enumerate(batch):
            if task.mirror:
                ok = outputs is not None and not (errors and i in errors)
                taken += self._take(task.item, outputs[i] if ok else NO_OUTPUT)  # type: ignore[index]
        if taken:
            self._offered()

    def offer_one(self, item: Any, output: Any) -> None:
        """One input answered without a batch (a cache hit), or whose current version was not asked."""
        if self._take(item, output):
            self._offered()

    def _take(self, item: Any, output: Any) -> int:
        pending = self.pending
        if len(pending) >= self.limit or not self.candidate.replicas:
            counters = self.candidate.rollout
            if counters is not None:
                counters.dropped()
            return 0
        if not pending:
            self._oldest = self.clock()
        pending.append((item, output))
        return 1

    def _offered(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done() and len(self.pending) >= self._want:
            waiter.set_result(None)

    async def _until_offered(self, want: int, timeout: float | None) -> None:
        """Until ``want`` inputs are pending, or ``timeout`` passed."""
        self._want = want
        self._waiter = waiter = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait([waiter], timeout=timeout)
        finally:
            self._waiter = None

    # -- the candidate ----------------------------------------------------------------------------------
    async def _run(self) -> None:
        candidate = self.candidate
        while True:
            if not self.pending:
                await self._until_offered(1, None)
                continue
            if not candidate.replicas:
                self._drop_pending()
                continue
            replica = self._idle_replica()
            if replica is not None:
                sizer = candidate.sizers.get(replica.identity)
                size = sizer.batch_size if sizer is not None else len(self.pending)
                wait = self._oldest + self.hold - self.clock()
                if len(self.pending) < size and wait > 0:  # hold for a fuller batch
                    await self._until_offered(size, wait)
                else:
                    self._send(replica, size)
                continue
            busy = [f for r in candidate.replicas.values() for f in r.pending.values()]
            if busy:  # wait for an answer of the candidate's
                await asyncio.wait(busy, return_when=asyncio.FIRST_COMPLETED)
            else:  # real work queued, about to be sent by the candidate's own loop
                await asyncio.sleep(BUSY_RETRY_S)

    def _idle_replica(self) -> Replica | None:
        """A live replica of the candidate with nothing in flight, when no real task waits for it."""
        candidate = self.candidate
        if len(candidate.queue):
            return None
        for replica in candidate.replicas.values():
            if replica.alive and not replica.pending:
                return replica
        return None

    def _drop_pending(self) -> None:
        counters = self.candidate.rollout
        if counters is not None:
            counters.dropped(len(self.pending))
        self.pending.clear()

    def _send(self, replica: Replica, size: int) -> None:
        candidate = self.candidate
        batch = self.pending[:size]
        del self.pending[:size]
        if self.pending:
            self._oldest = self.clock()
        fields, buffers = encode_inputs([item for item, _ in batch], candidate.dtype)
        answer = replica.predict(fields, buffers)
        sent = self.clock()
        candidate.inflight_items += len(batch)
        self.sent += len(batch)
        answer.add_done_callback(lambda done: self._answered(replica, batch, done, sent))

    def _answered(self, replica: Replica, batch: list[tuple[Any, Any]], answer: asyncio.Future[dict[str, Any]],
                  sent: float) -> None:
        """Count the candidate's outcomes for a batch: its latency is the batch's round trip (how long it took
        the candidate, not how long the mirror held the inputs behind real work)."""
        candidate = self.candidate
        candidate.inflight_items -= len(batch)
        counters = candidate.rollout
        if counters is None:
            return
        error = answer.exception() if not answer.cancelled() else ReplicaLost("the batch was cancelled")
        if isinstance(error, ReplicaLost):
            counters.missed(len(batch))
            return
        result: dict[str, Any] = answer.result() if error is None else {"error": str(error)}
        outputs = result.get("out")
        if result.get("error") is not None or not isinstance(outputs, list) or len(outputs) != len(batch):
            candidate.errors += len(batch)  # the model raised for the batch, or answered the wrong count
            counters.failed(len(batch))
            return
        latency = self.clock() - sent
        sizer = candidate.sizers.get(replica.identity)
        if sizer is not None:
            sizer.observe(len(batch), latency)
        candidate.batch_sizes.observe(len(batch))
        candidate.rpc_latency.observe(latency)
        candidate.predictions += len(batch)
        errors = dict(result.get("errs") or ())
        tolerance = self.tolerance
        agree = disagree = 0
        for i, (_, primary) in enumerate(batch):
            if errors and i in errors:
                continue
            if primary is not NO_OUTPUT:
                if agrees(primary, outputs[i], tolerance):
                    agree += 1
                else:
                    disagree += 1
        if errors:
            candidate.errors += len(errors)
            counters.failed(len(errors))
        counters.answered(latency, len(batch) - len(errors))
        counters.compared(agree, disagree)

    def close(self) -> None:
        """The rollout ended (or changed candidate): stop sending; what is pending is forgotten."""
        self._loop.cancel()
        self.pending.clear()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.cancel()
