"""A query frontend's load report: the live figures of every model version it serves, published to the state store
about once a second (:meth:`~clipper_core.state.StateStore.put_load`) for the management server's autoscaler
(:meth:`~clipper_core.state.StateStore.list_load`).

The figures are read from what the query path counts anyway (:class:`~clipper_core.serving.model_runtime.ModelRuntime`
counters, queue lengths and :class:`~clipper_core.metrics.FastHistogram` buckets) when a report is made, so the
reporting costs a request nothing. A :class:`LoadReporter` keeps the counters of its previous report to turn them
into rates and interval quantiles.

A report is ``{"name:version": figures}`` (:func:`~clipper_core.state.load_key`), one entry per version in the
frontend's snapshot (connected replicas or not). Each version's figures, all numbers:

``queued``
    inputs waiting in the version's queue now.
``inflight``
    inputs sent to replicas and not answered yet, now.
``arrivals``
    inputs/s enqueued for the version (``ModelRuntime.enqueued``: tasks the query path put in its queue, not
    cache hits, not inputs that joined an identical query, not re-queued ones), over the interval since the
    previous report.
``answered``
    inputs/s the model answered (``ModelRuntime.predictions``: every input of a batch a replica answered, per-item
    errors included), over the interval.
``p99_latency_s``
    seconds: the 99th percentile of the queue wait (``ModelRuntime.queue_time``, per input) plus that of the
    round trip to the replica (``ModelRuntime.rpc_latency``, per batch), both from the histograms' bucket deltas
    over the interval and read as the bucket's upper bound (``metrics.LATENCY_BUCKETS``; 10.0 beyond the last).
    An upper estimate of an input's time from enqueued to answered. **Absent** when no batch was answered in the
    interval, so ``figures.get("p99_latency_s")`` is None then.
``item_seconds``
    the model's moving average of seconds of model time per input (0.0 before the first answer).
``ready_replicas``
    connected replicas now.
``cold_waiting``
    inputs queued while the version has no connected replica (= ``queued`` when ``ready_replicas`` is 0, else 0):
    what scale-from-zero waits for.
``interval_s``
    seconds the rates and the quantile cover (since the previous report).
``at``
    wall-clock time of the report (``time.time()``, unix seconds).
``rollout.*``
    only for a version under an active rollout: its counts in the rollout's current step, for the management
    server's rollout controller (:meth:`clipper_core.rollouts.figures.StepFigures.flat`).

Besides the versions, a frontend that applies rate limits or quotas (``serving.tenancy``) reports under
:data:`TENANCY_KEY` (``@tenancy``: no model name holds ``@``) the requests/s
each limited app (``app``) and key (``app/key_id``) offered it, refused ones included; every frontend then applies
its share of each limit (:func:`clipper_core.serving.tenancy.demand_shares`).

The frontend's periodic task (:func:`clipper_core.server.resources.frontend_registry`) publishes a report every
second, and at once (at most every :data:`MIN_WAKE_GAP` seconds) after :meth:`LoadReporter.wake`: the query path
calls that when it enqueues work for a version with no replica, so scaling from zero does not wait for the tick.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sized
from dataclasses import dataclass
from typing import Protocol

from clipper_core.context import ServerContext
from clipper_core.metrics import FastHistogram
from clipper_core.serving.rollout import VersionCounters
from clipper_core.serving.tenancy import Quota, demand_shares, scope_key
from clipper_core.state import LoadFigures, StateStore, load_key
from clipper_core.timeouts import wait_event

__all__ = ["LOAD_REPORTER", "MIN_WAKE_GAP", "REPORT_TTL", "TENANCY_KEY", "LoadReporter", "ReportedRuntime",
           "apply_shares", "load_reporter"]

log = logging.getLogger(__name__)

REPORT_TTL = 5.0
"""Seconds a published report lives in the store without the next one."""
MIN_WAKE_GAP = 0.05
"""Seconds at least between two reports published because of :meth:`LoadReporter.wake` (a burst of cold queries
costs one write per gap, not one per query)."""
LOAD_REPORTER = "load_reporter"
TENANCY_KEY = "@tenancy"
"""The entry of a load report holding the demand on each rate-limited scope (see the module)."""
"""The key of a query frontend's :class:`LoadReporter` in :attr:`ServerContext.extra`."""


