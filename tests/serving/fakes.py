"""Fakes that drive the serving core without processes, sockets or ZeroMQ.

:class:`FakeReplica` satisfies :class:`clipper_core.serving.replica.Replica` the way the RPC server's
``ReplicaConnection`` does: ``predict`` stamps the PREDICT header, keeps the future in ``pending`` and "sends"
the batch, which the fake decodes exactly as a container would (header through msgpack, buffers as the bytes
that would cross the wire, :func:`clipper_container.protocol.decode_inputs`). The test then answers each
:class:`SentBatch` explicitly, or loses the replica.

:class:`FakeClock` is the monotonic time the serving core is built with. The SLO wait (``wait_all``) and
delayed batching also arm timers on the event loop, whose clock is ``time.monotonic`` in production, the
same clock the core reads; :meth:`FakeClock.drive` keeps that agreement in tests by making the running loop's
``time()`` the fake clock, so advancing it fires exactly the timers that are due and nothing waits in real
time.

:class:`ServingHarness` assembles a memory state store, the built-in plugins, a :class:`Snapshot` following
the store's change feed and a :class:`QueryPath`, as ``clipper_core.server.resources`` does.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import numpy as np
from clipper_container.protocol import MsgType, decode_inputs, pack, unpack

from clipper_core.config import Config
from clipper_core.inputs import InputType
from clipper_core.interfaces import PredictionCache
from clipper_core.plugins import PluginRegistry, make_plugin_manager
from clipper_core.rpc import ReplicaLost
from clipper_core.serving.app_runtime import AppRuntime
from clipper_core.serving.model_runtime import ModelRuntime
from clipper_core.serving.prediction import Prediction
from clipper_core.serving.query_path import QueryPath
from clipper_core.serving.snapshot import Snapshot
from clipper_core.state import Application, Model
from clipper_core.state import Replica as ReplicaRecord
from clipper_core.state.memory import MemoryStateStore

__all__ = ["FakeClock", "FakeReplica", "HarnessFactory", "OneAtATime", "SentBatch", "ServingHarness", "doubles",
           "run_until", "settle"]

_identities = itertools.count(1)
_msg_ids = itertools.count(1)


class FakeClock:
    """Monotonic seconds that move only when the test says so.

    :param start: the first reading (default: the running loop's time, so timers armed before
        :meth:`drive` keep their meaning)
    """

    def __init__(self, start: float | None = None) -> None:
        self.now = asyncio.get_running_loop().time() if start is None else start
        self._loop: asyncio.AbstractEventLoop | None = None

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a monotonic clock cannot go back ({seconds} s)")
        self.now += seconds

    def set(self, now: float) -> None:
        if now < self.now:
            raise ValueError(f"a monotonic clock cannot go back from {self.now} to {now}")
        self.now = now

    def drive(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make ``loop.time()`` read this clock (until :meth:`release`): its timers then fire on fake time."""
        self._loop = loop
        loop.time = self  # type: ignore[method-assign]

    def release(self) -> None:
        if self._loop is not None:
            del self._loop.time  # back to the class's real clock
            self._loop = None


class SentBatch:
    """One PREDICT a :class:`FakeReplica` received, with the inputs the model would see; answer it once."""

    def __init__(self, replica: FakeReplica, header: dict[str, Any], frames: list[bytes],
                 future: asyncio.Future[dict[str, Any]]) -> None:
        self.replica = replica
        self.header = header
        """The PREDICT header as the container unpacks it (``t``, ``id``, ``kind``, ``dtype``, ...)."""
        self.frames = frames
        self.future = future
        self.decoded: Any = decode_inputs(header, frames)
        """What the model's predict() receives: an [n, d] array, or a list of arrays, str or bytes."""

    @property
    def msg_id(self) -> int:
        return int(self.header["id"])

    @property
    def inputs(self) -> list[Any]:
        """One value per input: numeric inputs as lists of Python numbers, str and bytes as they are."""
        return [x.tolist() if isinstance(x, np.ndarray) else x for x in self.decoded]

    def __len__(self) -> int:
        return len(self.decoded)

    def answer(self, outputs: Sequence[Any], *, errors: Mapping[int, str] | None = None,
               compute_ms: float | None = 1.0) -> None:
        """RESULT with ``outputs`` (one per input, or deliberately not) and per-item ``errors`` by index."""
        result: dict[str, Any] = {"n": len(self), "out": list(outputs)}
        if errors:
            result["errs"] = [[i, message] for i, message in sorted(errors.items())]
        if compute_ms is not None:
            result["compute_ms"] = compute_ms
        self.reply(result)

    def fail(self, error: str, *, compute_ms: float | None = 1.0) -> None:
        """RESULT saying the model raised for the whole batch (``error`` is ``"<Type>: <message>"``)."""
        result: dict[str, Any] = {"n": len(self), "error": error}
        if compute_ms is not None:
            result["compute_ms"] = compute_ms
        self.reply(result)

    def reply(self, fields: dict[str, Any]) -> None:
        """Deliver a RESULT header as the RPC server does: by message id, through msgpack."""
        if not self.replica.alive:
            raise AssertionError(f"replica {self.replica.replica_id} is gone; it cannot answer batch {self.msg_id}")
        future = self.replica.pending.pop(self.msg_id, None)
        if future is None:
            raise AssertionError(f"batch {self.msg_id} was answered already")
        header = unpack(pack({"t": int(MsgType.RESULT), "id": self.msg_id, **fields}))
        if not future.done():
            future.set_result(header)


