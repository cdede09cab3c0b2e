"""Read what a running clipper holds (:class:`.spec.Running`) through ``ClipperConnection``: its applications and
links, model versions and rollouts; and its connected replicas (:func:`ready_replicas`)."""

from __future__ import annotations

from typing import Any

from clipper_core.client.connection import ClipperConnection
from clipper_core.declarative.spec import DIGEST_LABEL, Running, RunningApp, RunningModel

__all__ = ["read_running", "ready_replicas", "split_labels"]


def split_labels(labels: list[str]) -> tuple[tuple[str, ...], str | None]:
    """(the user's labels, the digest of :data:`.spec.DIGEST_LABEL` or None)."""
    digest = next((label[len(DIGEST_LABEL):] for label in labels if label.startswith(DIGEST_LABEL)), None)
    return tuple(label for label in labels if not label.startswith(DIGEST_LABEL)), digest


def running_model(info: dict[str, Any]) -> RunningModel:
    labels, digest = split_labels(list(info.get("labels") or []))
    return RunningModel(name=info["model_name"], version=str(info["model_version"]), input_type=info["input_type"],
                        labels=labels, container_name=info["container_name"], batch_size=int(info["batch_size"]),
                        batch_wait_timeout_micros=int(info.get("batch_wait_timeout_micros", 0)),
                        num_replicas=int(info.get("num_replicas", 0)), current=bool(info["is_current_version"]),
                        autoscaling=info.get("autoscaling"), digest=digest)


def read_running(conn: ClipperConnection) -> Running:
    running = Running()
    for app in conn.get_all_apps(verbose=True):
        running.apps[app["name"]] = RunningApp(
            name=app["name"], input_type=app["input_type"], slo_micros=int(app["latency_slo_micros"]),
            default_output=app["default_output"], policy=app.get("policy", "default"),
            policy_config=dict(app.get("policy_config") or {}), cache=bool(app.get("cache_enabled", True)),
            links=tuple(app.get("linked_models") or ()))
    for info in conn.get_all_models(verbose=True):
        model = running_model(info)
        running.models[model.key] = model
    for rollout in conn.get_rollouts():
        running.rollouts[rollout["model"]] = rollout
    return running


def ready_replicas(conn: ClipperConnection) -> dict[str, int]:
    """Replicas connected to the query frontend, by ``name:version``."""
    ready: dict[str, int] = {}
    for replica in conn.get_all_model_replicas(verbose=True):
        key = f"{replica['model_name']}:{replica['model_version']}"
        ready[key] = ready.get(key, 0) + 1
    return ready
