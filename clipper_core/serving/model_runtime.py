"""Per model-version runtime: its queue, its connected replicas and the loops that feed them batches.

Each replica has one dispatch loop that keeps up to ``batches_in_flight`` batches in flight (pipelining: while one
batch crosses the wire or waits in the container, the next can be on its way). It waits for work and, while a
batch of the replica is in flight, until a full batch is queued, that batch is answered, or the
:class:`BatchTimes` model says the next batch is worth sending (#13 item 3: pipelined to reach the container as
the running one finishes, or merged with the running batch's returning clients). It pulls a batch sized by the
replica's :class:`BatchSizer` and sends it; the batch's answer resolves the tasks' futures with the outputs,
filling the cache even for queries that have stopped waiting (late results). A lost replica's batch goes back to
the queue when deadlines allow.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from clipper_container.protocol import encode_inputs

from clipper_core.inputs import InputType
from clipper_core.interfaces import CacheKey, PredictionCache
from clipper_core.metrics import SIZE_BUCKETS, FastHistogram
from clipper_core.rpc import ReplicaLost
from clipper_core.serving.batch_sizer import BatchSizer
from clipper_core.serving.batch_times import BatchTimes
from clipper_core.serving.queue import ModelQueue, Task
from clipper_core.serving.replica import Replica
from clipper_core.serving.rollout import VersionCounters
from clipper_core.serving.shadow import ShadowMirror
from clipper_core.serving.trace_spans import batch_spans, end_batch_spans
from clipper_core.state import Model
from clipper_core.tracing import STATE as TRACING

__all__ = ["ItemFailed", "ModelFailed", "ModelRuntime", "Replica"]

log = logging.getLogger(__name__)


class ModelFailed(Exception):
    """The model raised for a whole batch."""


class ItemFailed(Exception):
    """The model raised for one item of a batch."""


class ModelRuntime:
    """Everything the query path needs about one model version."""

    def __init__(self, name: str, version: str, input_type: InputType, cache: PredictionCache | None,
                 *, model: Model | None = None, batches_in_flight: int = 2, slo_budget_s: float = 0.1,
                 max_queue_length: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.version = version
        self.input_type = input_type
        self.dtype = input_type.numpy_dtype
        self.model = model
        self.cache = cache
        self.batches_in_flight = batches_in_flight
        self.slo_budget = slo_budget_s
        self.clock = clock
        wait = (model.batch_wait_timeout_micros / 1e6) if model else 0.0
        self.queue = ModelQueue(name, version, batch_wait_timeout_s=wait, max_length=max_queue_length, clock=clock)
        self.replicas: dict[bytes, Replica] = {}
        self.sizers: dict[bytes, BatchSizer] = {}
        self.batch_times: dict[bytes, BatchTimes] = {}
        self._loops: dict[bytes, asyncio.Task[None]] = {}
        self._puts: set[asyncio.Task[None]] = set()
        # metrics, read by the collector at scrape time
        self.batch_sizes = FastHistogram(SIZE_BUCKETS)
        self.rpc_latency = FastHistogram()
        self.compute_latency = FastHistogram()
        self.queue_time = FastHistogram()
        self.predictions = 0
        self.enqueued = 0
        """Inputs (tasks) the query path put in this version's queue, re-queued ones not again: it adds
        ``len(tasks)`` where it calls ``queue.put_many(tasks)``. The load report's arrival rate."""
        self.errors = 0
        self.cache_hits = 0
        self.cache_misses = 0
        self.inflight_items = 0
        """Inputs sent to replicas and not answered yet."""
        self.item_seconds = 0.0
        """Moving average of model time per input: with the queue length, predicts a new task's wait."""
        self.rollout: VersionCounters | None = None
        """The version's rollout counts, once it took part in a rollout (kept after it, for ``/metrics``)."""
        self.rollout_tracking = False
        """Whether it takes part in an active rollout now: the query path counts its queries' outcomes."""
        self.shadow: ShadowMirror | None = None
        """The current version of a shadow rollout: where its mirrored tasks go once answered."""

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}"

    def update_model(self, model: Model | None) -> None:
        self.model = model
        if model is not None:
            self.queue.batch_wait_timeout = model.batch_wait_timeout_micros / 1e6
            for sizer in self.sizers.values():
                sizer.fixed = model.batch_size

    def set_slo_budget(self, seconds: float) -> None:
        """The latency one batch may take (a share of the tightest linked app's SLO); AIMD grows below it."""
        self.slo_budget = seconds
        for sizer in self.sizers.values():
            sizer.budget = seconds

    # -- replicas -------------------------------------------------------------------------------------
    def add_replica(self, replica: Replica) -> None:
        fixed = self.model.batch_size if self.model is not None else -1
        max_size = replica.info.get("max_batch_size") or -1
        sizer = BatchSizer(self.slo_budget, fixed, max_size=max_size if max_size > 0 else 4096)
        self.replicas[replica.identity] = replica
        self.sizers[replica.identity] = sizer
        times = self.batch_times[replica.identity] = BatchTimes()
        self._loops[replica.identity] = asyncio.get_running_loop().create_task(
            self._dispatch_loop(replica, sizer, times))

    def remove_replica(self, replica: Replica) -> None:
        self.replicas.pop(replica.identity, None)
        self.sizers.pop(replica.identity, None)
        self.batch_times.pop(replica.identity, None)
        loop = self._loops.pop(replica.identity, None)
        if loop is not None:
            loop.cancel()  # batches in flight come back through their answers (ReplicaLost: re-queued)

    def set_shadow(self, shadow: ShadowMirror | None) -> None:
        if self.shadow is not None and self.shadow is not shadow:
            self.shadow.close()
        self.shadow = shadow

    async def close(self) -> None:
        self.set_shadow(None)
        tasks = list(self._loops.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loops.clear()

    @property
    def num_replicas(self) -> int:
        return len(self.replicas)

    def expected_wait(self, extra: int) -> float:
        """Seconds until ``extra`` new tasks would be answered: the model work queued and in flight ahead of
        them plus their own, spread over the connected replicas."""
        replicas = len(self.replicas)
        if not replicas or not self.item_seconds:
            return 0.0
        return (len(self.queue) + self.inflight_items + extra) * self.item_seconds / replicas

    # -- dispatch -------------------------------------------------------------------------------------
    async def _dispatch_loop(self, replica: Replica, sizer: BatchSizer, times: BatchTimes) -> None:
        """Form and send this replica's batches, at most ``batches_in_flight`` at a time. The loop never holds a
        batch across an await (taking one from the queue and sending it is one step), so cancelling it loses
        nothing; answers are handled by :meth:`_answered`, a callback of each batch's future."""
        queue = self.queue
        limit = max(1, self.batches_in_flight)
        while replica.alive:
            if len(replica.pending) >= limit:
                await asyncio.wait(list(replica.pending.values()), return_when=asyncio.FIRST_COMPLETED)
                continue
            if not replica.pending:
                await self._echo(times)
            await queue.wait_for_work()
            if replica.pending:
                queue.pass_wakeup()  # an idle replica's loop may be waiting behind this busy one
                if not await self._until_worth_sending(replica, sizer.batch_size, times):
                    continue  # an answer came back: the replica may be free now (and its echo due)
            if not len(queue):
                continue  # another replica's loop took the work meanwhile
            batch = await queue.get_batch(sizer.batch_size)
            if not replica.alive:
                queue.requeue(batch)
                return
            self._send(replica, sizer, times, batch)

    def _send(self, replica: Replica, sizer: BatchSizer, times: BatchTimes, batch: list[Task]) -> None:
        behind = bool(replica.pending)
        fields, buffers = encode_inputs([t.item for t in batch], self.dtype)
        spans = batch_spans(self.label, replica.replica_id, batch, fields) if TRACING.enabled else None
        answer = replica.predict(fields, buffers)
        sent = self.clock()
        times.sent(sent, len(batch), behind_another=behind)
        self.inflight_items += len(batch)
        answer.add_done_callback(lambda done: self._answered(replica, sizer, times, batch, done, sent, behind, spans))

    async def _until_worth_sending(self, replica: Replica, size: int, times: BatchTimes) -> bool:
        """While another batch of this replica is in flight, wait until a full batch is queued, the replica
        answers, or the batch-time model says the container is about to be free (a batch sent now reaches it as
        the running one finishes). Sending earlier would only make the model pay its fixed cost for a batch
        that could still have grown; later, the model idles. True: send now; False: the replica answered."""
        full = self.queue.length_reached(size)
        send_at = None if times.merging_pays() else times.send_next_at()
        timeout = None if send_at is None else send_at - self.clock()
        if timeout is not None and timeout <= 0:
            full.cancel()
            return True
        answers: list[asyncio.Future[Any]] = list(replica.pending.values())
        try:
            await asyncio.wait([full, *answers], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not full.done():
                full.cancel()
        return not any(answer.done() for answer in answers)

    async def _echo(self, times: BatchTimes) -> None:
        """After an answer, when merging pays, wait for the answered clients' next queries (see BatchTimes)."""
        wait = times.echo_wait(self.clock())
        if wait is None:
            return
        target, timeout = wait
        reached = self.queue.length_reached(target)
        try:
            await asyncio.wait([reached], timeout=timeout)
        finally:
            if not reached.done():
                reached.cancel()
            times.echo_over(self.clock(), len(self.queue))

    def _answered(self, replica: Replica, sizer: BatchSizer, times: BatchTimes, batch: list[Task],
                  answer: asyncio.Future[dict[str, Any]], sent: float, behind: bool, spans: Any = None) -> None:
        self.inflight_items -= len(batch)
        error = answer.exception() if not answer.cancelled() else ReplicaLost("the batch was cancelled")
        if spans is not None:
            end_batch_spans(spans, error)
        if isinstance(error, ReplicaLost):
            back = self.queue.requeue(batch)
            log.info("%s: %d of %d tasks re-queued after replica %s was lost (%s)", self.label, back,
                     len(batch), replica.replica_id, error)
            return
        if error is not None:
            self._fail(batch, ModelFailed(f"{type(error).__name__}: {error}"))
            return
        result = answer.result()
        latency = self.clock() - sent
        sizer.observe(len(batch), latency)
        self.batch_sizes.observe(len(batch))
        self.rpc_latency.observe(latency)
        compute = result.get("compute_ms")
        if compute is not None:
            self.compute_latency.observe(compute / 1000.0)
        compute_s = compute / 1000.0 if compute is not None else latency
        times.observe(len(batch), compute_s, None if behind else latency)
        times.answered(self.clock(), len(batch), len(self.queue))
        per_item = compute_s / len(batch)
        self.item_seconds = per_item if not self.item_seconds else 0.8 * self.item_seconds + 0.2 * per_item
        for task in batch:
            self.queue_time.observe(sent - task.enqueued)
        self._complete(batch, result)

    def _fail(self, batch: list[Task], exc: Exception) -> None:
        self.errors += len(batch)
        for task in batch:
            task.fail(exc)
        if self.shadow is not None:
            self.shadow.offer(batch, None)

    def _spawn_put(self, cache: PredictionCache, key: CacheKey, output: Any) -> None:
        async def put() -> None:
            try:
                await cache.aput(key, output)
            except Exception as exc:  # a cache outage costs hits, never answers
                log.warning("prediction cache write failed: %s", exc)

        task = asyncio.get_running_loop().create_task(put())
        self._puts.add(task)
        task.add_done_callback(self._puts.discard)

    def _complete(self, batch: list[Task], result: dict[str, Any]) -> None:
        error = result.get("error")
        outputs = result.get("out")
        if error is None and (not isinstance(outputs, list) or len(outputs) != len(batch)):
            got = len(outputs) if isinstance(outputs, list) else type(outputs).__name__
            error = f"model returned {got} outputs for a batch of {len(batch)} inputs"
        if error is not None:
            self._fail(batch, ModelFailed(str(error)))
            return
        assert outputs is not None
        item_errors = dict(result.get("errs") or ())
        cache = self.cache
        self.predictions += len(batch)
        for i, task in enumerate(batch):
            if item_errors and i in item_errors:
                self.errors += 1
                task.fail(ItemFailed(str(item_errors[i])))
                continue
            output = outputs[i]
            if cache is not None and task.key is not None:
                if cache.is_async:
                    self._spawn_put(cache, (self.name, self.version, task.key), output)
                else:
                    cache.put((self.name, self.version, task.key), output)
            task.resolve(output)
        if self.shadow is not None:
            self.shadow.offer(batch, outputs, item_errors)
