"""The query path: an in-memory snapshot of apps, links and versions, and predict/update over it.

The snapshot is rebuilt from the state store when it announces a change (debounced, swapped atomically, so
``set_model_version`` flips every later query at once). A query: validate → policy.select → per model, cache
lookup or a task in that version's queue → wait until every result is in or the SLO deadline, whichever is
first → policy.combine → Clipper's response JSON. Nothing here calls pluggy, threads or pydantic.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from typing import Any

from clipper_core.errors import InvalidInput, ModelUnavailable, NotFound, QueryError
from clipper_core.inputs import INT64_MAX, INT64_MIN, InputType, decode_input
from clipper_core.interfaces import CacheKey, PredictionCache, Query, SelectionPolicy
from clipper_core.plugins import PluginRegistry
from clipper_core.rpc import ReplicaConnection
from clipper_core.serving.admission import admit
from clipper_core.serving.app_runtime import AppRuntime, as_json_value
from clipper_core.serving.model_runtime import ItemFailed, ModelFailed, ModelRuntime
from clipper_core.serving.queue import DeadlineExpired, Task
from clipper_core.serving.recent import RecentPredictions, item_key
from clipper_core.serving.waiting import wait_all
from clipper_core.state import Application, ChangeEvent, Feedback, Model, StateStore

__all__ = ["NO_MODELS", "SLO_MISSED", "AppRuntime", "Router", "as_json_value"]

log = logging.getLogger(__name__)

NO_MODELS = "No connected models found for query"
SLO_MISSED = "Failed to retrieve a prediction response within the specified latency SLO"
_MISSING = object()


class Router:
    def __init__(self, store: StateStore, registry: PluginRegistry, cache: PredictionCache | None,
                 *, inflight: int = 2, max_queue_length: int = 10_000) -> None:
        self.store = store
        self.registry = registry
        self.cache = cache
        self.inflight = inflight
        self.max_queue_length = max_queue_length
        self.admission_slo_fraction = 0.9
        """Refuse work predicted to finish later than this fraction of the SLO (it would only time out)."""
        self.apps: dict[str, AppRuntime] = {}
        self.current: dict[str, str] = {}
        self.versions: dict[str, dict[str, Model]] = {}
        self.models: dict[tuple[str, str], ModelRuntime] = {}
        self._query_ids = itertools.count()
        self._group_ids = itertools.count(1)
        self._dirty = False
        self._reload_task: asyncio.Task[None] | None = None
        self._inflight: dict[CacheKey, asyncio.Future[Any]] = {}
        self.draining = False
        self.recent = RecentPredictions(100_000)
        self.max_states_per_app = 10_000
        self._drained: asyncio.Event | None = None
        self.active = 0
        """Predict requests being answered now (a graceful stop waits for them)."""

    # -- snapshot ------------------------------------------------------------------------------------
    async def load(self) -> None:
        """Re-read apps, links, models and current versions from the store and swap them in."""
        store = self.store
        apps, links = [], {}
        for app in await store.list_apps():
            try:
                links[app.name] = await store.get_links(app.name)
            except NotFound:
                continue  # deleted while we read; its deletion event triggers another reload
            apps.append(app)
        models = await store.list_models()
        current = await store.current_versions()
        versions: dict[str, dict[str, Model]] = {}
        for model in models:
            versions.setdefault(model.name, {})[model.version] = model
        new_apps: dict[str, AppRuntime] = {}
        for app in apps:
            old = self.apps.get(app.name)
            if old is not None and old.app == app:
                old.linked = links[app.name]
                new_apps[app.name] = old
            else:
                new_apps[app.name] = self._app_runtime(app, links[app.name])
        self.apps, self.current, self.versions = new_apps, current, versions
        budgets: dict[str, float] = {}
        for rt in new_apps.values():
            for name in rt.linked:
                budgets[name] = min(budgets.get(name, rt.slo), rt.slo)
        for model in models:
            mr = self._model_runtime(model.name, model.version, model.input_type)
            mr.update_model(model)
            mr.slo_budget = 0.5 * budgets.get(model.name, 0.2)
            for sizer in mr.sizers.values():
                sizer.budget = mr.slo_budget
        for key, mr in list(self.models.items()):
            if key[1] not in versions.get(key[0], {}):
                mr.update_model(None)
                if not mr.replicas:
                    del self.models[key]
                    await mr.close()

    def _app_runtime(self, app: Application, linked: list[str]) -> AppRuntime:
        policy: SelectionPolicy | None = None
        error = ""
        try:
            policy = self.registry.policies.get(app.policy)(app, app.policy_config)
        except Exception as exc:
            error = f"selection policy {app.policy!r} of application '{app.name}' is unavailable: {exc}"
            log.error("%s", error)
        return AppRuntime(app=app, policy=policy, linked=linked, default_output=as_json_value(app.default_output),
                          slo=app.latency_slo_micros / 1e6, policy_error=error)

    def _model_runtime(self, name: str, version: str, input_type: InputType) -> ModelRuntime:
        mr = self.models.get((name, version))
        if mr is None:
            mr = self.models[(name, version)] = ModelRuntime(name, version, input_type, self.cache,
                                                             inflight=self.inflight,
                                                             max_queue_length=self.max_queue_length)
        return mr

    def on_change(self, event: ChangeEvent) -> None:
        """Store subscriber: schedule a (coalesced) reload of the snapshot."""
        if event.kind == "replica":
            return
        self._dirty = True
        if self._reload_task is None or self._reload_task.done():
            self._reload_task = asyncio.get_running_loop().create_task(self._reload_loop())

    async def _reload_loop(self) -> None:
        while self._dirty:
            self._dirty = False
            try:
                await self.load()
            except Exception:
                log.exception("reloading the serving snapshot failed; keeping the previous one")

    async def sync(self) -> None:
        """Wait until every announced change is in the snapshot."""
        while self._reload_task is not None and not self._reload_task.done():
            await asyncio.shield(self._reload_task)

    async def drain(self, timeout: float) -> None:
        """Refuse new queries (503) and wait up to ``timeout`` seconds for the ones in flight to be answered."""
        self.draining = True
        if not self.active:
            return
        self._drained = asyncio.Event()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._drained.wait(), timeout)  # in-flight queries end by their SLO

    async def close(self) -> None:
        if self._reload_task is not None:
            self._reload_task.cancel()
        for mr in list(self.models.values()):
            await mr.close()

    # -- replicas ------------------------------------------------------------------------------------
    async def on_replica_ready(self, replica: ReplicaConnection) -> None:
        model = self.versions.get(replica.model_name, {}).get(replica.model_version)
        input_type = model.input_type if model is not None else replica.input_type
        if model is not None and model.input_type is not replica.input_type:
            log.warning("replica %s of %s:%s says input type %s but the model is registered as %s",
                        replica.replica_id, replica.model_name, replica.model_version,
                        replica.input_type.value, model.input_type.value)
        self._model_runtime(replica.model_name, replica.model_version, input_type).add_replica(replica)

    async def on_replica_gone(self, replica: ReplicaConnection) -> None:
        mr = self.models.get(replica.key)
        if mr is not None:
            mr.remove_replica(replica)

    # -- predict -------------------------------------------------------------------------------------
    def app_runtime(self, app_name: str) -> AppRuntime:
        rt = self.apps.get(app_name)
        if rt is None:
            raise NotFound(f"application '{app_name}' does not exist")
        return rt

    async def predict(self, app_name: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.draining:
            raise ModelUnavailable("clipper is shutting down and takes no new queries", headers={"Retry-After": "1"})
        self.active += 1
        try:
            return await self._predict(app_name, body)
        finally:
            self.active -= 1
            if not self.active and self._drained is not None:
                self._drained.set()

    async def _predict(self, app_name: str, body: dict[str, Any]) -> dict[str, Any]:
        started = time.monotonic()
        rt = self.app_runtime(app_name)
        if rt.policy is None:
            raise ModelUnavailable(rt.policy_error)
        input_type = rt.app.input_type
        if "input" in body:
            if "input_batch" in body:
                raise InvalidInput("request has both 'input' and 'input_batch'; send exactly one of them")
            items = [decode_input(body["input"], input_type)]
            single = True
        elif "input_batch" in body:
            batch = body["input_batch"]
            if batch.__class__ is not list:
                raise InvalidInput("'input_batch' must be a JSON array of inputs")
            if not batch:
                raise InvalidInput("'input_batch' is empty; expected at least one input")
            items = [decode_input(value, input_type, f"input_batch[{i}]") for i, value in enumerate(batch)]
            single = False
        else:
            raise InvalidInput("JSON object does not have required keys input or input_batch")
        uid = _uid(body)
        version = self._requested_version(rt, body.get("version", _MISSING))
        state = await self.policy_state(rt, uid) if rt.policy.needs_state else None
        plans = await self._run(rt, items, uid, version, started, state)
        results = [self._combine(rt, state, query, plan) for query, plan in plans]
        rt.latency.observe(time.monotonic() - started)
        rt.predictions += len(results)
        if single:
            return results[0]
        return {"batch_predictions": results}

    def _requested_version(self, rt: AppRuntime, version: Any) -> str | None:
        if version is _MISSING or version is None:
            return None
        if version.__class__ is int:
            version = str(version)
        if version.__class__ is not str or not version:
            raise InvalidInput("'version' must be a non-empty string naming a registered model version")
        if not rt.linked:
            raise QueryError(f"application '{rt.app.name}' has no linked model, so version '{version}' "
                             "cannot be served")
        if len(rt.linked) > 1:
            raise QueryError(f"Too many models linked to application {rt.app.name}")
        model = rt.linked[0]
        if version not in self.versions.get(model, {}):
            raise QueryError(f"Requested version: {version} does not exist for model: {model}")
        return version

    async def _run(self, rt: AppRuntime, items: list[Any], uid: int, version: str | None, started: float,
                   state: Any, every_model: bool = False) -> list[tuple[Query, dict[str, Any]]]:
        """Send each item to the models the policy selects (or every linked model) and wait for their outputs
        until the SLO deadline; return, per item, its query and {model: output, future or exception}."""
        loop = asyncio.get_running_loop()
        deadline = started + rt.slo
        policy = rt.policy
        assert policy is not None
        cache = self.cache if rt.app.cache_enabled else None
        # 1. choose models per item (policy.select), resolve their versions
        routes: list[tuple[Query, bytes | None, list[tuple[str, ModelRuntime]]]] = []
        for item in items:
            query = Query(rt.app.name, uid, item, next(self._query_ids))
            chosen = []
            for name in (rt.linked if every_model else policy.select(state, query, rt.linked)):
                ver = version or self.current.get(name)
                mr = self.models.get((name, ver)) if ver is not None else None
                if mr is not None:
                    chosen.append((name, mr))
            routes.append((query, item_key(item) if cache is not None else None, chosen))
        # 2. a remote cache is asked before anything is enqueued (the rest must not yield to the loop)
        remote_hits = await self._remote_lookups(routes) if cache is not None and cache.is_async else None
        # 3. cache hits, single flight, tasks
        group = next(self._group_ids) if len(items) > 1 else 0
        plans: list[tuple[Query, dict[str, Any]]] = []
        enqueued: dict[ModelRuntime, list[Task]] = {}
        waiting: list[asyncio.Future[Any]] = []
        for query, key, chosen in routes:
            plan: dict[str, Any] = {}
            for name, mr in chosen:
                if key is not None:
                    ckey = (name, mr.version, key)
                    if remote_hits is not None:
                        hit, value = (ckey in remote_hits), remote_hits.get(ckey)
                    else:
                        assert cache is not None
                        hit, value = cache.get(ckey)
                    if hit:
                        mr.cache_hits += 1
                        plan[name] = value
                        continue
                    mr.cache_misses += 1
                    shared = self._inflight.get(ckey)
                    if shared is not None:  # single flight: an identical query is already on its way
                        waiting.append(shared)
                        plan[name] = shared
                        continue
                if not mr.replicas:
                    continue
                fut = loop.create_future()
                if key is not None:
                    self._track_inflight((name, mr.version, key), fut)
                enqueued.setdefault(mr, []).append(Task(query.input, key, deadline, fut, group))
                waiting.append(fut)
                plan[name] = fut
            plans.append((query, plan))
        if enqueued:
            admit(rt.slo * self.admission_slo_fraction, rt.slo, enqueued)
        for mr, tasks in enqueued.items():
            mr.queue.put_many(tasks)
        if waiting:
            await wait_all(loop, waiting, deadline - time.monotonic())
        return plans

    async def _remote_lookups(self, routes: list[tuple[Query, bytes | None, list[tuple[str, ModelRuntime]]]]
                              ) -> dict[CacheKey, Any]:
        assert self.cache is not None
        keys = {(name, mr.version, key) for _, key, chosen in routes if key is not None for name, mr in chosen}
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

    def _track_inflight(self, key: CacheKey, fut: asyncio.Future[Any]) -> None:
        inflight = self._inflight
        inflight[key] = fut
        fut.add_done_callback(lambda _: inflight.pop(key, None))

    @staticmethod
    def _outputs(plan: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The outputs that arrived in time, and what went wrong with the others."""
        predictions: dict[str, Any] = {}
        failures: list[str] = []
        for name, value in plan.items():
            if isinstance(value, asyncio.Future):
                if not value.done():
                    continue
                exc = value.exception()
                if exc is None:
                    predictions[name] = value.result()
                elif isinstance(exc, (ModelFailed, ItemFailed)):
                    failures.append(f"model '{name}' failed: {exc}")
                elif not isinstance(exc, DeadlineExpired):
                    failures.append(f"model '{name}' failed: {type(exc).__name__}: {exc}")
            else:
                predictions[name] = value
        return predictions, failures

    def _combine(self, rt: AppRuntime, state: Any, query: Query, plan: dict[str, Any]) -> dict[str, Any]:
        if not plan:
            return self._default(rt, query, NO_MODELS)
        predictions, failures = self._outputs(plan)
        if not predictions:
            return self._default(rt, query, "; ".join(failures) if failures else SLO_MISSED)
        policy = rt.policy
        assert policy is not None
        if policy.needs_state:
            self.recent.remember(query, predictions)
        output, is_default, why = policy.combine(state, query, predictions)
        if is_default:
            return self._default(rt, query, why, output)
        answer = {"query_id": query.query_id, "output": as_json_value(output), "default": False}
        if policy.max_models != 1:
            answer["models"] = sorted(predictions)  # which models contributed (stragglers left out)
        return answer

    def _default(self, rt: AppRuntime, query: Query, why: str, output: Any = _MISSING) -> dict[str, Any]:
        rt.defaults += 1
        value = rt.default_output if output is _MISSING else as_json_value(output)
        return {"query_id": query.query_id, "output": value, "default": True, "default_explanation": why}

    # -- feedback ------------------------------------------------------------------------------------
    async def update(self, app_name: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.draining:
            raise ModelUnavailable("clipper is shutting down and takes no new feedback", headers={"Retry-After": "1"})
        rt = self.app_runtime(app_name)
        if "input" not in body:
            raise InvalidInput("JSON object does not have required key: input")
        if "label" not in body:
            raise InvalidInput("JSON object does not have required key: label; expected a number")
        label = body["label"]
        if label.__class__ not in (int, float):
            raise InvalidInput("'label' must be a JSON number")
        item = decode_input(body["input"], rt.app.input_type)
        uid = _uid(body)
        query_id = body.get("query_id")
        if query_id is not None and (query_id.__class__ is not int or not INT64_MIN <= query_id <= INT64_MAX):
            raise InvalidInput(f"'query_id' must be an integer between {INT64_MIN} and {INT64_MAX}")
        stored_input = item.tolist() if hasattr(item, "tolist") else (
            item if isinstance(item, str) else item.hex())
        seq = await self.store.append_feedback(Feedback(app_name, uid, stored_input, label, query_id,
                                                        received_at=time.time()))
        policy = rt.policy
        if policy is not None and policy.needs_state:
            try:
                await self._observe(rt, uid, item, label, query_id)
            except Exception as exc:  # the feedback is stored: answering an error would make the client resend it
                log.warning("feedback %d for application '%s' is stored, but its policy could not learn from it: "
                            "%s: %s", seq, app_name, type(exc).__name__, exc)
        return {"query_id": next(self._query_ids), "feedback_received": True, "seq": seq}

    async def _observe(self, rt: AppRuntime, uid: int, item: Any, label: Any, query_id: int | None) -> None:
        """Teach the policy: join the feedback with the predictions made for that query (by query id, else by
        input), re-query every linked model only when none are remembered, then persist the new state."""
        policy = rt.policy
        assert policy is not None
        key = item_key(item)
        found = self.recent.find(rt.app.name, uid, key, query_id)
        if found is None:
            started = time.monotonic()
            plans = await self._run(rt, [item], uid, None, started, None, every_model=True)
            query, plan = plans[0]
            predictions, _ = self._outputs(plan)
        else:
            query, predictions = found
        async with rt.state_lock:
            state = await self.policy_state(rt, uid, fresh=self.store.shared)
            state = policy.observe(state, query, label, predictions)
            rt.states[uid] = state
            await self.store.put_policy_state(rt.app.name, uid, policy.dumps_state(state))

    async def policy_state(self, rt: AppRuntime, uid: int, fresh: bool = False) -> Any:
        """Per-(app, user) policy state: a bounded in-memory cache over the state store."""
        policy = rt.policy
        assert policy is not None
        states = rt.states
        if not fresh and uid in states:
            states.move_to_end(uid)
            return states[uid]
        raw = await self.store.get_policy_state(rt.app.name, uid)
        state = policy.loads_state(raw) if raw is not None else policy.initial_state(list(rt.linked))
        states[uid] = state
        if len(states) > self.max_states_per_app:
            states.popitem(last=False)
        return state


def _uid(body: dict[str, Any]) -> int:
    uid = body.get("uid", 0)
    if uid.__class__ is not int or not INT64_MIN <= uid <= INT64_MAX:
        raise InvalidInput(f"'uid' must be an integer user id between {INT64_MIN} and {INT64_MAX}")
    return uid

