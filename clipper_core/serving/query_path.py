"""The query path, protocol-neutral: :meth:`QueryPath.predict` and :meth:`QueryPath.feedback`.

A query: the app's policy selects models → per model, a cache lookup, a single-flight join or a task in that
version's queue (admission control first) → wait until every result is in or the SLO deadline, whichever is
first → the policy combines what arrived → one :class:`Prediction` per input. The frontends decode their wire
format into inputs (numpy arrays, ``str``, ``bytes``) and encode the predictions back; nothing here knows JSON,
HTTP or gRPC, and nothing here calls pluggy, threads or pydantic.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from functools import partial
from random import random
from typing import Any

from clipper_core.config import Config
from clipper_core.errors import ModelUnavailable, Overloaded, QueryError, version_missing
from clipper_core.inputs import input_to_json
from clipper_core.interfaces import CacheKey, PredictionCache, Query
from clipper_core.policies.rewards import reward
from clipper_core.serving.admission import admit
from clipper_core.serving.app_runtime import AppRuntime
from clipper_core.serving.cache_keys import item_key
from clipper_core.serving.combine import combine
from clipper_core.serving.learning import Learner
from clipper_core.serving.model_runtime import ItemFailed, ModelFailed, ModelRuntime
from clipper_core.serving.prediction import FeedbackReceipt, Prediction, ScalingFromZero
from clipper_core.serving.queue import DeadlineExpired, Task
from clipper_core.serving.recent import RecentPredictions
from clipper_core.serving.rollout import VersionCounters
from clipper_core.serving.shadow import NO_OUTPUT, ShadowMirror
from clipper_core.serving.snapshot import Snapshot
from clipper_core.serving.waiting import wait_all, wait_one
from clipper_core.state import ApiKey, Feedback, ModelKey, StateStore
from clipper_core.timeouts import wait_event
from clipper_core.tracing import STATE as TRACING
from clipper_core.tracing import child_context, record, request_context

__all__ = ["QueryPath"]

log = logging.getLogger(__name__)

Tracked = tuple[Query, "Plan", str, ModelRuntime, list[float | None]]
"""A query's model under a rollout: its plan, the version's runtime, and when that version's output arrived."""
_UNTRACED: Any = object()
"""``QueryPath.predict``'s ``_span`` when the caller is not the traced path (the default)."""
Route = tuple[Query, bytes | None, list[tuple[str, ModelRuntime]], list[str] | None]
"""One input's query, its cache key (None: cache off), the (model name, runtime) pairs chosen for it and the
models whose shadow rollout mirrors it (None: none, the usual case)."""
Plan = dict[str, Any]
"""Per model: its output (a cache hit), or the future that will hold it."""


