"""The management server's autoscaler over a real (in-memory) store, with a fake scaler and a fake clock: it sums
every frontend's load report, decides with the decision function, acts once per change (and not while a change is
under way), keeps the status and metrics, and forgets versions whose autoscaling was turned off."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from clipper_core import LocalContainerManager
from clipper_core.autoscaling.config import AutoscalingConfig
from clipper_core.config import Config, ConfigError
from clipper_core.inputs import InputType
from clipper_core.management.autoscaler import Autoscaler, manager_scaler, sum_figures
from clipper_core.plugins import PluginRegistry, make_plugin_manager
from clipper_core.state import Application, Model
from clipper_core.state.memory import MemoryStateStore
from clipper_core.state.records import load_key
from clipper_core.testing import ServerThread


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _model(autoscaling: dict[str, Any] | None, replicas: int = 1) -> Model:
    return Model("m", "1", InputType.DOUBLES, container_name="/models/m", num_replicas=replicas,
                 autoscaling=autoscaling)


def _figures(queued: float = 0, inflight: float = 0, arrivals: float = 0, ready: int = 1,
             cold: float = 0) -> dict[str, float]:
    return {"queued": queued, "inflight": inflight, "arrivals": arrivals, "answered": arrivals,
            "item_seconds": 0.01, "ready_replicas": ready, "cold_waiting": cold, "at": 1.0}


async def _store(settings: dict[str, Any], replicas: int = 1) -> MemoryStateStore:
    store = MemoryStateStore()
    await store.open()
    await store.add_app(Application("a", InputType.DOUBLES, "-1", 500_000))
    await store.add_model(_model(settings, replicas))
    await store.add_links("a", ["m"])
    return store


def test_figures_add_up_over_frontends_and_replicas_are_the_most_any_frontend_sees() -> None:
    key = load_key("m", "1")
    reports = [{key: {**_figures(queued=3, inflight=2, arrivals=50, ready=2), "p99_latency_s": 0.2}},
               {key: {**_figures(queued=1, inflight=4, arrivals=30, ready=2), "p99_latency_s": 0.4}},
               {"other:1": _figures(queued=99)}]
    figures = sum_figures(reports, key, 0.5, now=5.0)
    assert (figures.queued, figures.inflight, figures.arrival_rate, figures.ready_replicas) == (4, 6, 80.0, 2)
    assert figures.p99_latency_s == 0.4 and figures.slo_s == 0.5 and figures.item_seconds == 0.01


async def test_it_scales_up_after_the_delay_through_the_scaler_and_records_why() -> None:
    settings = AutoscalingConfig(min_replicas=1, max_replicas=4, target_inflight_per_replica=2,
                                 upscale_delay_s=2, downscale_delay_s=30, smoothing_window_s=1).to_dict()
    store = await _store(settings)
    scaled: list[int] = []
    gate = asyncio.Event()

    async def scale(model: Model, n: int) -> None:
        scaled.append(n)
        await gate.wait()  # a change under way: no new decision for this version until it is done
        await store.update_model(model.replace(num_replicas=n))

    clock = Clock()
    autoscaler = Autoscaler(store, scale, clock=clock)
    await store.put_load("fe1", {load_key("m", "1"): _figures(queued=4, inflight=2, arrivals=200)})
    await store.put_load("fe2", {load_key("m", "1"): _figures(queued=1, inflight=1, arrivals=100)})
    assert [d.changed for d in await autoscaler.tick()] == [False]  # wanted, not yet for the delay
    clock.now += 2.5
    await store.put_load("fe1", {load_key("m", "1"): _figures(queued=4, inflight=2, arrivals=200)})
    decisions = await autoscaler.tick()
    assert decisions[0].changed and decisions[0].desired == 4
    await asyncio.sleep(0)
    assert scaled == [4]
    clock.now += 5
    assert await autoscaler.tick() == []  # acting: skipped
    gate.set()
    for _ in range(10):
        await asyncio.sleep(0)
    status = autoscaler.status("m", "1")
    assert status is not None and status["desired"] == 4 and "4" in status["reason"]
    rows = {(name, tuple(labels.items())): value for _, name, _, labels, value in autoscaler.metric_rows()}
    assert rows[("clipper_autoscaler_desired_replicas", (("model", "m"), ("version", "1")))] == 4
    assert rows[("clipper_autoscaler_changes", (("model", "m"), ("version", "1"), ("action", "up")))] == 1
    await autoscaler.close()


async def test_a_version_scaled_to_zero_is_started_at_once_when_queries_wait() -> None:
    settings = AutoscalingConfig(min_replicas=0, max_replicas=3, upscale_delay_s=30).to_dict()
    store = await _store(settings, replicas=0)
    scaled: list[int] = []

    async def scale(model: Model, n: int) -> None:
        scaled.append(n)

    autoscaler = Autoscaler(store, scale, clock=Clock())
    await store.put_load("fe1", {load_key("m", "1"): _figures(queued=1, ready=0, cold=1)})
    decisions = await autoscaler.tick()
    await asyncio.sleep(0)
    assert decisions[0].action == "from_zero" and scaled == [1]
    await autoscaler.close()


async def test_versions_without_autoscaling_are_left_alone_and_forgotten() -> None:
    store = await _store(AutoscalingConfig().to_dict())

    async def scale(model: Model, n: int) -> None:
        raise AssertionError("nothing to scale")

    autoscaler = Autoscaler(store, scale, clock=Clock())
    await autoscaler.tick()
    assert autoscaler.status("m", "1") is not None
    model = await store.get_model("m", "1")
    assert model is not None
    await store.update_model(model.replace(autoscaling=None))
    assert await autoscaler.tick() == [] and autoscaler.status("m", "1") is None


async def test_a_failing_scaler_is_logged_and_decided_afresh() -> None:
    settings = AutoscalingConfig(min_replicas=2, max_replicas=4).to_dict()
    store = await _store(settings, replicas=1)  # below min: raised at once

    async def scale(model: Model, n: int) -> None:
        raise RuntimeError("the engine is away")

    clock = Clock()
    autoscaler = Autoscaler(store, scale, clock=clock)
    assert (await autoscaler.tick())[0].desired == 2
    for _ in range(5):
        await asyncio.sleep(0)
    status = autoscaler.status("m", "1")
    assert status is not None and status["error"] == "the engine is away"
    assert await autoscaler.tick() == []  # backing off
    clock.now += 1.5
    assert (await autoscaler.tick())[0].desired == 2  # tried again
    status = autoscaler.status("m", "1")  # a new decision, and still the error until a change succeeds
    assert status is not None and status["error"] == "the engine is away" and status["failures"] == 1
    assert not autoscaler.decisions  # only changes that happened are counted
    await autoscaler.close()


async def test_a_count_changed_by_hand_is_taken_as_the_new_start() -> None:
    settings = AutoscalingConfig(min_replicas=1, max_replicas=4, target_inflight_per_replica=2).to_dict()
    store = await _store(settings, replicas=1)
    scaled: list[int] = []

    async def scale(model: Model, n: int) -> None:
        scaled.append(n)

    clock = Clock()
    autoscaler = Autoscaler(store, scale, clock=clock)
    await store.put_load("fe1", {load_key("m", "1"): _figures(queued=0, inflight=1, arrivals=1, ready=1)})
    assert (await autoscaler.tick())[0].desired == 1
    model = await store.get_model("m", "1")
    assert model is not None
    await store.update_model(model.replace(num_replicas=3))  # an operator's set_num_replicas
    decision = (await autoscaler.tick())[0]
    assert decision.previous == 3 and not decision.changed  # held at 3, to come down after the downscale delay
    await autoscaler.close()


class _GatedManager(LocalContainerManager):
    """The local manager, but its ``set_num_replicas`` blocks until released (a scale that waits for replicas)."""

    name = "gated"
    entered = threading.Event()
    release = threading.Event()
    calls: list[tuple[str, str, int]] = []

    def set_num_replicas(self, name: str, version: str, input_type: str, image: str, num_replicas: int) -> None:
        self.calls.append((name, version, num_replicas))
        self.entered.set()
        assert self.release.wait(10)


async def test_a_manager_scaler_records_the_count_without_undoing_a_setting_changed_meanwhile() -> None:
    _GatedManager.entered.clear()
    _GatedManager.release.clear()
    _GatedManager.calls.clear()
    registry = PluginRegistry.create(make_plugin_manager(load_entry_points=False))
    registry.container_managers.add(_GatedManager, "tests")
    store = await _store({"min_replicas": 1, "max_replicas": 3})
    scale = manager_scaler(store, registry, Config(autoscale_manager="gated"))
    model = await store.get_model("m", "1")
    assert model is not None
    change = asyncio.ensure_future(scale(model, 3))
    assert await asyncio.to_thread(_GatedManager.entered.wait, 10)
    # set_autoscaling while the manager waits for the new replicas
    await store.update_model(model.replace(autoscaling={"min_replicas": 1, "max_replicas": 5}))
    _GatedManager.release.set()
    await asyncio.wait_for(change, 10)
    after = await store.get_model("m", "1")
    assert after is not None and after.num_replicas == 3 and after.autoscaling == {"min_replicas": 1,
                                                                                  "max_replicas": 5}
    assert _GatedManager.calls == [("m", "1", 3)]
    await store.close()


def test_a_container_manager_scaler_is_configured_clearly() -> None:
    registry = PluginRegistry.create(make_plugin_manager(load_entry_points=False))
    store = MemoryStateStore()
    with pytest.raises(ConfigError, match="CLIPPER_AUTOSCALE_MANAGER_OPTIONS is not JSON"):
        manager_scaler(store, registry, Config(autoscale_manager="local", autoscale_manager_options="{"))
    with pytest.raises(ConfigError, match="must be a JSON object"):
        manager_scaler(store, registry, Config(autoscale_manager="local", autoscale_manager_options="[1]"))
    assert callable(manager_scaler(store, registry, Config(autoscale_manager="local")))


def test_a_manager_that_cannot_be_made_leaves_the_server_serving_without_an_autoscaler(tmp_path: Path) -> None:
    with ServerThread(tmp_path, manage_replicas=False, autoscale_manager="no-such-manager") as server:
        assert server.server.ctx.autoscaler is None
        assert server.server.ctx.rollouts is not None  # the rest of the management server runs
