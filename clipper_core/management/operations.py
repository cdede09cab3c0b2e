"""Clipper's management operations (clipper-reference §2) over the state store, the plugin registry and the
replica supervisor: every rule an admin request must pass lives here, raised as :mod:`clipper_core.errors`
classes (the one error middleware renders them). Reading request bodies and writing answers is
:mod:`clipper_core.management.handlers`' business; nothing here knows about HTTP.
"""

from __future__ import annotations

import os
import time
from typing import Any, NamedTuple

from clipper_core.config import Config
from clipper_core.context import ReplicaSupervisor, ServerContext
from clipper_core.errors import (
    AppNotFound,
    Conflict,
    InvalidInput,
    ModelNotFound,
    ModelVersionNotFound,
    VersionNotFound,
)
from clipper_core.inputs import InputType
from clipper_core.names import NO_CONTAINER
from clipper_core.plugins import PluginRegistry
from clipper_core.state import Application, Model, Replica, StateStore

__all__ = ["AppInfo", "ManagementOperations", "ModelInfo", "ReplicaCounts"]


class AppInfo(NamedTuple):
    """An application with the models linked to it, in link order."""

    app: Application
    links: list[str]


class ModelInfo(NamedTuple):
    """A model version, and whether it is its model's current version."""

    model: Model
    is_current: bool


class ReplicaCounts(NamedTuple):
    """Replicas of one model version: wanted, started by the supervisor, connected to a frontend."""

    num_replicas: int
    running: int
    connected: int