class QueryPath:
    """Predictions and feedback over a :class:`Snapshot`.

    :param clock: monotonic seconds (default ``time.monotonic``): SLO deadlines, queue times and latencies
    """

    def __init__(self, snapshot: Snapshot, store: StateStore, cache: PredictionCache | None, config: Config,
                 *, clock: Callable[[], float] = time.monotonic) -> None:
        self.snapshot = snapshot
        self.store = store
        self.cache = cache
        self.clock = clock
        self.admission_slo_fraction = config.admission_slo_fraction
        """Refuse work predicted to finish later than this fraction of the SLO (it would only time out)."""
        self.learner = Learner(store, config, self._ask_every_model)
        self.draining = False
        self.active = 0
        """Predict requests being answered now (a graceful stop waits for them)."""
        self._drained: asyncio.Event | None = None
        self._query_ids = itertools.count()
        self._group_ids = itertools.count(1)
        self._single_flight: dict[CacheKey, Task] = {}
        """Cache key -> the task of the identical query on its way to a replica, while that query waits."""
        self.rollout_answers = RecentPredictions(config.recent_predictions)
        """What the versions under a rollout answered, by query: the feedback on them is their reward."""
        self.cold_demand: Callable[[], None] | None = None
        """Called when a query is queued for a model version that has no replica and scales from zero (the
        server points it at the load reporter, which tells the autoscaler at once)."""

    # -- admission to the path -------------------------------------------------------------------------
    def _refuse_while_draining(self, what: str) -> None:
        if self.draining:
            raise ModelUnavailable(f"clipper is shutting down and takes no new {what}", headers={"Retry-After": "1"})

    def open_app(self, name: str) -> AppRuntime:
        """The app a query names, once the server takes queries and the app's policy is loaded."""
        self._refuse_while_draining("queries")
        rt = self.snapshot.app(name)
        if rt.policy is None:
            raise ModelUnavailable(rt.policy_error)
        return rt

    def feedback_app(self, name: str) -> AppRuntime:
        """The app a feedback names, once the server takes feedback."""
        self._refuse_while_draining("feedback")
        return self.snapshot.app(name)

    def resolve_version(self, rt: AppRuntime, version: str | None) -> str | None:
        """A requested version must belong to the app's only linked model (Clipper's rule)."""
        if version is None:
            return None
        if not rt.linked:
            raise QueryError(f"application '{rt.app.name}' has no linked model, so version '{version}' "
                             "cannot be served")
        if len(rt.linked) > 1:
            raise QueryError(f"Too many models linked to application {rt.app.name}")
        model = rt.linked[0]
        if version not in self.snapshot.versions.get(model, {}):
            raise QueryError(version_missing(model, version))
        return version

    async def drain(self, timeout: float) -> None:
        """Refuse new queries (503) and wait up to ``timeout`` seconds for the ones in flight to be answered."""
        self.draining = True
        if not self.active:
            return
        self._drained = asyncio.Event()
        await wait_event(self._drained, timeout)  # in-flight queries end by their SLO

    # -- predict -------------------------------------------------------------------------------------------
    async def predict(self, app: AppRuntime | str, items: list[Any], *, uid: int = 0,
                      version: str | None = None, traceparent: str | None = None,
                      api_key: str | ApiKey | None = None,
                      _span: Any = _UNTRACED) -> list[Prediction]:
        """One prediction per decoded input (numeric inputs as 1-D numpy arrays of the app's dtype);
        ``traceparent``: the caller's W3C trace context (used when tracing is on); ``api_key``: the key the
        caller presented (checked, with the app's limits, when the app has a guard: :mod:`.tenancy`). ``_span``:
        the request's span, when :meth:`_traced_predict` calls this in it (untraced, the hot path pays one test
        for tracing)."""
        started = self.clock()
        if isinstance(app, str):
            rt = self.open_app(app)
        else:
            self._refuse_while_draining("queries")
            rt = app
        if _span is _UNTRACED:
            if TRACING.enabled and (traceparent is not None or random() < TRACING.root_ratio):
                return await self._traced_predict(rt, items, uid, version, traceparent, api_key)
            _span = None
        guard = rt.guard
        admitted = guard.enter(api_key, items) if guard is not None else ()
        self.active += 1
        try:
            version = self.resolve_version(rt, version)
            policy = rt.policy
            assert policy is not None
            state = await self.learner.state(rt, uid) if policy.needs_state else None
            plans = await self._run(rt, items, uid, version, started, state, trace=_span)
            results = [combine(rt, state, query, plan, self.learner.recent) for query, plan in plans]
            rt.latency.observe(self.clock() - started)
            rt.predictions += len(results)
            return results
        finally:
            for quota in admitted:
                quota.active -= 1
            self.active -= 1
            if not self.active and self._drained is not None:
                self._drained.set()

    async def _traced_predict(self, rt: AppRuntime, items: list[Any], uid: int, version: str | None,
                              traceparent: str | None, api_key: str | ApiKey | None) -> list[Prediction]:
        """:meth:`predict` in a request span (the caller's trace continued), current for the logs while it runs
        and recorded when it ends, as the inner spans are (``tracing.record``: not the SDK's ``Span``)."""
        from opentelemetry import context as otel_context
        from opentelemetry import trace

        made = request_context(traceparent)
        if made is None:  # the caller's trace is not sampled: nothing more to do for it
            return await self.predict(rt, items, uid=uid, version=version, api_key=api_key, _span=None)
        context, parent = made
        span = trace.NonRecordingSpan(context)  # (what the inner spans and the logs need of it: its context)
        token = otel_context.attach(trace.set_span_in_context(span))
        attributes: dict[str, Any] = {"clipper.app": rt.app.name, "clipper.inputs": len(items)}
        error: BaseException | None = None
        started = time.time_ns()
        try:
            results = await self.predict(rt, items, uid=uid, version=version, api_key=api_key, _span=span)
            attributes["clipper.defaults"] = sum(p.default for p in results)
            return results
        except Exception as exc:
            error = exc
            raise
        finally:
            otel_context.detach(token)
            record(f"predict {rt.app.name}", context, parent, started, time.time_ns(), attributes,
                   kind=trace.SpanKind.SERVER, error=error)

    async def _run(self, rt: AppRuntime, items: list[Any], uid: int, version: str | None, started: float,
                   state: Any, every_model: bool = False, trace: Any = None) -> list[tuple[Query, Plan]]:
        """Send each item to the models the policy selects (or every linked model) and wait for their outputs
        until the SLO deadline; return, per item, its query and plan. ``trace``: the request's recording span
        (tracing on and sampled), whose context its tasks carry to the batches."""
        deadline = started + rt.slo
        guard = rt.guard
        rank_offset = guard.rank_offset if guard is not None else 0.0
        cache = self.cache if rt.app.cache_enabled else None
        if trace is None:
            routes = self._routes(rt, items, uid, version, state, cache is not None, every_model)
        else:
            routes = self._traced_routes(trace, rt, items, uid, version, state, cache is not None, every_model)
        # a remote cache is asked before anything is enqueued (what follows must not yield to the loop)
        remote_hits = await self._remote_lookups(routes) if cache is not None and cache.is_async else None
        loop = asyncio.get_running_loop()
        group = next(self._group_ids) if len(items) > 1 else 0
        now = self.clock()
        plans: list[tuple[Query, Plan]] = []
        enqueued: dict[ModelRuntime, list[Task]] = {}
        waiting: list[asyncio.Future[Any]] = []
        leading: list[tuple[CacheKey, Task]] = []
        """The single-flight entries this query made: they end when it stops waiting."""
        cold: list[tuple[Plan, str, asyncio.Future[Any]]] | None = None
        """(plan, model name, future) of tasks queued for a version scaled to zero (None: none, the usual case)."""
        tracked: list[Tracked] | None = None
        """The (query, plan, model name, runtime, arrival) of versions under an active rollout (None: none)."""
        unbatched: list[tuple[ShadowMirror, Any, Any]] | None = None
        """Mirrored inputs the current version computes no task for (cache hits; no replica): offered to the
        shadow once the real work is admitted. The tasks it computes carry ``mirror`` (``serving.shadow``)."""
        for query, key, chosen, mirrors in routes:
            plan: Plan = {}
            for name, mr in chosen:
                shadow = mr.shadow if mirrors is not None and name in mirrors else None
                if mr.rollout_tracking:
                    if tracked is None:
                        tracked = []
                    tracked.append((query, plan, name, mr, [None]))
                if key is not None:
                    ckey = (name, mr.version, key)
                    looked_up = time.time_ns() if trace is not None else 0
                    if remote_hits is not None:
                        hit, value = (ckey in remote_hits), remote_hits.get(ckey)
                    else:
                        assert cache is not None
                        hit, value = cache.get(ckey)
                    if trace is not None:
                        _cache_span(trace, name, mr.version, hit, looked_up)
                    if hit:
                        mr.cache_hits += 1
                        plan[name] = value
                        if shadow is not None:
                            unbatched = [*(unbatched or ()), (shadow, query.input, value)]
                        continue
                    mr.cache_misses += 1
                    shared = self._single_flight.get(ckey)
                    if shared is not None and not shared.done:  # an identical query is on its way: join it,
                        if shared.expires < deadline:  # for as long as this query may wait
                            shared.expires = deadline
                        joined = loop.create_future()
                        if shared.joined is None:
                            shared.joined = [joined]
                        else:
                            shared.joined.append(joined)
                        waiting.append(joined)
                        plan[name] = joined
                        if not mr.replicas and _scales_from_zero(mr):  # it waits for a version scaled to zero too
                            if cold is None:
                                cold = []
                            cold.append((plan, name, joined))
                        continue
                if not mr.replicas:
                    if not _scales_from_zero(mr):
                        if shadow is not None:
                            unbatched = [*(unbatched or ()), (shadow, query.input, NO_OUTPUT)]
                        continue
                    if cold is None:  # queued for the replica the autoscaler starts (it sees the queue)
                        cold = []
                        mr.queue.prune()  # what earlier queries left: nobody takes work from it now
                    fut = loop.create_future()
                    cold.append((plan, name, fut))
                else:
                    fut = loop.create_future()
                task = Task(query.input, key, deadline, fut, group, now)
                if rank_offset:
                    task.rank = deadline + rank_offset
                if trace is not None:
                    task.trace = trace.get_span_context()
                if shadow is not None:
                    task.mirror = True
                if key is not None:
                    self._single_flight[ckey] = task
                    leading.append((ckey, task))
                enqueued.setdefault(mr, []).append(task)
                waiting.append(fut)
                plan[name] = fut
            plans.append((query, plan))
        try:
            if enqueued:
                try:
                    if guard is None:
                        admit(rt.slo * self.admission_slo_fraction, rt.slo, enqueued)
                    else:  # a priority class: high may use the whole SLO, low half of the limits
                        fraction = 1.0 if guard.priority == "high" else self.admission_slo_fraction
                        admit(rt.slo * fraction * guard.admission_share, rt.slo, enqueued, guard.admission_share)
                except Overloaded:
                    for fut in waiting:  # what this query joined too: nobody waits for it on its behalf
                        fut.cancel()
                    if tracked is not None:  # refused: no output from the versions under a rollout
                        for entry in tracked:
                            if entry[3].rollout is not None:
                                entry[3].rollout.missed()
                    raise
                for mr, tasks in enqueued.items():
                    mr.enqueued += len(tasks)
                    mr.queue.put_many(tasks)
                if cold is not None and self.cold_demand is not None:
                    self.cold_demand()  # tell the autoscaler now, not at the next load report
            if unbatched is not None:  # once the real work is admitted (an Overloaded query mirrors nothing)
                for mirror, item, output in unbatched:
                    mirror.offer_one(item, output)
            if tracked is not None and len(waiting) > 1:  # when each version's output arrives (its own latency,
                for entry in tracked:  # not the query's; with one output the query ends as it arrives)
                    value = entry[1].get(entry[2])
                    if isinstance(value, asyncio.Future) and not value.done():
                        value.add_done_callback(partial(self._arrived, entry[4]))
            if len(waiting) == 1:
                await wait_one(loop, waiting[0], deadline - self.clock())
            elif waiting:
                await wait_all(loop, waiting, deadline - self.clock())
        except asyncio.CancelledError:  # the client left: its tasks still queued are skipped, never sent
            for fut in waiting:
                fut.cancel()
            raise
        finally:
            if cold is not None:
                for plan, name, fut in cold:
                    if fut.done() and (fut.cancelled() or not isinstance(fut.exception(), DeadlineExpired)):
                        continue  # answered (or failed) by a replica that came up in time
                    failed = loop.create_future()  # no replica in time: combine explains why
                    failed.set_exception(ScalingFromZero(f"scaling model '{name}' from zero"))
                    failed.exception()
                    plan[name] = failed
            if leading:
                single_flight = self._single_flight
                for ckey, task in leading:
                    if single_flight.get(ckey) is task:
                        del single_flight[ckey]
        if tracked is not None:
            self._count_rollout(tracked, started)
        return plans

    def _routes(self, rt: AppRuntime, items: list[Any], uid: int, version: str | None, state: Any, cached: bool,
                every_model: bool) -> list[Route]:
        """Per item: the policy's choice of models (or every linked model), resolved to their runtimes: the
        current version, or a rollout's candidate for the share of users it takes (a query naming its version is
        never re-routed); the models whose shadow rollout takes it, to be mirrored."""
        policy = rt.policy
        assert policy is not None
        current, models = self.snapshot.current, self.snapshot.models
        splits = self.snapshot.splits if version is None and not every_model else None
        routes: list[Route] = []
        for item in items:
            query = Query(rt.app.name, uid, item, next(self._query_ids))
            chosen = []
            mirrors: list[str] | None = None
            for name in (rt.linked if every_model else policy.select(state, query, rt.linked)):
                ver = version or current.get(name)
                if splits:
                    split = splits.get(name)
                    if split is not None and split.takes(uid, query.query_id):
                        if not split.mirror:
                            ver = split.candidate
                        else:
                            mirrors = [*(mirrors or ()), name]
                mr = models.get((name, ver)) if ver is not None else None
                if mr is not None:
                    chosen.append((name, mr))
            routes.append((query, item_key(item) if cached else None, chosen, mirrors))
        return routes

    def _traced_routes(self, span: Any, rt: AppRuntime, items: list[Any], uid: int, version: str | None,
                       state: Any, cached: bool, every_model: bool) -> list[Route]:
        """:meth:`_routes` in a span of the request (the policy's selection and the versions chosen)."""
        started = time.time_ns()
        routes = self._routes(rt, items, uid, version, state, cached, every_model)
        request = span.get_span_context()
        record("policy.select", child_context(request), request, started, time.time_ns(),
               {"clipper.policy": rt.app.policy,
                "clipper.models": sorted({f"{n}:{mr.version}" for r in routes for n, mr in r[2]})})
        return routes

    # -- rollouts ------------------------------------------------------------------------------------------
    def _arrived(self, cell: list[float | None], _: asyncio.Future[Any]) -> None:
        cell[0] = self.clock()

    def _count_rollout(self, tracked: list[Tracked], started: float) -> None:
        """Count what each version under a rollout did for its queries (the latency to its own output), and,
        where the rollout guards the feedback reward, remember its outputs for the feedback on them."""
        answers: dict[int, tuple[Query, dict[str, Any]]] = {}
        now = self.clock()
        splits = self.snapshot.splits
        for query, plan, name, mr, arrival in tracked:
            counters = mr.rollout
            if counters is None:
                continue
            value = plan.get(name, _MISSING)
            if isinstance(value, asyncio.Future):
                if not _has_output(counters, value):
                    continue
                value = value.result()
            elif value is _MISSING:
                counters.missed()
                continue
            counters.answered((arrival[0] or now) - started)
            split = splits.get(name)
            if split is not None and split.rewarded:
                answers.setdefault(query.query_id, (query, {}))[1][name] = (mr, value)
        for query, outputs in answers.values():
            self.rollout_answers.remember(query, outputs)

    def _reward_rollout(self, rt: AppRuntime, item: Any, label: float, uid: int, query_id: int | None) -> None:
        """Feedback on an answer of a version under a rollout: its reward (the rollout's kind) counts for it."""
        found = self.rollout_answers.find(rt.app.name, uid, item_key(item), query_id)
        if found is None:
            return
        splits = self.snapshot.splits
        for name, (mr, output) in found[1].items():
            split = splits.get(name)
            if split is not None and mr.rollout is not None and mr.rollout_tracking:
                mr.rollout.rewarded(reward(split.reward, output, label))

    async def _remote_lookups(self, routes: list[Route]) -> dict[CacheKey, Any]:
        assert self.cache is not None
        keys = {(name, mr.version, key) for _, key, chosen, _ in routes if key is not None for name, mr in chosen}
        hits: dict[CacheKey, Any] = {}
        for ckey in keys:
            try:
                found, value = await self.cache.aget(ckey)
            except Exception as exc:  # a cache outage must not fail queries: treat it as a miss
                log.warning("prediction cache lookup failed: %s", exc)
                continue
            if found:
                hits[ckey] = value
        return hits

    async def _ask_every_model(self, rt: AppRuntime, item: Any, uid: int) -> tuple[Query, Plan]:
        """For feedback that no remembered prediction matches: ask every linked model (full information)."""
        plans = await self._run(rt, [item], uid, None, self.clock(), None, every_model=True)
        return plans[0]

    # -- feedback ------------------------------------------------------------------------------------------
    async def feedback(self, app: AppRuntime | str, item: Any, label: float, *, uid: int = 0,
                       query_id: int | None = None) -> FeedbackReceipt:
        """Store the feedback durably, then let the app's policy learn from it (a learning failure is logged:
        the feedback is stored, and answering an error would make the client send it again)."""
        rt = self.feedback_app(app) if isinstance(app, str) else app
        seq = await self.store.append_feedback(Feedback(rt.app.name, uid, input_to_json(item), label, query_id,
                                                        received_at=time.time()))
        if self.snapshot.splits:
            self._reward_rollout(rt, item, label, uid, query_id)
        policy = rt.policy
        if policy is not None and policy.needs_state:
            try:
                await self.learner.observe(rt, uid, item, label, query_id)
            except Exception as exc:
                log.warning("feedback %d for application '%s' is stored, but its policy could not learn from it: "
                            "%s: %s", seq, rt.app.name, type(exc).__name__, exc)
        return FeedbackReceipt(query_id=next(self._query_ids), seq=seq)

    # -- read-through for monitoring and tests ---------------------------------------------------------
    @property
    def models(self) -> dict[ModelKey, ModelRuntime]:
        return self.snapshot.models


_MISSING = object()


def _cache_span(request: Any, name: str, version: str, hit: bool, started_ns: int) -> None:
    """A traced request's cache lookup for one model version (a remote cache's was made before, in one go)."""
    parent = request.get_span_context()
    record("cache.lookup", child_context(parent), parent, started_ns, time.time_ns(),
           {"clipper.model": f"{name}:{version}", "clipper.cache.hit": hit})


def _has_output(counters: VersionCounters, fut: asyncio.Future[Any]) -> bool:
    """Whether a version's future holds its output; if not, counted: failed (the model raised) or missed (not
    done, cancelled, expired, its replica gone)."""
    if not fut.done() or fut.cancelled():
        counters.missed()
        return False
    error = fut.exception()
    if error is None:
        return True
    if isinstance(error, (ModelFailed, ItemFailed)):
        counters.failed()
    else:
        counters.missed()
    return False


def _scales_from_zero(mr: ModelRuntime) -> bool:
    """Whether queries for ``mr``, which has no replica, wait for one (its autoscaling may scale it to zero)."""
    settings = mr.model.autoscaling if mr.model is not None else None
    return settings is not None and settings.get("min_replicas") == 0
