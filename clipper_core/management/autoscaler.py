"""The autoscaler of the management server: every ``interval`` seconds, for each model version whose record
carries autoscaling settings, it sums the load every query frontend reported through the state store
(:meth:`~clipper_core.state.StateStore.list_load`, so it sees all frontends), asks the pure decision function
(:func:`clipper_core.autoscaling.decision.decide`) for the replica count, and when that changes, acts through a
*scaler*: the local replica supervisor (``ManagementOperations.resize``, which also records the count) or a
container manager's ``set_num_replicas`` (Docker, Kubernetes). A version scaled to zero has its queries queued
(the query path) and reported at once; the first tick that sees them starts a replica.

Each decision is logged with the figures behind it when it changes the count, kept for ``get_autoscaling`` and
``clipper autoscale --show``, and exported as ``clipper_autoscaler_*`` metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict
from typing import Any

from clipper_core.autoscaling.config import AutoscalingConfig
from clipper_core.autoscaling.decision import Decision, Figures, ScalerState, decide
from clipper_core.config import Config, ConfigError
from clipper_core.management.periodic import tick_forever
from clipper_core.plugins import PluginRegistry
from clipper_core.state import Model, StateStore
from clipper_core.state.records import ChangeEvent, LoadFigures, load_key

__all__ = ["Autoscaler", "Scale", "manager_scaler", "sum_figures"]

log = logging.getLogger(__name__)

Scale = Callable[[Model, int], Awaitable[object]]
"""Bring a model version to a replica count (the scaler the autoscaler acts through); given the version's record
as it is now (re-read: a version deleted or no longer autoscaled since the decision is not scaled)."""
_SUMMED = ("queued", "inflight", "arrivals", "answered", "cold_waiting")
MAX_BACKOFF = 30.0
"""Most seconds between two tries of a change that keeps failing (doubling from the tick interval)."""


def manager_scaler(store: StateStore, registry: PluginRegistry, config: Config) -> Scale:
    """A scaler acting through the container manager ``config.autoscale_manager`` names, made with the JSON
    constructor arguments of ``config.autoscale_manager_options``: its (blocking) ``set_num_replicas`` runs in a
    thread, and the new count is recorded in the model's record."""
    try:
        options = json.loads(config.autoscale_manager_options or "{}")
    except ValueError as exc:
        raise ConfigError(f"CLIPPER_AUTOSCALE_MANAGER_OPTIONS is not JSON: {exc}") from None
    if not isinstance(options, dict):
        raise ConfigError("CLIPPER_AUTOSCALE_MANAGER_OPTIONS must be a JSON object of constructor arguments")
    manager = registry.container_managers.get(config.autoscale_manager)(**options)

    async def scale(model: Model, num_replicas: int) -> None:
        await asyncio.to_thread(manager.set_num_replicas, model.name, model.version, model.input_type.value,
                                model.container_name, num_replicas)
        # Re-read: the scale may have taken a while (replicas waited for), and a set_autoscaling meanwhile must
        # not be overwritten with the settings this change was decided under.
        current = await store.get_model(model.name, model.version)
        if current is not None:
            await store.update_model(current.replace(num_replicas=num_replicas))

    return scale


def sum_figures(reports: Iterable[LoadFigures], key: str, slo_s: float, now: float) -> Figures:
    """One model version's figures over every frontend's report: the counts and rates add up; every replica
    serves every frontend, so the ready replicas are the most any frontend sees; p99 is the worst frontend's."""
    total = dict.fromkeys(_SUMMED, 0.0)
    p99: float | None = None
    item_seconds: list[float] = []
    ready = 0
    at = 0.0
    for report in reports:
        figures = report.get(key)
        if not figures:
            continue
        for name in _SUMMED:
            total[name] += float(figures.get(name) or 0.0)
        if figures.get("p99_latency_s") is not None:
            p99 = max(p99 or 0.0, float(figures["p99_latency_s"]))
        if figures.get("item_seconds"):
            item_seconds.append(float(figures["item_seconds"]))
        ready = max(ready, int(figures.get("ready_replicas") or 0))
        at = max(at, float(figures.get("at") or 0.0))
    return Figures(queued=int(total["queued"]), inflight=int(total["inflight"]), arrival_rate=total["arrivals"],
                   throughput=total["answered"], p99_latency_s=p99,
                   item_seconds=sum(item_seconds) / len(item_seconds) if item_seconds else 0.0,
                   ready_replicas=ready, cold_waiting=int(total["cold_waiting"]), slo_s=slo_s, at=at or now)


