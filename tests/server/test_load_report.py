"""A query frontend's load report: the figures a LoadReporter makes of fake runtimes on a fake clock (rates, p99
from bucket deltas, cold_waiting), waking it, and a running frontend publishing what list_load returns (every
second and at once when woken); a model version's autoscaling settings reaching the frontend's snapshot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from clipper_core.inputs import InputType
from clipper_core.metrics import SIZE_BUCKETS, FastHistogram
from clipper_core.server.load_report import LoadReporter, load_reporter
from clipper_core.serving.rollout import VersionCounters
from clipper_core.state import LoadFigures, Model, StateStore
from clipper_core.state.memory import MemoryStateStore
from clipper_core.state.sqlite import SqliteStateStore
from clipper_core.testing import ServerThread, wait_until

T = TypeVar("T")


class FakeQueue(list[object]):
    """Tasks as plain objects; none expires (pruning drops nothing)."""

    def prune(self) -> int:
        return 0


@dataclass
class FakeRuntime:
    """The fields of a ModelRuntime a report reads."""

    name: str = "m"
    version: str = "1"
    queue: FakeQueue = field(default_factory=FakeQueue)
    inflight_items: int = 0
    item_seconds: float = 0.0
    num_replicas: int = 1
    enqueued: int = 0
    predictions: int = 0
    queue_time: FastHistogram = field(default_factory=FastHistogram)
    rpc_latency: FastHistogram = field(default_factory=FastHistogram)
    rollout: VersionCounters | None = None
    rollout_tracking: bool = False


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def reporter(clock: FakeClock) -> LoadReporter:
    return LoadReporter(clock=clock, wall_clock=lambda: 1.7e9 + clock.now)


# -- the figures --------------------------------------------------------------------------------------------
def test_rates_are_over_the_interval_since_the_previous_report() -> None:
    clock = FakeClock()
    lr = reporter(clock)
    mr = FakeRuntime(queue=FakeQueue([1, 2, 3]), inflight_items=4, item_seconds=0.002, num_replicas=2, enqueued=10,
                     predictions=4)
    clock.now += 2.0
    first = lr.report([mr])
    assert first == {"m:1": {"queued": 3.0, "inflight": 4.0, "arrivals": 5.0, "answered": 2.0, "item_seconds": 0.002,
                             "ready_replicas": 2.0, "cold_waiting": 0.0, "interval_s": 2.0, "at": 1.7e9 + 102.0}}
    mr.enqueued, mr.predictions = 13, 10
    clock.now += 0.5
    second = lr.report([mr])["m:1"]
    assert (second["arrivals"], second["answered"], second["interval_s"]) == (6.0, 12.0, 0.5)
    clock.now += 1.0
    third = lr.report([mr])["m:1"]
    assert (third["arrivals"], third["answered"]) == (0.0, 0.0)  # nothing new: no rate


def test_every_value_is_a_number() -> None:
    clock = FakeClock()
    figures = reporter(clock).report([FakeRuntime(), FakeRuntime("n.x-y", "v_2", num_replicas=0)])
    assert set(figures) == {"m:1", "n.x-y:v_2"}
    assert all(type(v) is float for version in figures.values() for v in version.values())


def test_p99_comes_from_the_bucket_deltas_of_queue_wait_and_round_trip() -> None:
    clock = FakeClock()
    lr = reporter(clock)
    mr = FakeRuntime()
    for _ in range(100):
        mr.rpc_latency.observe(0.3)  # before the first report
    clock.now += 1
    assert lr.report([mr])["m:1"]["p99_latency_s"] == 0.5  # bucket (0.25, 0.5]
    for _ in range(100):
        mr.rpc_latency.observe(0.004)
    for _ in range(50):
        mr.queue_time.observe(0.0015)
    clock.now += 1
    # only this interval's observations: p99 round trip 0.005, p99 queue wait 0.002
    assert lr.report([mr])["m:1"]["p99_latency_s"] == pytest.approx(0.007)
    for _ in range(98):
        mr.rpc_latency.observe(0.0008)
    mr.rpc_latency.observe(0.04)
    mr.rpc_latency.observe(0.04)  # 2 % in (0.03, 0.05]: the 99th percentile is there
    clock.now += 1
    assert lr.report([mr])["m:1"]["p99_latency_s"] == 0.05
    clock.now += 1
    quiet = lr.report([mr])["m:1"]
    assert "p99_latency_s" not in quiet and quiet.get("p99_latency_s") is None  # nothing answered
    mr.rpc_latency.observe(60.0)
    clock.now += 1
    assert lr.report([mr])["m:1"]["p99_latency_s"] == 10.0  # beyond the last bucket: its bound


def test_cold_waiting_is_what_waits_for_a_version_without_replicas() -> None:
    clock = FakeClock()
    lr = reporter(clock)
    cold = FakeRuntime(queue=FakeQueue([1, 2, 3]), num_replicas=0, enqueued=3)
    clock.now += 0.25
    figures = lr.report([cold])["m:1"]
    assert (figures["cold_waiting"], figures["queued"], figures["ready_replicas"], figures["arrivals"]) == \
        (3.0, 3.0, 0.0, 12.0)
    cold.num_replicas = 1
    clock.now += 1
    assert lr.report([cold])["m:1"]["cold_waiting"] == 0.0


def test_a_new_runtime_of_a_version_counts_from_zero() -> None:
    clock = FakeClock()
    lr = reporter(clock)
    old = FakeRuntime(enqueued=100, predictions=100)
    clock.now += 1
    lr.report([old])
    new = FakeRuntime(enqueued=2, predictions=1, queue_time=FastHistogram(), rpc_latency=FastHistogram(SIZE_BUCKETS))
    new.rpc_latency.observe(3)
    clock.now += 1
    figures = lr.report([new])["m:1"]  # deleted and registered again: not a negative rate
    assert (figures["arrivals"], figures["answered"], figures["p99_latency_s"]) == (2.0, 1.0, 4.0)
    clock.now += 1
    assert lr.report([]) == {}  # gone from the snapshot: gone from the report


def test_an_empty_interval_has_no_rates() -> None:
    clock = FakeClock()
    lr = reporter(clock)
    figures = lr.report([FakeRuntime(enqueued=5)])["m:1"]
    assert (figures["arrivals"], figures["interval_s"]) == (0.0, 0.0)


# -- waking and publishing ----------------------------------------------------------------------------------
async def test_wake_ends_the_sleep_at_once_and_no_sooner_than_the_gap() -> None:
    lr = LoadReporter(min_wake_gap=0.05)
    assert await lr.sleep(0.01) is False
    lr.report([])
    started = time.monotonic()
    lr.wake()
    lr.wake()  # idempotent
    assert await lr.sleep(10.0) is True
    assert 0.03 <= time.monotonic() - started < 1.0  # waited out the gap since the last report, not the timeout
    assert await lr.sleep(0.01) is False  # the wake was taken
    loop = asyncio.get_running_loop()
    loop.call_later(0.1, lr.wake)
    started = time.monotonic()
    assert await lr.sleep(10.0) is True
    assert time.monotonic() - started < 1.0


class BrokenStore(MemoryStateStore):
    async def put_load(self, frontend: str, figures: LoadFigures, ttl: float = 5.0) -> None:
        raise ConnectionError("down")


async def test_publish_stores_the_report_and_survives_a_store_outage() -> None:
    store: StateStore = MemoryStateStore()
    clock = FakeClock()
    lr = reporter(clock)
    clock.now += 1
    published = await lr.publish(store, "tcp://fe:7000", [FakeRuntime(queue=FakeQueue([1]))])
    assert published is not None and await store.list_load() == {"tcp://fe:7000": published}
    assert published["m:1"]["queued"] == 1.0
    assert await lr.publish(BrokenStore(), "tcp://fe:7000", [FakeRuntime()]) is None


# -- a running frontend -------------------------------------------------------------------------------------
def on_loop(server: ServerThread, coro: Coroutine[Any, Any, T]) -> T:
    assert server.loop is not None
    return asyncio.run_coroutine_threadsafe(coro, server.loop).result(timeout=30)


@pytest.mark.parametrize("state_store", ["sqlite", "memory"])
def test_a_running_frontend_publishes_its_figures(tmp_path: Path, state_store: str) -> None:
    with ServerThread(tmp_path / "home", state_store=state_store) as server:
        ctx = server.server.ctx
        store: StateStore = ctx.store
        on_loop(server, store.add_model(Model("m", "1", InputType.DOUBLES)))

        def published() -> dict[str, LoadFigures]:
            return on_loop(server, store.list_load())

        wait_until(lambda: "m:1" in published().get(ctx.rpc_addr, {}), timeout=10, what="a load report of m:1")
        figures = published()[ctx.rpc_addr]["m:1"]
        assert (figures["queued"], figures["inflight"], figures["ready_replicas"], figures["cold_waiting"]) == \
            (0.0, 0.0, 0.0, 0.0)
        assert abs(figures["at"] - time.time()) < 5
        if store.shared:
            assert ctx.rpc_addr in on_loop(server, store.list_frontends())  # the registry's name for it

        # woken, it publishes at once: five wakes 0.12 s apart make five reports, not the one of a 1 s tick
        lr = server.call(lambda: load_reporter(ctx))
        assert lr is not None
        assert server.call(lambda: ctx.query_path.cold_demand) == lr.wake  # what the query path calls
        seen: set[float] = set()
        for _ in range(5):
            server.call(lr.wake)
            wait_until(lambda: (at := published()[ctx.rpc_addr]["m:1"]["at"]) not in seen and not seen.add(at),
                       timeout=0.5, interval=0.005, what="a report right after a wake")
            time.sleep(0.12)
        assert len(seen) == 5
    if state_store == "sqlite":  # a stopped frontend withdraws its report
        async def after_stop() -> dict[str, LoadFigures]:
            fresh = SqliteStateStore(tmp_path / "home" / "state.db")
            await fresh.open()
            try:
                return await fresh.list_load()
            finally:
                await fresh.close()

        assert asyncio.run(after_stop()) == {}


def test_autoscaling_settings_reach_the_frontends_snapshot(tmp_path: Path) -> None:
    """An update by another store over the same file (as the management server of another process would make)
    is announced like any model update: the frontend's runtime of the version holds the new record."""
    settings = {"min_replicas": 0, "max_replicas": 3, "target_inflight_per_replica": 4}
    with ServerThread(tmp_path / "home") as server:
        ctx = server.server.ctx
        model = Model("m", "1", InputType.DOUBLES)
        on_loop(server, ctx.store.add_model(model))

        def served() -> Any:
            mr = ctx.query_path.models.get(("m", "1"))
            return "missing" if mr is None or mr.model is None else mr.model.autoscaling

        wait_until(lambda: server.call(served) is None, timeout=10, what="m:1 in the snapshot")

        async def update(autoscaling: dict[str, Any] | None) -> None:
            other = SqliteStateStore(server.config.state_path)
            await other.open()
            try:
                await other.update_model(model.replace(autoscaling=autoscaling))
            finally:
                await other.close()

        on_loop(server, update(settings))
        wait_until(lambda: server.call(served) == settings, timeout=10, what="the autoscaling settings served")
        on_loop(server, update(None))
        wait_until(lambda: server.call(served) is None, timeout=10, what="autoscaling off again")
