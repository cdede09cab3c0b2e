"""An in-process state store: plain dicts, nothing survives the process. For tests and single-node demos."""

from __future__ import annotations

import copy
import dataclasses
import time
from typing import Any, TypeVar

from clipper_core.config import Config
from clipper_core.errors import AlreadyExists, AppNotFound, ModelVersionNotFound, NotFound, VersionNotFound
from clipper_core.state import codec
from clipper_core.state.base import StateStore
from clipper_core.state.records import (
    ApiKey,
    Application,
    ChangeEvent,
    Feedback,
    LoadFigures,
    Model,
    ModelKey,
    Replica,
)

__all__ = ["MemoryStateStore"]

_R = TypeVar("_R")
_ReplicaKey = tuple[str, str, int]


def _copy(record: _R) -> _R:
    """Records are frozen, but their dicts (policy_config, info, feedback payloads) are not: copy them."""
    return copy.deepcopy(record)


class MemoryStateStore(StateStore):
    """Keeps everything in dicts. Every method runs without awaiting, so each call is atomic on the loop."""

    name = "memory"
    url_schemes = ("memory",)

    @classmethod
    def from_url(cls, url: str, config: Config) -> MemoryStateStore:
        return cls()

    def __init__(self) -> None:
        super().__init__()
        self._apps: dict[str, Application] = {}
        self._models: dict[ModelKey, Model] = {}  # insertion order is creation order
        self._current: dict[str, str] = {}
        self._links: dict[str, list[str]] = {}
        self._replicas: dict[_ReplicaKey, Replica] = {}
        self._replica_counters: dict[ModelKey, int] = {}
        self._policy_state: dict[tuple[str, int], bytes] = {}
        self._feedback: dict[str, list[Feedback]] = {}
        self._load: dict[str, tuple[float, LoadFigures]] = {}
        """frontend -> (expiry in ``time.time()`` seconds, its last load report)."""
        self._rollouts: dict[str, str] = {}
        """model name -> its rollout record as JSON text (as the durable stores keep it: each read decodes a copy)."""
        self._api_keys: dict[str, ApiKey] = {}

    # -- lifecycle ------------------------------------------------------------------------------------
    async def open(self) -> None:
        """Nothing to connect to; the data lives as long as this object."""

    async def close(self) -> None:
        """Keeps the data: opening the same object again sees it."""

    # -- applications ---------------------------------------------------------------------------------
    def _require_app(self, name: str) -> None:
        if name not in self._apps:
            raise AppNotFound(name)

    async def add_app(self, app: Application) -> None:
        if app.name in self._apps:
            raise AlreadyExists(f"application '{app.name}' already exists")
        self._apps[app.name] = _copy(app)
        self._links[app.name] = []
        self._notify(ChangeEvent("app", app.name))

    async def update_app(self, app: Application) -> None:
        self._require_app(app.name)
        if not self._apps[app.name].same_policy(app):
            self._drop_policy_state(app.name)
        self._apps[app.name] = _copy(app)
        self._notify(ChangeEvent("app", app.name))

    async def delete_app(self, name: str) -> None:
        self._require_app(name)
        del self._apps[name]
        self._links.pop(name, None)
        self._drop_policy_state(name)
        keys = [k for k, key in self._api_keys.items() if key.app_name == name]
        for key_id in keys:
            del self._api_keys[key_id]
        self._notify(ChangeEvent("app", name))
        if keys:
            self._notify(ChangeEvent("api_key", name))

    def _drop_policy_state(self, app_name: str) -> None:
        for key in [k for k in self._policy_state if k[0] == app_name]:
            del self._policy_state[key]

    async def get_app(self, name: str) -> Application | None:
        app = self._apps.get(name)
        return None if app is None else _copy(app)

    async def list_apps(self) -> list[Application]:
        return [_copy(self._apps[n]) for n in sorted(self._apps)]

    # -- models ---------------------------------------------------------------------------------------
    async def add_model(self, model: Model, *, make_current: bool = True) -> None:
        if model.key in self._models:
            raise AlreadyExists(
                f"model with name '{model.name}' and version '{model.version}' already exists")
        self._models[model.key] = _copy(model)
        self._notify(ChangeEvent("model", model.name, model.version))
        if make_current:
            self._current[model.name] = model.version
            self._notify(ChangeEvent("current_version", model.name))

    def _require_model(self, name: str, version: str) -> None:
        if (name, version) not in self._models:
            raise ModelVersionNotFound(name, version)

    async def update_model(self, model: Model) -> None:
        self._require_model(model.name, model.version)
        self._models[model.key] = _copy(model)
        self._notify(ChangeEvent("model", model.name, model.version))

    async def delete_model(self, name: str, version: str) -> None:
        self._require_model(name, version)
        del self._models[(name, version)]
        was_current = self._current.get(name) == version
        if was_current:
            del self._current[name]
        replicas = [k for k in self._replicas if k[:2] == (name, version)]
        for key in replicas:
            del self._replicas[key]
        self._notify(ChangeEvent("model", name, version))
        if was_current:
            self._notify(ChangeEvent("current_version", name))
        if replicas:
            self._notify(ChangeEvent("replica", name, version))

    async def get_model(self, name: str, version: str) -> Model | None:
        model = self._models.get((name, version))
        return None if model is None else _copy(model)

    async def list_models(self, name: str | None = None) -> list[Model]:
        # sorted() is stable, so versions of one model keep their creation (insertion) order.
        models = [m for m in self._models.values() if name is None or m.name == name]
        return [_copy(m) for m in sorted(models, key=lambda m: m.name)]

    async def set_current_version(self, name: str, version: str) -> None:
        if (name, version) not in self._models:
            raise VersionNotFound(name, version)
        self._current[name] = version
        self._notify(ChangeEvent("current_version", name))

    async def get_current_version(self, name: str) -> str | None:
        return self._current.get(name)

    async def current_versions(self) -> dict[str, str]:
        return dict(self._current)

    # -- rollouts ------------------------------------------------------------------------------------
    async def put_rollout(self, rollout: dict[str, Any]) -> None:
        model, text = self._encode_rollout(rollout)
        self._rollouts[model] = text
        self._notify(ChangeEvent("rollout", model))

    async def get_rollout(self, model: str) -> dict[str, Any] | None:
        text = self._rollouts.get(model)
        return None if text is None else codec.loads(text)

    async def list_rollouts(self) -> list[dict[str, Any]]:
        return [codec.loads(self._rollouts[m]) for m in sorted(self._rollouts)]

    async def delete_rollout(self, model: str) -> None:
        if self._rollouts.pop(model, None) is not None:
            self._notify(ChangeEvent("rollout", model))

    # -- API keys -----------------------------------------------------------------------------------
    async def add_api_key(self, key: ApiKey) -> None:
        codec.dumps(key.limits)  # JSON only, as the durable stores demand
        self._require_app(key.app_name)
        if key.key_id in self._api_keys:
            raise AlreadyExists(f"API key '{key.key_id}' already exists")
        self._api_keys[key.key_id] = _copy(key)
        self._notify(ChangeEvent("api_key", key.app_name))

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        key = self._api_keys.get(key_id)
        return None if key is None else _copy(key)

    async def list_api_keys(self, app_name: str | None = None) -> list[ApiKey]:
        keys = [k for k in self._api_keys.values() if app_name is None or k.app_name == app_name]
        return [_copy(k) for k in sorted(keys, key=lambda k: (k.app_name, k.created_at, k.key_id))]

    async def delete_api_key(self, key_id: str) -> bool:
        key = self._api_keys.pop(key_id, None)
        if key is None:
            return False
        self._notify(ChangeEvent("api_key", key.app_name))
        return True

    # -- links ----------------------------------------------------------------------------------------
    async def add_links(self, app_name: str, model_names: list[str]) -> None:
        self._require_app(app_name)
        links = self._links[app_name]
        new = [m for m in dict.fromkeys(model_names) if m not in links]
        if new:
            links.extend(new)
            self._notify(ChangeEvent("link", app_name))

    async def delete_links(self, app_name: str, model_names: list[str]) -> None:
        self._require_app(app_name)
        links = self._links[app_name]
        for m in model_names:
            if m not in links:
                raise NotFound(f"model '{m}' is not linked to application '{app_name}'")
        if model_names:
            self._links[app_name] = [m for m in links if m not in set(model_names)]
            self._notify(ChangeEvent("link", app_name))

    async def get_links(self, app_name: str) -> list[str]:
        self._require_app(app_name)
        return list(self._links[app_name])

    # -- replicas -------------------------------------------------------------------------------------
    async def add_replica(self, replica: Replica) -> None:
        self._replicas[(replica.model_name, replica.model_version, replica.replica_id)] = _copy(replica)
        self._notify(ChangeEvent("replica", replica.model_name, replica.model_version))

    async def delete_replica(self, model_name: str, model_version: str, replica_id: int) -> None:
        if self._replicas.pop((model_name, model_version, replica_id), None) is not None:
            self._notify(ChangeEvent("replica", model_name, model_version))

    async def list_replicas(self, model_name: str | None = None, model_version: str | None = None
                            ) -> list[Replica]:
        return [_copy(self._replicas[k]) for k in sorted(self._replicas)
                if (model_name is None or k[0] == model_name)
                and (model_version is None or k[1] == model_version)]

    async def clear_replicas(self, frontend: str) -> None:
        gone = sorted(k for k, r in self._replicas.items() if r.frontend == frontend)
        for key in gone:
            del self._replicas[key]
        for name, version in dict.fromkeys(k[:2] for k in gone):
            self._notify(ChangeEvent("replica", name, version))

    async def next_replica_id(self, model_name: str, model_version: str) -> int:
        key = (model_name, model_version)
        replica_id = self._replica_counters.get(key, 0)
        self._replica_counters[key] = replica_id + 1
        return replica_id

    # -- load reports ---------------------------------------------------------------------------------
    async def put_load(self, frontend: str, figures: LoadFigures, ttl: float = 5.0) -> None:
        now = time.time()
        for gone in [f for f, (expiry, _) in self._load.items() if expiry <= now]:
            del self._load[gone]
        self._load[frontend] = (now + ttl, _copy(figures))

    async def list_load(self) -> dict[str, LoadFigures]:
        now = time.time()
        return {f: _copy(figures) for f, (expiry, figures) in sorted(self._load.items()) if expiry > now}

    # -- policy state and feedback --------------------------------------------------------------------
    async def get_policy_state(self, app_name: str, uid: int) -> bytes | None:
        return self._policy_state.get((app_name, uid))

    async def put_policy_state(self, app_name: str, uid: int, state: bytes) -> None:
        self._policy_state[(app_name, uid)] = bytes(state)

    async def append_feedback(self, feedback: Feedback) -> int:
        log = self._feedback.setdefault(feedback.app_name, [])
        seq = len(log) + 1  # feedback is never deleted, so the log length is the last seq
        changes: dict[str, Any] = {"seq": seq}
        if not feedback.received_at:
            changes["received_at"] = time.time()
        log.append(_copy(dataclasses.replace(feedback, **changes)))
        return seq

    async def list_feedback(self, app_name: str, *, after_seq: int = 0, limit: int = 1000) -> list[Feedback]:
        log = self._feedback.get(app_name, [])
        start = max(after_seq, 0)
        return [_copy(f) for f in log[start:start + max(limit, 0)]]