class Autoscaler:
    """Sizes autoscaled model versions (see the module docstring).

    :param scale: the scaler; called in a task of its own per version, one change at a time
    :param clock: monotonic seconds for the decision function's delays (injectable for tests)
    """

    def __init__(self, store: StateStore, scale: Scale, *, interval: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.scale = scale
        self.interval = interval
        self.clock = clock
        self._states: dict[tuple[str, str], ScalerState] = {}
        self._status: dict[tuple[str, str], dict[str, Any]] = {}
        self._acting: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._models: list[Model] | None = None
        """The autoscaled versions, re-read only after the store announced a change (idle ticks cost nothing)."""
        self._unsubscribe = store.subscribe(self._changed)
        self.decisions: dict[tuple[str, str, str], int] = {}
        """(model, version, action) -> decisions that changed the count (a metric)."""
        self.failures = 0
        self._slos: dict[str, float] = {}
        self._failed: dict[tuple[str, str], int] = {}
        """Consecutive failed changes per version."""
        self._backoff: dict[tuple[str, str], float] = {}
        """Version -> (clock) time before which no new change is tried after a failure."""

    # -- the loop -------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Tick until cancelled; a failing tick (a store outage) is logged and the next one tried."""
        await tick_forever(self.tick, self.interval, log, "autoscaler", failed=self._tick_failed)

    def _tick_failed(self) -> None:
        self.failures += 1

    def _changed(self, event: ChangeEvent) -> None:
        if event.kind in ("model", "app", "link", "reload"):  # a version, or the SLOs of its apps
            self._models = None

    async def close(self) -> None:
        self._unsubscribe()
        tasks = list(self._acting.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    async def tick(self) -> list[Decision]:
        """One look at every autoscaled version; returns the decisions made."""
        if self._models is None:
            self._models = [m for m in await self.store.list_models() if m.autoscaling]
            self._slos = await self._smallest_slos() if self._models else {}
        models = self._models
        keys = {m.key for m in models}
        for key in [k for k in self._states if k not in keys]:  # autoscaling turned off, or version gone
            self._states.pop(key, None)
            self._status.pop(key, None)
            self._failed.pop(key, None)
            self._backoff.pop(key, None)
        if not models:
            return []
        reports = list((await self.store.list_load()).values())
        slos = self._slos
        now = self.clock()
        made = []
        for model in models:
            if model.key in self._acting:
                continue  # a change is under way: decide again once it is done
            if self._backoff.get(model.key, 0.0) > now:
                continue  # its last change failed: try again later
            state = self._states.get(model.key)
            if state is not None and state.desired != model.num_replicas:
                # The count was changed by someone else (set_num_replicas by hand): start from what is there.
                self._states[model.key] = ScalerState.initial(model.num_replicas)
            decision = self._decide(model, reports, slos.get(model.name, 1.0), now)
            made.append(decision)
            if decision.changed:
                self._act(model, decision)
        return made

    def _decide(self, model: Model, reports: list[LoadFigures], slo_s: float, now: float) -> Decision:
        settings = AutoscalingConfig(**model.autoscaling)  # type: ignore[arg-type]
        figures = sum_figures(reports, load_key(model.name, model.version), slo_s, time.time())
        state = self._states.get(model.key) or ScalerState.initial(model.num_replicas)
        state, decision = decide(settings, figures, state, now)
        self._states[model.key] = state
        status = {**asdict(decision), "ready_replicas": figures.ready_replicas,
                  "arrival_rate": figures.arrival_rate, "at": time.time()}
        if self._failed.get(model.key):  # the last change failed: say so until one succeeds
            status["error"] = self._status.get(model.key, {}).get("error")
            status["failures"] = self._failed[model.key]
        self._status[model.key] = status
        return decision

    def _act(self, model: Model, decision: Decision) -> None:
        log.info("autoscaling %s:%s: %s", model.name, model.version, decision.reason)
        counter = (model.name, model.version, decision.action)

        async def change() -> None:
            try:
                current = await self.store.get_model(model.name, model.version)
                if current is None or not current.autoscaling:
                    return  # gone, or autoscaling turned off, since the decision
                await self.scale(current, decision.desired)
            except Exception as exc:
                failures = self._failed.get(model.key, 0) + 1
                self._failed[model.key] = failures
                delay = min(MAX_BACKOFF, self.interval * 2 ** failures)
                self._backoff[model.key] = self.clock() + delay
                log.error("autoscaling %s:%s to %d failed (trying again in %.1f s): %s", model.name, model.version,
                          decision.desired, delay, exc)
                self._states[model.key] = ScalerState.initial(model.num_replicas)  # decide afresh from the record
                self._status.setdefault(model.key, {}).update(error=str(exc), failures=failures)
            else:
                self._failed.pop(model.key, None)
                self._backoff.pop(model.key, None)
                self.decisions[counter] = self.decisions.get(counter, 0) + 1
            finally:
                self._acting.pop(model.key, None)

        self._acting[model.key] = asyncio.get_running_loop().create_task(change())

    async def _smallest_slos(self) -> dict[str, float]:
        """Model name -> the smallest SLO (seconds) of the applications linked to it."""
        slos: dict[str, float] = {}
        for app in await self.store.list_apps():
            for name in await self.store.get_links(app.name):
                slo = app.latency_slo_micros / 1e6
                slos[name] = min(slos.get(name, slo), slo)
        return slos

    # -- what others read -----------------------------------------------------------------------------
    def status(self, name: str, version: str) -> dict[str, Any] | None:
        status = self._status.get((name, version))
        return dict(status) if status is not None else None

    def metric_rows(self) -> list[tuple[str, str, str, dict[str, str], Any]]:
        """Rows for :class:`clipper_core.metrics.MetricsCollector`."""
        rows: list[tuple[str, str, str, dict[str, str], Any]] = []
        for (name, version), status in self._status.items():
            labels = {"model": name, "version": version}
            rows.append(("gauge", "clipper_autoscaler_desired_replicas", "replicas the autoscaler wants", labels,
                         status.get("desired", 0)))
            rows.append(("gauge", "clipper_autoscaler_wanted_replicas", "replicas the load asks for, before delays "
                         "and bounds", labels, status.get("wanted", 0)))
            rows.append(("gauge", "clipper_autoscaler_load_per_replica", "smoothed outstanding inputs per ready "
                         "replica", labels, status.get("load_per_replica", 0.0)))
        for (name, version, action), count in self.decisions.items():
            rows.append(("counter", "clipper_autoscaler_changes", "replica-count changes the autoscaler made",
                         {"model": name, "version": version, "action": action}, count))
        rows.append(("counter", "clipper_autoscaler_failed_ticks", "autoscaler ticks that failed (store outage)",
                     {}, self.failures))
        return rows