class ManagementOperations:
    """What the management API can do, each operation checking Clipper's rules before it changes anything.

    :param store: where applications, models, links and replicas are kept.
    :param registry: the installed plugins (selection policies are looked up here).
    :param supervisor: the local replica supervisor, or None when a container manager starts replicas.
    :param config: the server's configuration (where logs are written).
    """

    def __init__(self, store: StateStore, registry: PluginRegistry, supervisor: ReplicaSupervisor | None,
                 config: Config) -> None:
        self.store = store
        self.registry = registry
        self.supervisor = supervisor
        self.config = config

    @classmethod
    def of(cls, ctx: ServerContext) -> ManagementOperations:
        return cls(ctx.store, ctx.registry, ctx.supervisor, ctx.config)

    # -- applications ---------------------------------------------------------------------------------

    async def add_app(self, app: Application) -> None:
        """Register ``app``; its policy must accept its ``policy_config``. Duplicates are the store's to refuse."""
        self._check_policy(app)
        await self.store.add_app(app)

    async def delete_app(self, name: str) -> None:
        await self.store.delete_app(name)

    async def set_app_policy(self, name: str, policy: str, policy_config: dict[str, object]) -> Application:
        """Change an app's selection policy (and its config); per-user policy state starts afresh."""
        app = await self.policy_change_target(name, policy)
        return await self.change_policy(app, policy, policy_config)

    async def policy_change_target(self, name: str, policy: str) -> Application:
        """The app whose policy may become ``policy``: the policy is installed and serves as many models as
        the app links (the first half of :meth:`set_app_policy`, checked before the config is read)."""
        policy_class = self.registry.policies.get(policy)
        app = await self._app(name)
        links = await self.store.get_links(name)
        if policy_class.max_models is not None and len(links) > policy_class.max_models:
            raise Conflict(f"policy '{policy}' serves at most {policy_class.max_models} linked model(s); "
                           f"application '{name}' has {len(links)}: unlink some first")
        return app

    async def change_policy(self, app: Application, policy: str, policy_config: dict[str, object]) -> Application:
        """The second half of :meth:`set_app_policy`: the policy accepts the config; the app is updated."""
        app = app.replace(policy=policy, policy_config=policy_config)
        self._check_policy(app)
        await self.store.update_app(app)
        return app

    async def app_names(self) -> list[str]:
        return [app.name for app in await self.store.list_apps()]

    async def app_infos(self) -> list[AppInfo]:
        return [AppInfo(app, await self.store.get_links(app.name)) for app in await self.store.list_apps()]

    async def app_info(self, name: str) -> AppInfo | None:
        app = await self.store.get_app(name)
        return None if app is None else AppInfo(app, await self.store.get_links(name))

    async def default_output(self, app_name: str) -> str:
        """What ``get_state`` answers: the app's default output (Clipper keeps no per-user state here)."""
        return (await self._app(app_name)).default_output

    async def _app(self, name: str) -> Application:
        app = await self.store.get_app(name)
        if app is None:
            raise AppNotFound(name)
        return app

    def _check_policy(self, app: Application) -> None:
        """Build the app's policy once, as the query frontends will: an unknown policy is a PluginError naming
        what is installed, and a ``policy_config`` the policy refuses is an InvalidInput quoting its reason."""
        policy_class = self.registry.policies.get(app.policy)
        try:
            policy_class(app, app.policy_config)
        except Exception as exc:
            raise InvalidInput(f"policy_config {app.policy_config!r} is refused by policy '{app.policy}': "
                               f"{exc}") from None

    # -- links ----------------------------------------------------------------------------------------

    async def link_models(self, app_name: str, model_names: list[str]) -> None:
        """Link models to an app: each has a current version of the app's input type and is not linked yet,
        and the app's policy serves that many models."""
        app = await self._app(app_name)
        linked = await self.store.get_links(app_name)
        for model_name in model_names:
            current = await self.store.get_current_version(model_name)
            if current is None:
                raise ModelNotFound(model_name)
            model = await self.store.get_model(model_name, current)
            assert model is not None
            if model.input_type is not app.input_type:
                raise Conflict(f"Model with name '{model_name}' has incompatible input type "
                               f"'{model.input_type.value}'; application '{app_name}' takes '{app.input_type.value}'")
            if model_name in linked:
                raise Conflict(f"model with name '{model_name}' is already linked to application '{app_name}'")
        max_models = self.registry.policies.get(app.policy).max_models
        if max_models is not None and len(linked) + len(model_names) > max_models:
            limit = "one model" if max_models == 1 else f"{max_models} models"
            raise Conflict(f"Applications must be linked with at most {limit} under policy '{app.policy}'. "
                           f"Application '{app_name}' is already linked to {linked}")
        await self.store.add_links(app_name, model_names)

    async def unlink_models(self, app_name: str, model_names: list[str]) -> None:
        await self.store.delete_links(app_name, model_names)

    async def linked_models(self, app_name: str) -> list[str]:
        return await self.store.get_links(app_name)

    async def _apps_linking(self, model_name: str) -> list[Application]:
        return [app for app in await self.store.list_apps() if model_name in await self.store.get_links(app.name)]

    # -- models ---------------------------------------------------------------------------------------

    async def add_model(self, model: Model) -> None:
        """Register a model version (it becomes current); apps the model is linked to must take its input type.
        The record is stamped with the time of registration unless it carries one."""
        await self.check_linked_input_type(model.name, model.version, model.input_type)
        await self.register_model(model)

    async def check_linked_input_type(self, name: str, version: str, input_type: InputType) -> None:
        """Apps the model is linked to must take ``input_type`` (the check of :meth:`add_model`)."""
        for app in await self._apps_linking(name):
            if app.input_type is not input_type:
                raise Conflict(f"Model with name '{name}' is linked to application '{app.name}' of input type "
                               f"'{app.input_type.value}'; version '{version}' has input type "
                               f"'{input_type.value}'")

    async def register_model(self, model: Model, *, make_current: bool = True) -> None:
        """Store a model version whose input type was checked (:meth:`check_linked_input_type`); it becomes
        the current version unless ``make_current=False`` (a rollout's candidate: the current version stays)."""
        await self.store.add_model(model if model.created_at else model.replace(created_at=time.time()),
                                   make_current=make_current)

    async def set_model_version(self, name: str, version: str) -> None:
        """Make ``version`` current; apps the model is linked to must take its input type."""
        versions = await self.store.list_models(name)
        if not versions:
            raise ModelNotFound(name)
        model = next((m for m in versions if m.version == version), None)
        if model is None:
            raise VersionNotFound(name, version, status=400)
        for app in await self._apps_linking(name):
            if app.input_type is not model.input_type:
                raise Conflict(f"version '{version}' of model '{name}' has input type '{model.input_type.value}', "
                               f"incompatible with linked application '{app.name}' ('{app.input_type.value}')")
        await self.store.set_current_version(name, version)

    async def delete_versioned_model(self, name: str, version: str) -> None:
        """Forget a model version, stopping its replicas first when this server runs them."""
        model = await self.store.get_model(name, version)
        if model is None:
            raise ModelVersionNotFound(name, version, status=400)
        if self.supervisor is not None and self.supervisor.desired(name, version):
            await self.supervisor.set_replicas(model, 0)
        await self.store.delete_model(name, version)

    async def models(self) -> list[Model]:
        return await self.store.list_models()

    async def model_infos(self) -> list[ModelInfo]:
        current = await self.store.current_versions()
        return [ModelInfo(m, m.version == current.get(m.name)) for m in await self.store.list_models()]

    async def model_info(self, name: str, version: str) -> ModelInfo | None:
        model = await self.store.get_model(name, version)
        if model is None:
            return None
        return ModelInfo(model, model.version == await self.store.get_current_version(name))

    # -- replicas -------------------------------------------------------------------------------------

    async def replicas(self) -> list[Replica]:
        return await self.store.list_replicas()

    async def replica(self, name: str, version: str, replica_id: int) -> Replica | None:
        return next((r for r in await self.store.list_replicas(name, version) if r.replica_id == replica_id), None)

    async def set_num_replicas(self, name: str, version: str, num_replicas: int) -> Model:
        """Start or stop replicas of a closure model until ``num_replicas`` run; the count is kept in the store
        so a restarted server brings them back. Returns the updated record."""
        model, _ = await self._managed(name, version)
        return await self.resize(model, num_replicas)

    async def managed_model(self, name: str, version: str) -> Model:
        """A registered model version whose replicas this server runs (the first half of
        :meth:`set_num_replicas`, checked before the count is read)."""
        model, _ = await self._managed(name, version)
        return model

    async def resize(self, model: Model, num_replicas: int) -> Model:
        """The second half of :meth:`set_num_replicas`."""
        name, version = model.name, model.version
        supervisor = self._supervisor()
        if model.container_name == NO_CONTAINER and num_replicas > 0:
            raise Conflict(f"Cannot resize the containerless model {name}:{version}")
        if model.container_name != NO_CONTAINER and not os.path.isdir(model.container_name):
            raise Conflict(f"model directory {model.container_name} of {name}:{version} does not exist")
        updated = model.replace(num_replicas=num_replicas)
        await self.store.update_model(updated)
        await supervisor.set_replicas(model, num_replicas)
        return updated

    async def registered_model(self, name: str, version: str) -> Model:
        model = await self.store.get_model(name, version)
        if model is None:
            raise ModelVersionNotFound(name, version)
        return model

    async def set_autoscaling(self, name: str, version: str, settings: dict[str, Any] | None) -> Model:
        """Turn autoscaling of a model version on (``settings``: validated by ``AutoscalingConfig``) or off
        (None). Only a version with something to start (a model directory or an image) can be scaled."""
        model = await self.registered_model(name, version)
        if settings is not None and model.container_name == NO_CONTAINER:
            raise Conflict(f"Cannot autoscale the containerless model {name}:{version}: nothing to start")
        updated = model.replace(autoscaling=settings)
        await self.store.update_model(updated)
        return updated

    async def replica_counts(self, name: str, version: str) -> ReplicaCounts:
        _, supervisor = await self._managed(name, version)
        connected = len(await self.store.list_replicas(name, version))
        return ReplicaCounts(supervisor.desired(name, version), supervisor.running(name, version), connected)

    async def _managed(self, name: str, version: str) -> tuple[Model, ReplicaSupervisor]:
        """A registered model version, and the supervisor that runs its replicas on this server."""
        model = await self.store.get_model(name, version)
        if model is None:
            raise ModelVersionNotFound(name, version)
        return model, self._supervisor()

    def _supervisor(self) -> ReplicaSupervisor:
        if self.supervisor is None:
            raise Conflict("this clipper server does not run replicas itself; its container manager "
                           "(e.g. Docker or Kubernetes) starts them")
        return self.supervisor

    # -- server ---------------------------------------------------------------------------------------

    def log_files(self) -> list[str]:
        """The replicas' log files and the server's own log, sorted."""
        files = [str(p) for p in self.supervisor.log_files()] if self.supervisor is not None else []
        server_log = self.config.logs_dir / "clipper.log"
        if server_log.exists() and str(server_log) not in files:
            files.append(str(server_log))
        return sorted(files)
