"""What is served right now: an in-memory snapshot of apps, links, model versions and their runtimes.

The snapshot is rebuilt from the state store when it announces a change (coalesced, swapped atomically, so
``set_model_version`` flips every later query at once). Replicas join and leave the model runtimes through the
RPC server's callbacks. Nothing here runs per request except the dictionary lookups.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from clipper_core.config import Config
from clipper_core.errors import NotFound, UnknownQueryApp
from clipper_core.inputs import InputType
from clipper_core.interfaces import PredictionCache, SelectionPolicy
from clipper_core.plugins import PluginRegistry
from clipper_core.rollouts.record import read_rollouts
from clipper_core.serving.app_runtime import AppRuntime, as_json_value
from clipper_core.serving.model_runtime import ModelRuntime, Replica
from clipper_core.serving.rollout import Split, VersionCounters
from clipper_core.serving.shadow import ShadowMirror
from clipper_core.serving.tenancy import Guard, KeyTable, QuotaRegistry
from clipper_core.state import Application, ChangeEvent, Model, ModelKey, StateStore

__all__ = ["Snapshot"]

log = logging.getLogger(__name__)


class Snapshot:
    """Apps, current versions, registered versions and one :class:`ModelRuntime` per served model version.

    :param clock: monotonic seconds, injectable so tests can drive deadlines (default ``time.monotonic``)
    """

    def __init__(self, store: StateStore, registry: PluginRegistry, cache: PredictionCache | None,
                 config: Config, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.registry = registry
        self.cache = cache
        self.config = config
        self.clock = clock
        self.apps: dict[str, AppRuntime] = {}
        self.current: dict[str, str] = {}
        """Model name -> its current version."""
        self.versions: dict[str, dict[str, Model]] = {}
        """Model name -> version -> registered record."""
        self.models: dict[ModelKey, ModelRuntime] = {}
        self.splits: dict[str, Split] = {}
        """Model name -> its active rollout (empty without one: the query path checks it once per request)."""
        self.keys = KeyTable(())
        """Every API key (issue #18), rebuilt on each load: a revoked key is gone with the next reload."""
        self.quotas = QuotaRegistry(clock)
        self._dirty = False
        self._reload_task: asyncio.Task[None] | None = None

    # -- lookups (request path) ------------------------------------------------------------------------
    def app(self, name: str) -> AppRuntime:
        rt = self.apps.get(name)
        if rt is None:
            raise UnknownQueryApp(name)
        return rt

    def versions_of(self, rt: AppRuntime) -> list[str]:
        """Every registered version of the models linked to the app, sorted."""
        return sorted({v for name in rt.linked for v in self.versions.get(name, {})})

    def serving(self, rt: AppRuntime, version: str | None = None) -> bool:
        """Whether a linked model has a connected replica of ``version`` (default: its current version)."""
        for name in rt.linked:
            mr = self.models.get((name, version or self.current.get(name, "")))
            if mr is not None and mr.num_replicas > 0:
                return True
        return False

    # -- loading -----------------------------------------------------------------------------------------
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
        keys = KeyTable(await store.list_api_keys(), self.keys.refusals)
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
        for rt in new_apps.values():
            rt.guard = Guard.of(rt.app, keys, self.quotas)
        self.quotas.retain_used()
        self.keys = keys
        splits = self._splits(await store.list_rollouts(), versions)
        self.apps, self.current, self.versions = new_apps, current, versions
        await self._update_models(models, new_apps)
        self._track(splits)
        self.splits = splits

    @staticmethod
    def _splits(records: list[dict[str, Any]], versions: dict[str, dict[str, Model]]) -> dict[str, Split]:
        """The active rollouts whose versions are registered, as the query path applies them."""
        splits: dict[str, Split] = {}
        for rollout in read_rollouts(records):
            registered = versions.get(rollout.model, {})
            if rollout.active and rollout.candidate in registered and rollout.baseline in registered:
                splits[rollout.model] = Split.of(rollout)
        return splits

    def _track(self, splits: dict[str, Split]) -> None:
        """Count the queries of the versions under an active rollout (each step afresh), and give a shadow
        rollout's current version the mirror to its candidate."""
        tracked = {(s.model, version): s for s in splits.values() for version in (s.candidate, s.baseline)}
        for key, mr in self.models.items():
            split = tracked.get(key)
            mr.rollout_tracking = split is not None
            if split is not None:
                if mr.rollout is None:
                    mr.rollout = VersionCounters(split.salt, split.step_id, split.slow_s)
                else:
                    mr.rollout.new_step(split.salt, split.step_id, split.slow_s)
            candidate = self.models.get((split.model, split.candidate)) if split is not None else None
            if split is None or not split.mirror or key[1] != split.baseline or candidate is None:
                mr.set_shadow(None)
            elif mr.shadow is not None and mr.shadow.candidate is candidate:
                mr.shadow.tolerance = split.tolerance
            else:
                mr.set_shadow(ShadowMirror(candidate, split.tolerance, clock=self.clock))

    async def _update_models(self, models: list[Model], apps: dict[str, AppRuntime]) -> None:
        """Give every registered version a runtime whose batch budget follows the tightest linked SLO; close the
        runtimes of deleted versions once no replica serves them."""
        budgets: dict[str, float] = {}
        for rt in apps.values():
            for name in rt.linked:
                budgets[name] = min(budgets.get(name, rt.slo), rt.slo)
        fraction = self.config.slo_budget_fraction
        for model in models:
            mr = self.model_runtime(model.name, model.version, model.input_type)
            mr.update_model(model)
            mr.set_slo_budget(fraction * budgets.get(model.name, 0.2))
        for key, mr in list(self.models.items()):
            if key[1] not in self.versions.get(key[0], {}):
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

    def model_runtime(self, name: str, version: str, input_type: InputType) -> ModelRuntime:
        mr = self.models.get((name, version))
        if mr is None:
            mr = self.models[(name, version)] = ModelRuntime(
                name, version, input_type, self.cache, batches_in_flight=self.config.batches_in_flight,
                max_queue_length=self.config.max_queue_length, clock=self.clock)
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

    async def close(self) -> None:
        if self._reload_task is not None:
            self._reload_task.cancel()
        for mr in list(self.models.values()):
            await mr.close()

    # -- replicas ------------------------------------------------------------------------------------------
    async def on_replica_ready(self, replica: Replica) -> None:
        model = self.versions.get(replica.model_name, {}).get(replica.model_version)
        input_type = model.input_type if model is not None else replica.input_type
        if model is not None and model.input_type is not replica.input_type:
            log.warning("replica %s of %s:%s says input type %s but the model is registered as %s",
                        replica.replica_id, replica.model_name, replica.model_version,
                        replica.input_type.value, model.input_type.value)
        self.model_runtime(replica.model_name, replica.model_version, input_type).add_replica(replica)

    async def on_replica_gone(self, replica: Replica) -> None:
        key = (replica.model_name, replica.model_version)
        mr = self.models.get(key)
        if mr is None:
            return
        mr.remove_replica(replica)
        if not mr.replicas and mr.model is None:  # a deleted version's last replica: nothing serves it any more
            del self.models[key]
            await mr.close()
