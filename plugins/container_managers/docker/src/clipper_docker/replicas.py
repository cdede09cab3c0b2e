"""Model replicas as containers: the desired counts (kept in the cluster's Redis) and one reconcile step.

Both the manager (in the user's process, on ``deploy_model``/``set_num_replicas``/``stop_models``) and the
supervisor (a container of the cluster, when a replica dies) run :meth:`Reconciler.reconcile` under one Redis
lock, so they never both start the missing replica. Desired state lives in Redis rather than in the manager
because the manager is gone when the user's script ends, and Docker restarts a crashed container but not one
that ``docker kill`` (or ``docker stop``) stopped::

    clipper-docker:<cluster>:replicas   hash  "name\\0version" -> JSON ReplicaSpec
    clipper-docker:<cluster>:lock       the reconcile lock (expires after LOCK_TTL if its holder dies)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import docker
import redis
from docker.errors import APIError, NotFound
from docker.models.containers import Container

from clipper_docker.names import (
    CLUSTER_LABEL,
    MODEL_CONTAINER_LABEL,
    MODEL_NAME_LABEL,
    MODEL_VERSION_LABEL,
    ROLE_LABEL,
    RPC_PORT,
    Role,
    replica_name,
)

__all__ = ["LOCK_TTL", "DesiredState", "Outcome", "Reconciler", "ReplicaSpec", "merge_kwargs"]

LOCK_TTL = 120.0
"""Seconds a reconcile lock lives if its holder dies (longer than any reconcile: drains run in parallel)."""
LOCK_WAIT = 180.0
_DEAD = ("exited", "dead")


@dataclass(frozen=True)
class ReplicaSpec:
    """What to run for one model version: ``num_replicas`` containers of ``image`` connecting to ``frontend``."""

    model: str
    version: str
    input_type: str
    image: str
    num_replicas: int
    frontend: str
    """Host name of the query frontend replicas connect to (a container name on the cluster's network)."""
    rpc_port: int = RPC_PORT

    @property
    def key(self) -> str:
        return f"{self.model}\0{self.version}"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, data: bytes | str) -> ReplicaSpec:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in json.loads(data).items() if k in fields})


class DesiredState:
    """The replica specs of one cluster, in Redis."""

    def __init__(self, client: redis.Redis, cluster: str) -> None:
        self.redis = client
        self.key = f"clipper-docker:{cluster}:replicas"
        self.lock_key = f"clipper-docker:{cluster}:lock"

    def get(self, model: str, version: str) -> ReplicaSpec | None:
        raw = self.redis.hget(self.key, f"{model}\0{version}")
        return ReplicaSpec.from_json(raw) if raw is not None else None

    def all(self) -> list[ReplicaSpec]:
        raw: dict[bytes, bytes] = self.redis.hgetall(self.key)  # type: ignore[assignment]
        return sorted((ReplicaSpec.from_json(v) for v in raw.values()), key=lambda s: (s.model, s.version))

    def put(self, spec: ReplicaSpec) -> None:
        self.redis.hset(self.key, spec.key, spec.to_json())

    def delete(self, model: str, version: str) -> None:
        self.redis.hdel(self.key, f"{model}\0{version}")

    def lock(self) -> Any:
        """The reconcile lock (``with state.lock(): ...``); waits at most LOCK_WAIT seconds for it."""
        return self.redis.lock(self.lock_key, timeout=LOCK_TTL, blocking_timeout=LOCK_WAIT, thread_local=False)


@dataclass
class Outcome:
    """What one reconcile step did."""

    created: list[str] = dataclasses.field(default_factory=list)
    stopped: list[str] = dataclasses.field(default_factory=list)
    dead: list[tuple[str, int, float]] = dataclasses.field(default_factory=list)
    """Replicas found dead and removed: (container name, exit code, seconds it ran)."""


def merge_kwargs(ours: dict[str, Any], extra: dict[str, Any] | None) -> dict[str, Any]:
    """``extra_container_kwargs`` over ours; ``labels`` and ``environment`` dictionaries are merged, ours win."""
    merged = dict(ours)
    for key, value in (extra or {}).items():
        if key in ("labels", "environment") and isinstance(value, dict) and isinstance(ours.get(key), dict):
            merged[key] = {**value, **ours[key]}
        else:
            merged[key] = value
    return merged


def labels_of(container: Container) -> dict[str, str]:
    return dict((container.attrs.get("Config") or {}).get("Labels") or {})


def _seconds(stamp: str | None) -> float | None:
    if not stamp or stamp.startswith("0001-"):
        return None
    with contextlib.suppress(ValueError):
        head, _, frac = stamp.rstrip("Z").partition(".")
        return datetime.fromisoformat(head + "+00:00").timestamp() + float(f"0.{frac or 0}")
    return None


