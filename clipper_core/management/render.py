"""Records as the management API answers with them: Clipper's JSON objects (plus clipper's additions: policy,
policy_config and cache_enabled of an app; batch_size, batch_wait_timeout_micros and num_replicas of a model; a
replica's pid) and the terse ``name:version[:replica_id]`` strings of non-verbose lists. The OpenAPI document's
schemas describe exactly these (:mod:`clipper_core.management.openapi`)."""

from __future__ import annotations

from typing import Any

from clipper_core.management.operations import AppInfo, ModelInfo
from clipper_core.state import Model, Replica

__all__ = ["app_json", "autoscaling_json", "model_json", "model_label", "replica_json", "replica_label"]


def app_json(info: AppInfo) -> dict[str, Any]:
    app = info.app
    return {"name": app.name, "input_type": app.input_type.value, "default_output": app.default_output,
            "latency_slo_micros": app.latency_slo_micros, "linked_models": info.links, "policy": app.policy,
            "policy_config": app.policy_config, "cache_enabled": app.cache_enabled,
            "require_api_key": app.require_api_key, "priority": app.priority, "limits": app.limits}


def model_json(info: ModelInfo) -> dict[str, Any]:
    model = info.model
    return {"model_name": model.name, "model_version": model.version, "input_type": model.input_type.value,
            "labels": list(model.labels), "container_name": model.container_name,
            "model_data_path": model.model_data_path, "is_current_version": info.is_current,
            "batch_size": model.batch_size, "batch_wait_timeout_micros": model.batch_wait_timeout_micros,
            "num_replicas": model.num_replicas, "autoscaling": model.autoscaling}


def autoscaling_json(model: Model, status: dict[str, Any] | None) -> dict[str, Any]:
    """A model version's autoscaling settings (null: off) and the autoscaler's last decision (null: none yet)."""
    return {"model_name": model.name, "model_version": model.version, "autoscaling": model.autoscaling,
            "status": status}


def model_label(model: Model) -> str:
    return f"{model.name}:{model.version}"


def replica_json(replica: Replica) -> dict[str, Any]:
    return {"model_id": f"{replica.model_name}:{replica.model_version}", "model_name": replica.model_name,
            "model_version": replica.model_version, "model_replica_id": replica.replica_id,
            "input_type": replica.input_type.value, "pid": replica.info.get("pid")}


def replica_label(replica: Replica) -> str:
    return f"{replica.model_name}:{replica.model_version}:{replica.replica_id}"
