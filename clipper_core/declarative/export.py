"""Write what a clipper runs as a clipper file: applying it to a fresh clipper reproduces the applications, the
model versions (each with its replicas, batching, labels, autoscaling and whether it is current) and the links.

A version is exported by what its container manager runs: a saved model directory on this host (the local
manager's copy under ``$CLIPPER_HOME/models``) as ``model_dir``, anything else (a Docker image) as ``image``; with
the ``digest`` of the source it was applied from, so that applying the original file afterwards finds it unchanged.
Rollouts are not state to reproduce: a candidate is exported as a version that is not current.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from clipper_core.declarative.load import MANIFEST
from clipper_core.declarative.schema import API_VERSION
from clipper_core.declarative.spec import Running, RunningModel
from clipper_core.names import NO_CONTAINER

__all__ = ["export_data", "export_text"]


def _version(text: str) -> str | int:
    """A version as it reads best in YAML: a plain number as a number (``1``), the rest as text."""
    return int(text) if text.isdigit() and str(int(text)) == text else text


def _model(model: RunningModel) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": model.name, "version": _version(model.version), "input_type": model.input_type}
    container = model.container_name
    if container != NO_CONTAINER and (Path(container) / MANIFEST).is_file():
        entry["model_dir"] = container
    else:
        entry["image"] = container
    if model.digest is not None:
        entry["digest"] = model.digest
    entry["replicas"] = model.num_replicas
    if model.batch_size != -1:
        entry["batch_size"] = model.batch_size
    if model.batch_wait_timeout_micros:
        entry["batch_wait_timeout_micros"] = model.batch_wait_timeout_micros
    if model.labels:
        entry["labels"] = list(model.labels)
    entry["current"] = model.current
    if model.autoscaling is not None:
        entry["autoscaling"] = {k: v for k, v in model.autoscaling.items() if v is not None}  # the unused target
    return entry


def _order(model: RunningModel) -> tuple[str, int, int, str]:
    """By name, then version: numbers in numeric order (2 before 10), before other versions."""
    numeric = model.version.isdigit()
    return model.name, 0 if numeric else 1, int(model.version) if numeric else 0, model.version


def export_data(running: Running) -> dict[str, Any]:
    """The clipper file of ``running`` as data (apps and models sorted by name, links in each app's order)."""
    apps = []
    links: list[dict[str, str]] = []
    for app in sorted(running.apps.values(), key=lambda a: a.name):
        entry: dict[str, Any] = {"name": app.name, "input_type": app.input_type, "slo_micros": app.slo_micros,
                                 "default_output": app.default_output}
        if app.policy != "default":
            entry["policy"] = app.policy
        if app.policy_config:
            entry["policy_config"] = dict(app.policy_config)
        if not app.cache:
            entry["cache"] = False
        apps.append(entry)
        links.extend({"app": app.name, "model": model} for model in app.links)
    models = [_model(m) for m in sorted(running.models.values(), key=_order)]
    return {"apiVersion": API_VERSION, "applications": apps, "models": models, "links": links}


def export_text(running: Running, source: str) -> str:
    """:func:`export_data` as YAML, headed by a comment naming ``source`` (the clipper it was read from)."""
    body = yaml.safe_dump(export_data(running), sort_keys=False, default_flow_style=False, allow_unicode=True)
    return f"# clipper export of {source}; apply with: clipper apply -f FILE\n{body}"