class ReportedQueue(Sized, Protocol):
    def prune(self) -> int:
        """Drop the tasks nobody waits for any more (:meth:`~clipper_core.serving.queue.ModelQueue.prune`)."""


class ReportedRuntime(Protocol):
    """What a report reads of a model version's runtime (:class:`~clipper_core.serving.model_runtime.ModelRuntime`
    has it; tests pass fakes)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def queue(self) -> ReportedQueue:
        """The version's queue; its length is the inputs waiting."""

    @property
    def inflight_items(self) -> int: ...

    @property
    def item_seconds(self) -> float: ...

    @property
    def num_replicas(self) -> int: ...

    @property
    def enqueued(self) -> int:
        """Inputs ever enqueued (a counter)."""

    @property
    def predictions(self) -> int:
        """Inputs ever answered (a counter)."""

    @property
    def queue_time(self) -> FastHistogram: ...

    @property
    def rpc_latency(self) -> FastHistogram: ...

    @property
    def rollout(self) -> VersionCounters | None:
        """Its rollout counts, published while ``rollout_tracking`` (``StepFigures.flat``)."""

    @property
    def rollout_tracking(self) -> bool: ...


@dataclass
class _Seen:
    """A runtime's counters at the previous report."""

    runtime: ReportedRuntime
    """Which runtime object they are of (a version deleted and registered again gets a new one, from zero)."""
    enqueued: int
    predictions: int
    queue_time: list[int]
    """Bucket counts (``FastHistogram.counts``)."""
    rpc_latency: list[int]

    @classmethod
    def of(cls, mr: ReportedRuntime) -> _Seen:
        return cls(mr, mr.enqueued, mr.predictions, list(mr.queue_time.counts), list(mr.rpc_latency.counts))

    @classmethod
    def zero(cls, mr: ReportedRuntime) -> _Seen:
        """Before a runtime's first report: it started from zero."""
        return cls(mr, 0, 0, [0] * len(mr.queue_time.counts), [0] * len(mr.rpc_latency.counts))


def _quantile(histogram: FastHistogram, before: list[int], q: float) -> float | None:
    """The ``q`` quantile of what ``histogram`` observed since its bucket counts were ``before`` (a bucket's upper
    bound; the last bound beyond it); None when it observed nothing."""
    deltas = [max(0, now - then) for now, then in zip(histogram.counts, before, strict=False)]
    total = sum(deltas)
    if not total:
        return None
    target, running = q * total, 0
    for bound, n in zip(histogram.bounds, deltas, strict=False):
        running += n
        if running >= target:
            return float(bound)
    return float(histogram.bounds[-1])


