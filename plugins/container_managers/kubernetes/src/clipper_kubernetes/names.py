"""Object names, labels and annotations: everything the manager, ``clipper kubernetes render`` and ``connect()``
must agree on.

Every object of a cluster carries the recommended labels (``app.kubernetes.io/name: clipper``, ``instance: <cluster>``,
``component``, ``part-of``, ``managed-by``, ``version``) and clipper's own: ``ai.clipper.container.label: <cluster>``
(Clipper's cluster label key, reference §3.2) and ``ai.clipper.role``; model Deployments also
``ai.clipper.model.name`` / ``ai.clipper.model.version``. Selectors use clipper's labels only, so two clusters in
one namespace never select each other's pods. Names follow Clipper's ``<what>-at-<cluster>``.
"""

from __future__ import annotations

import hashlib
import re

from clipper_docker.names import check_cluster_name

from clipper_kubernetes import __version__

__all__ = ["CLUSTER_LABEL", "MODEL_NAME_ANNOTATION", "MODEL_NAME_LABEL", "MODEL_VERSION_ANNOTATION",
           "MODEL_VERSION_LABEL", "ROLE_LABEL", "Role", "check_cluster_name", "cluster_selector", "label_value",
           "labels", "model_deployment_name", "model_labels", "model_selector", "object_name"]

CLUSTER_LABEL = "ai.clipper.container.label"
ROLE_LABEL = "ai.clipper.role"
MODEL_NAME_LABEL = "ai.clipper.model.name"
MODEL_VERSION_LABEL = "ai.clipper.model.version"
MODEL_CONTAINER_LABEL = "ai.clipper.model_container.label"
MODEL_NAME_ANNOTATION = "ai.clipper.model/name"
"""The exact model name (a label value may have had to be shortened)."""
MODEL_VERSION_ANNOTATION = "ai.clipper.model/version"
INPUT_TYPE_ANNOTATION = "ai.clipper.model/input-type"


class Role:
    REDIS = "redis"
    MANAGEMENT = "management"
    QUERY = "query"
    MODEL = "model"


_COMPONENT = {Role.REDIS: "redis", Role.MANAGEMENT: "management-frontend", Role.QUERY: "query-frontend",
              Role.MODEL: "model"}
_OBJECT = {"redis": "redis", "redis-data": "redis-data", "redis-auth": "redis-auth", "admin-token": "admin-token",
           "management": "mgmt-frontend", "autoscaler": "autoscaler", "query": "query-frontend",
           "query-rpc": "query-frontend-rpc"}
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def object_name(what: str, cluster: str) -> str:
    """``redis-at-<cluster>``, ``mgmt-frontend-at-<cluster>``, ``query-frontend-at-<cluster>`` (the REST
    Service and the Deployment), ``query-frontend-rpc-at-<cluster>`` (the headless RPC Service), ..."""
    return f"{_OBJECT[what]}-at-{cluster}"


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def label_value(text: str) -> str:
    """``text`` when it is a valid label value (≤ 63 characters, alphanumeric at both ends), else a valid
    value made from it and ending in a hash of it (so selecting by it still finds exactly its objects)."""
    if len(text) <= 63 and _LABEL_VALUE.match(text):
        return text
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:54].strip("-_.")
    return f"{cleaned}-{_digest(text)}" if cleaned else _digest(text)


def model_deployment_name(cluster: str, model: str, version: str) -> str:
    """``<model>-<version>-deployment-at-<cluster>`` (Clipper's, without the frontend index: every replica serves
    every frontend), a DNS label; a version with other characters, or a name too long, is shortened and ends in
    a hash of the model and version."""
    suffix = f"-deployment-at-{cluster}"
    plain = f"{model}-{version}"
    if _DNS_LABEL.match(plain) and len(plain) + len(suffix) <= 63:
        return plain + suffix
    cleaned = re.sub(r"[^a-z0-9-]", "-", plain.lower()).strip("-")
    room = 63 - len(suffix) - 9
    head = cleaned[:room].rstrip("-") if room > 0 else ""
    name = f"{head}-{_digest(model + chr(0) + version)}" if head else _digest(model + chr(0) + version)
    return name + suffix


def cluster_selector(cluster: str) -> dict[str, str]:
    return {CLUSTER_LABEL: cluster}


def labels(cluster: str, role: str) -> dict[str, str]:
    """Every label of one of the cluster's objects of ``role``."""
    return {"app.kubernetes.io/name": "clipper", "app.kubernetes.io/instance": cluster,
            "app.kubernetes.io/component": _COMPONENT[role], "app.kubernetes.io/part-of": "clipper",
            "app.kubernetes.io/managed-by": "clipper-kubernetes", "app.kubernetes.io/version": __version__,
            CLUSTER_LABEL: cluster, ROLE_LABEL: role}


def role_selector(cluster: str, role: str) -> dict[str, str]:
    """What a Deployment or Service of ``role`` selects (clipper's labels only: they never change)."""
    return {CLUSTER_LABEL: cluster, ROLE_LABEL: role}


def model_selector(cluster: str, model: str | None = None, version: str | None = None) -> dict[str, str]:
    selector = role_selector(cluster, Role.MODEL)
    if model is not None:
        selector[MODEL_NAME_LABEL] = label_value(model)
    if version is not None:
        selector[MODEL_VERSION_LABEL] = label_value(version)
    return selector


def model_labels(cluster: str, model: str, version: str) -> dict[str, str]:
    return {**labels(cluster, Role.MODEL), **model_selector(cluster, model, version),
            MODEL_CONTAINER_LABEL: label_value(f"{model}_{version}")}


def selector_text(selector: dict[str, str]) -> str:
    """A label selector's query form: ``k=v,k2=v2``."""
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
