"""Per model-version runtime: its queue, its connected replicas and the loops that feed them batches.

Each replica runs ``batches_in_flight`` dispatch loops (pipelining: while one batch crosses the wire or waits in the
container, the next is already assembled). A loop pulls a batch sized by the replica's :class:`BatchSizer`,
sends it, and resolves the tasks' futures with the outputs, filling the cache even for queries that have
stopped waiting (late results). A lost replica's batch goes back to the queue when deadlines allow.
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
from clipper_core.serving.queue import ModelQueue, Task
from clipper_core.serving.replica import Replica
from clipper_core.state import Model

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
        self._loops: dict[bytes, list[asyncio.Task[None]]] = {}
        self._idle: dict[bytes, set[asyncio.Task[None]]] = {}
        self._puts: set[asyncio.Task[None]] = set()
        # metrics, read by the collector at scrape time
        self.batch_sizes = FastHistogram(SIZE_BUCKETS)
        self.rpc_latency = FastHistogram()
        self.compute_latency = FastHistogram()
        self.queue_time = FastHistogram()
        self.predictions = 0
        self.errors = 0
        self.cache_hits = 0
        self.cache_misses = 0
        self.inflight_items = 0
        """Inputs sent to replicas and not answered yet."""
        self.item_seconds = 0.0
        """Moving average of model time per input: with the queue length, predicts a new task's wait."""

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
        self._idle[replica.identity] = set()
        loop = asyncio.get_running_loop()
        self._loops[replica.identity] = [loop.create_task(self._dispatch_loop(replica, sizer))
                                         for _ in range(max(1, self.batches_in_flight))]

    def remove_replica(self, replica: Replica) -> None:
        self.replicas.pop(replica.identity, None)
        self.sizers.pop(replica.identity, None)
        self._loops.pop(replica.identity, None)
        # Only loops parked in get_batch are cancelled; a loop awaiting a result gets ReplicaLost instead and
        # re-queues its batch itself (cancelling it could lose that batch).
        for task in self._idle.pop(replica.identity, set()):
            task.cancel()

    async def close(self) -> None:
        tasks = [t for loops in self._loops.values() for t in loops]
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
    async def _dispatch_loop(self, replica: Replica, sizer: BatchSizer) -> None:
        queue = self.queue
        me = asyncio.current_task()
        assert me is not None
        idle = self._idle[replica.identity]
        while replica.alive:
            idle.add(me)
            try:
                if replica.pending:
                    await self._full_batch_or_free_replica(replica, sizer.batch_size)
                batch = await queue.get_batch(sizer.batch_size)
            finally:
                idle.discard(me)
            if not replica.alive:
                queue.requeue(batch)
                return
            await self._run_batch(replica, sizer, batch)

    async def _full_batch_or_free_replica(self, replica: Replica, size: int) -> None:
        """Pipeline only full batches: while another batch of this replica is in flight, wait until a full
        batch is queued or that batch is answered. Sending a small second batch would only make the model pay
        its fixed cost twice while the next batch could have grown."""
        full = self.queue.length_reached(size)
        try:
            waits: list[asyncio.Future[Any]] = [full, *replica.pending.values()]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not full.done():
                full.cancel()

    async def _run_batch(self, replica: Replica, sizer: BatchSizer, batch: list[Task]) -> None:
        fields, buffers = encode_inputs([t.item for t in batch], self.dtype)
        sent = self.clock()
        self.inflight_items += len(batch)
        try:
            result = await replica.predict(fields, buffers)
        except ReplicaLost as exc:
            back = self.queue.requeue(batch)
            log.info("%s: %d of %d tasks re-queued after replica %s was lost (%s)", self.label, back,
                     len(batch), replica.replica_id, exc)
            return
        finally:
            self.inflight_items -= len(batch)
        latency = self.clock() - sent
        sizer.observe(len(batch), latency)
        self.batch_sizes.observe(len(batch))
        self.rpc_latency.observe(latency)
        compute = result.get("compute_ms")
        if compute is not None:
            self.compute_latency.observe(compute / 1000.0)
        per_item = (compute / 1000.0 if compute is not None else latency) / len(batch)
        self.item_seconds = per_item if not self.item_seconds else 0.8 * self.item_seconds + 0.2 * per_item
        for task in batch:
            self.queue_time.observe(sent - task.enqueued)
        self._complete(batch, result)

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
            self.errors += len(batch)
            exc = ModelFailed(str(error))
            for task in batch:
                if not task.future.done():
                    task.future.set_exception(exc)
                    task.future.exception()  # the query may have stopped waiting: no "never retrieved" noise
            return
        assert outputs is not None
        item_errors = dict(result.get("errs") or ())
        cache = self.cache
        self.predictions += len(batch)
        for i, task in enumerate(batch):
            if item_errors and i in item_errors:
                self.errors += 1
                if not task.future.done():
                    task.future.set_exception(ItemFailed(str(item_errors[i])))
                    task.future.exception()
                continue
            output = outputs[i]
            if cache is not None and task.key is not None:
                if cache.is_async:
                    self._spawn_put(cache, (self.name, self.version, task.key), output)
                else:
                    cache.put((self.name, self.version, task.key), output)
            if not task.future.done():
                task.future.set_result(output)