class LoadReporter:
    """Makes one frontend's load reports (see the module) and wakes its publishing task.

    :param clock: monotonic seconds, for the intervals (default ``time.monotonic``)
    :param wall_clock: the reports' ``at`` (default ``time.time``)
    :param min_wake_gap: seconds at least between two woken reports (:data:`MIN_WAKE_GAP`)
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time,
                 min_wake_gap: float = MIN_WAKE_GAP) -> None:
        self.clock = clock
        self.wall_clock = wall_clock
        self.min_wake_gap = min_wake_gap
        self._last = clock()
        """When the previous report was made (or the reporter): the start of the next report's interval."""
        self._seen: dict[str, _Seen] = {}
        """``"name:version"`` -> the counters at the previous report."""
        self._offered: dict[str, tuple[Quota, int]] = {}
        """Tenancy scope -> its quota and the requests it had been offered at the previous report."""
        self._woken = asyncio.Event()

    # -- reports ------------------------------------------------------------------------------------------
    def report(self, runtimes: Iterable[ReportedRuntime], quotas: Iterable[Quota] = ()) -> LoadFigures:
        """The figures of ``runtimes`` (and the demand on ``quotas``) now, rates and quantile over the interval
        since the previous report; remembers the counters for the next one."""
        now = self.clock()
        interval = now - self._last
        self._last = now
        at = self.wall_clock()
        seen: dict[str, _Seen] = {}
        figures: LoadFigures = {}
        for mr in runtimes:
            key = load_key(mr.name, mr.version)
            before = self._seen.get(key)
            if before is None or before.runtime is not mr:
                before = _Seen.zero(mr)
            replicas = mr.num_replicas
            if replicas == 0:
                mr.queue.prune()  # no replica takes work: expired tasks would count as waiting forever
            queued = len(mr.queue)
            version: dict[str, float] = {
                "queued": float(queued),
                "inflight": float(mr.inflight_items),
                "arrivals": _rate(mr.enqueued - before.enqueued, interval),
                "answered": _rate(mr.predictions - before.predictions, interval),
                "item_seconds": float(mr.item_seconds),
                "ready_replicas": float(replicas),
                "cold_waiting": float(queued if replicas == 0 else 0),
                "interval_s": max(interval, 0.0),
                "at": at,
            }
            rpc = _quantile(mr.rpc_latency, before.rpc_latency, 0.99)
            if rpc is not None:
                version["p99_latency_s"] = rpc + (_quantile(mr.queue_time, before.queue_time, 0.99) or 0.0)
            counters = mr.rollout
            if counters is not None and mr.rollout_tracking:
                version.update(counters.report())
            figures[key] = version
            seen[key] = _Seen.of(mr)
        self._seen = seen
        demand: dict[str, float] = {}
        offered: dict[str, tuple[Quota, int]] = {}
        for quota in quotas:
            scope = scope_key(quota)
            previous = self._offered.get(scope)
            then = previous[1] if previous is not None and previous[0] is quota else 0
            demand[scope] = _rate(quota.offered - then, interval)
            offered[scope] = (quota, quota.offered)
        self._offered = offered
        if demand:
            figures[TENANCY_KEY] = demand
        return figures

    async def publish(self, store: StateStore, frontend_addr: str, runtimes: Iterable[ReportedRuntime],
                      ttl: float = REPORT_TTL, quotas: Iterable[Quota] = ()) -> LoadFigures | None:
        """Make a report and store it as ``frontend_addr``'s; returns it, or None when the store failed (logged:
        the next tick tries again)."""
        figures = self.report(runtimes, quotas)
        try:
            await store.put_load(frontend_addr, figures, ttl=ttl)
        except Exception as exc:  # a store outage: the next report replaces this one
            log.warning("cannot publish the load report: %s", exc)
            return None
        return figures

    # -- waking -------------------------------------------------------------------------------------------
    def wake(self) -> None:
        """Ask for a report now (the query path enqueued work for a version with no replica). Cheap and
        idempotent: a set flag until the publishing task takes it."""
        self._woken.set()

    async def sleep(self, timeout: float) -> bool:
        """Wait ``timeout`` seconds or until :meth:`wake` (then no sooner than ``min_wake_gap`` after the previous
        report); True when woken."""
        woken = self._woken
        if not woken.is_set() and timeout > 0:
            await wait_event(woken, timeout)
        if not woken.is_set():
            return False
        gap = self._last + self.min_wake_gap - self.clock()
        if gap > 0:
            await asyncio.sleep(gap)
        woken.clear()  # what wakes it from here on asks for the next report
        return True


def _rate(delta: int, interval: float) -> float:
    """Per second; 0.0 over an empty interval."""
    return max(delta, 0) / interval if interval > 0 else 0.0


def load_reporter(ctx: ServerContext) -> LoadReporter | None:
    """The query frontend's reporter (None in a process without a query frontend, or before it starts)."""
    reporter = ctx.extra.get(LOAD_REPORTER)
    return reporter if isinstance(reporter, LoadReporter) else None


async def apply_shares(store: StateStore, quotas: Iterable[Quota], mine: LoadFigures, frontends: int = 1) -> None:
    """Give each quota this frontend's share of its limits, from every frontend's last report (``mine`` is this
    frontend's, just published). A store that cannot be read leaves the shares as they are."""
    demand = mine.get(TENANCY_KEY)
    if not demand:
        return
    try:
        reports = await store.list_load()
    except Exception as exc:  # a store outage: keep the shares of the last report
        log.warning("cannot read the load reports for the rate limits' shares: %s", exc)
        return
    shares = demand_shares(demand, [report.get(TENANCY_KEY, {}) for report in reports.values()],
                           max(frontends, len(reports)))
    for quota in quotas:
        share = shares.get(scope_key(quota))
        if share is not None:
            quota.set_share(share)