class Reconciler:
    """Brings the replica containers of a model version to a desired count."""

    def __init__(self, client: docker.DockerClient, cluster: str, network: str,
                 extra_container_kwargs: dict[str, Any] | None = None, drain_timeout: float = 10.0) -> None:
        self.client = client
        self.cluster = cluster
        self.network = network
        self.extra = dict(extra_container_kwargs or {})
        self.drain_timeout = drain_timeout

    def replicas(self, model: str | None = None, version: str | None = None) -> list[Container]:
        """Replica containers of this cluster (all states), oldest first."""
        filters = [f"{CLUSTER_LABEL}={self.cluster}", f"{ROLE_LABEL}={Role.MODEL}"]
        if model is not None:
            filters.append(f"{MODEL_NAME_LABEL}={model}")
        if version is not None:
            filters.append(f"{MODEL_VERSION_LABEL}={version}")
        found = self.client.containers.list(all=True, filters={"label": filters}, ignore_removed=True)
        return sorted(found, key=lambda c: (c.attrs.get("Created", ""), c.name))

    @staticmethod
    def alive(container: Container) -> bool:
        return container.status not in _DEAD and container.status != "removing"

    def reconcile(self, spec: ReplicaSpec | None, model: str, version: str, allow_create: bool = True) -> Outcome:
        """Remove dead replicas, start missing ones, drain and remove surplus ones (``spec`` None: stop all).
        Call it holding :meth:`DesiredState.lock`."""
        outcome = Outcome()
        alive = []
        for container in self.replicas(model, version):
            if self.alive(container):
                alive.append(container)
                continue
            state = container.attrs.get("State") or {}
            started, finished = _seconds(state.get("StartedAt")), _seconds(state.get("FinishedAt"))
            ran = finished - started if started is not None and finished is not None else 0.0
            outcome.dead.append((container.name, int(state.get("ExitCode", -1)), max(ran, 0.0)))
            with contextlib.suppress(NotFound, APIError):
                container.remove(force=True)
        want = spec.num_replicas if spec is not None else 0
        if len(alive) > want:
            # Drop not-yet-running replicas first, then the newest: the oldest have warmed up.
            surplus = sorted(alive, key=lambda c: (c.status == "running", -(_seconds(c.attrs.get("Created")) or 0)))
            surplus = surplus[: len(alive) - want]
            self.drain(surplus)
            outcome.stopped = [c.name for c in surplus]
        elif len(alive) < want and allow_create and spec is not None:
            for _ in range(want - len(alive)):
                outcome.created.append(self.create(spec).name)
        return outcome

    def create(self, spec: ReplicaSpec) -> Container:
        labels = {CLUSTER_LABEL: self.cluster, ROLE_LABEL: Role.MODEL, MODEL_NAME_LABEL: spec.model,
                  MODEL_VERSION_LABEL: spec.version, MODEL_CONTAINER_LABEL: f"{spec.model}_{spec.version}"}
        environment = {"CLIPPER_MODEL_NAME": spec.model, "CLIPPER_MODEL_VERSION": spec.version,
                       "CLIPPER_INPUT_TYPE": spec.input_type, "CLIPPER_IP": spec.frontend,
                       "CLIPPER_PORT": str(spec.rpc_port)}
        # on-failure: Docker restarts a crashed replica in place (with its own back-off); one stopped from
        # outside (docker kill/stop) is replaced by the supervisor with a new container.
        kwargs = merge_kwargs({"labels": labels, "environment": environment, "network": self.network,
                               "restart_policy": {"Name": "on-failure"}, "init": True, "detach": True,
                               "name": replica_name(self.cluster, spec.model, spec.version, secrets.token_hex(3))},
                              self.extra)
        container: Container = self.client.containers.run(spec.image, **kwargs)
        return container

    def drain(self, containers: list[Container]) -> None:
        """Stop gracefully, all at once: SIGTERM makes a replica say DRAINING, finish the batches it holds (for
        up to ``CLIPPER_DRAIN_SECONDS``, 8 s; the frontends re-queue what it abandons) and say GOODBYE; SIGKILL
        after ``drain_timeout``. Then remove."""

        def stop(container: Container) -> None:
            with contextlib.suppress(NotFound, APIError):
                container.stop(timeout=int(self.drain_timeout))
            with contextlib.suppress(NotFound, APIError):
                container.remove(force=True)

        threads = [threading.Thread(target=stop, args=(c,), daemon=True) for c in containers]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + self.drain_timeout + 30
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