class FakeReplica:
    """A connected replica of one model version whose batches the test answers (see :class:`SentBatch`)."""

    def __init__(self, model_name: str, model_version: str, input_type: InputType, *, replica_id: int = 0,
                 info: dict[str, Any] | None = None) -> None:
        self.identity = f"fake-{next(_identities)}".encode()
        self.model_name = model_name
        self.model_version = model_version
        self.input_type = input_type
        self.replica_id = replica_id
        self.info: dict[str, Any] = {"pid": None, "instance": "fake", "runtime": "fake", "max_batch_size": None,
                                     **(info or {})}
        self.alive = True
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.batches: list[SentBatch] = []
        """Every batch received, in order."""
        self._arrivals: asyncio.Queue[SentBatch] = asyncio.Queue()

    def predict(self, fields: dict[str, Any], buffers: list[Any]) -> asyncio.Future[dict[str, Any]]:
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if not self.alive:
            fut.set_exception(ReplicaLost(f"replica {self.replica_id} of {self.model_name}:{self.model_version}"
                                          " is gone"))
            return fut
        msg_id = next(_msg_ids)
        fields["t"] = MsgType.PREDICT
        fields["id"] = msg_id
        self.pending[msg_id] = fut
        frames = [bytes(memoryview(buf).cast("B")) for buf in buffers]  # what arrives after the wire
        batch = SentBatch(self, unpack(pack(fields)), frames, fut)
        self.batches.append(batch)
        self._arrivals.put_nowait(batch)
        return fut

    async def next_batch(self) -> SentBatch:
        """The next batch not yet taken by this method (waits for it to be sent)."""
        return await self._arrivals.get()

    @property
    def waiting_batches(self) -> int:
        """Batches received and not yet taken by :meth:`next_batch`."""
        return self._arrivals.qsize()

    async def serve(self, answer: Callable[[Any], Any], *until: asyncio.Future[Any]) -> None:
        """Answer every batch, one output per input by ``answer(input)``, until all of ``until`` are done."""
        done: asyncio.Future[list[Any]] = asyncio.gather(*until, return_exceptions=True)
        while not done.done():
            arrival: asyncio.Future[Any] = asyncio.ensure_future(self.next_batch())
            await asyncio.wait([arrival, done], return_when=asyncio.FIRST_COMPLETED)
            if arrival.done():
                batch = arrival.result()
                batch.answer([answer(x) for x in batch.inputs])
            else:
                arrival.cancel()

    def lose(self, reason: str = "the container died") -> None:
        """The replica goes away: every batch in flight fails with ReplicaLost (as ``fail_pending`` does)."""
        self.alive = False
        pending, self.pending = self.pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(ReplicaLost(reason))


def doubles(*values: float) -> np.ndarray[Any, np.dtype[np.float64]]:
    """A decoded doubles input, as the frontends hand it to the query path."""
    return np.array(values, dtype=np.float64)


async def run_until(condition: Callable[[], bool], *, steps: int = 100) -> None:
    """Let the loop run one step at a time until ``condition`` holds (for state no future announces)."""
    for _ in range(steps):
        if condition():
            return
        await asyncio.sleep(0)
    if not condition():
        raise AssertionError(f"condition still false after {steps} loop steps")


async def settle(steps: int = 20) -> None:
    """Let the loop run ``steps`` steps (to show that something does *not* happen without an outside event)."""
    for _ in range(steps):
        await asyncio.sleep(0)


class ServingHarness:
    """A query path over a memory store, the built-in plugins and fake replicas, on a :class:`FakeClock`."""

    def __init__(self, config: Config, clock: FakeClock, store: MemoryStateStore, registry: PluginRegistry,
                 cache: PredictionCache | None) -> None:
        self.config = config
        self.clock = clock
        self.store = store
        self.registry = registry
        self.cache = cache
        self.snapshot = Snapshot(store, registry, cache, config, clock=clock)
        self.path = QueryPath(self.snapshot, store, cache, config, clock=clock)
        self._unsubscribe = store.subscribe(self.snapshot.on_change)
        self._tasks: list[asyncio.Task[Any]] = []

    @classmethod
    async def start(cls, config: Config | None = None) -> ServingHarness:
        config = config or Config(state_store="memory")
        loop = asyncio.get_running_loop()
        clock = FakeClock()
        clock.drive(loop)
        registry = PluginRegistry.create(make_plugin_manager(load_entry_points=False))
        cache: PredictionCache | None = None
        if config.cache_size_bytes > 0:
            cache = registry.caches.get(config.cache_backend)({"size_bytes": config.cache_size_bytes})
            await cache.start()
        store = MemoryStateStore()
        await store.open()
        harness = cls(config, clock, store, registry, cache)
        await harness.snapshot.load()
        return harness

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._unsubscribe()
        await self.snapshot.close()
        if self.cache is not None:
            await self.cache.stop()
        await self.store.close()
        self.clock.release()

    # -- registration (through the store, then the snapshot reloads) ---------------------------------------
    async def add_app(self, name: str = "app", *, input_type: InputType = InputType.DOUBLES,
                      default_output: str = "-1.0", slo_micros: int = 100_000, policy: str = "default",
                      cache_enabled: bool = True, models: Sequence[str] = (), require_api_key: bool = False,
                      priority: str = "normal", limits: dict[str, Any] | None = None) -> None:
        await self.store.add_app(Application(name, input_type, default_output, slo_micros, policy=policy,
                                             cache_enabled=cache_enabled, require_api_key=require_api_key,
                                             priority=priority, limits=limits))
        if models:
            await self.store.add_links(name, list(models))
        await self.snapshot.sync()

    async def add_model(self, name: str = "m", version: str = "1", *, input_type: InputType = InputType.DOUBLES,
                        batch_size: int = -1, batch_wait_timeout_micros: int = 0, make_current: bool = True,
                        app: str | None = None) -> None:
        """Register a model version (current unless told otherwise), linked to ``app`` if given."""
        await self.store.add_model(Model(name, version, input_type, batch_size=batch_size,
                                         batch_wait_timeout_micros=batch_wait_timeout_micros),
                                   make_current=make_current)
        if app is not None:
            await self.store.add_links(app, [name])
        await self.snapshot.sync()

    # -- replicas (as the RPC server's on_ready / on_gone callbacks do) ----------------------------------------
    async def connect(self, name: str = "m", version: str = "1", *, input_type: InputType | None = None,
                      info: dict[str, Any] | None = None) -> FakeReplica:
        model = await self.store.get_model(name, version)
        kind = input_type or (model.input_type if model is not None else InputType.DOUBLES)
        replica = FakeReplica(name, version, kind, replica_id=await self.store.next_replica_id(name, version),
                              info=info)
        await self.snapshot.on_replica_ready(replica)
        await self.store.add_replica(ReplicaRecord(name, version, replica.replica_id, kind, frontend="fake",
                                                   info=dict(replica.info)))
        return replica

    async def disconnect(self, replica: FakeReplica, reason: str = "the container died") -> None:
        """Drop a replica as the RPC server does: not alive, batches in flight lost, then on_gone."""
        replica.lose(reason)
        await self.snapshot.on_replica_gone(replica)
        await self.store.delete_replica(replica.model_name, replica.model_version, replica.replica_id)

    # -- queries -------------------------------------------------------------------------------------------
    def predict_soon(self, app: AppRuntime | str, items: list[Any], *, uid: int = 0,
                     version: str | None = None, api_key: str | None = None) -> asyncio.Task[list[Prediction]]:
        """Start a prediction as its own task (like one HTTP request); cancelled at teardown if still running."""
        task = asyncio.get_running_loop().create_task(self.path.predict(app, items, uid=uid, version=version,
                                                                        api_key=api_key))
        self._tasks.append(task)
        return task

    def runtime(self, name: str = "m", version: str = "1") -> ModelRuntime:
        return self.snapshot.models[(name, version)]


HarnessFactory = Callable[..., Awaitable[ServingHarness]]
OneAtATime = tuple[ServingHarness, FakeReplica]
"""The ``one_at_a_time`` fixture: a harness and its one replica, one batch in flight."""
