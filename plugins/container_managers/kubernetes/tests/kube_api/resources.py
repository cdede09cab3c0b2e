"""The served API surface: the resource table (:class:`ResourceType`, ``RESOURCES`` and the lookup tables derived
from it), the server-wide constants (Kubernetes version, initial namespaces, service CIDR, node-port range,
watch history, the RBAC API group), which fields each resource can be selected by, and the discovery entries of a
resource.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

import kmock

JSON = dict[str, Any]

KUBE_VERSION = "1.37.0"
DEFAULT_USER = "system:serviceaccount:default:clipper"
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public")
SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/16")
NODE_PORT_RANGE = range(30000, 32768)
WATCH_HISTORY = 2000  # events per resource kept for watches resuming from a resourceVersion
RBAC_GROUP = "rbac.authorization.k8s.io"

ALL_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
STATUS_VERBS = ("get", "patch", "update")


@dataclasses.dataclass(frozen=True)
class ResourceType:
    """One served resource: where it lives, what it is called, what can be done to it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[str, ...] = ()
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def ref(self) -> kmock.resource:
        return kmock.resource(self.group, self.version, self.plural)

    @property
    def group_resource(self) -> str:
        """``deployments.apps`` / ``pods``: how the server names it in NotFound/AlreadyExists/Forbidden."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        """``Deployment.apps`` / ``Pod``: how the server names it in Invalid messages."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def singular(self) -> str:
        return self.kind.lower()

    def has(self, subresource: str) -> bool:
        return subresource in self.subresources


RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "namespaces", "Namespace", False,
                 ("get", "list", "watch", "create", "update", "patch", "delete"), ("status",), ("ns",)),
    ResourceType("", "v1", "pods", "Pod", True, subresources=("log", "status"), short_names=("po",)),
    ResourceType("", "v1", "services", "Service", True,
                 ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"),
                 ("proxy", "status"), ("svc",)),
    ResourceType("", "v1", "secrets", "Secret", True),
    ResourceType("", "v1", "configmaps", "ConfigMap", True, short_names=("cm",)),
    ResourceType("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, subresources=("status",),
                 short_names=("pvc",)),
    ResourceType("", "v1", "nodes", "Node", False, subresources=("status",), short_names=("no",)),
    ResourceType("", "v1", "events", "Event", True, short_names=("ev",)),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", True, short_names=("sa",)),
    ResourceType("apps", "v1", "deployments", "Deployment", True, subresources=("scale", "status"),
                 short_names=("deploy",)),
    ResourceType(RBAC_GROUP, "v1", "roles", "Role", True),
    ResourceType(RBAC_GROUP, "v1", "rolebindings", "RoleBinding", True),
    ResourceType(RBAC_GROUP, "v1", "clusterroles", "ClusterRole", False),
    ResourceType(RBAC_GROUP, "v1", "clusterrolebindings", "ClusterRoleBinding", False),
)
RESOURCE_TYPES: dict[tuple[str, str, str], ResourceType] = {(r.group, r.version, r.plural): r for r in RESOURCES}
GROUP_VERSIONS: frozenset[tuple[str, str]] = frozenset((r.group, r.version) for r in RESOURCES)
COLLECTION_DELETABLE = frozenset({"deployments", "pods", "services", "secrets", "configmaps", "persistentvolumeclaims",
                                  "events", "serviceaccounts", "roles", "rolebindings", "clusterroles",
                                  "clusterrolebindings"})
RBAC_PLURALS = frozenset({"roles", "rolebindings", "clusterroles", "clusterrolebindings"})
"""Names of these are path segments (``system:discovery``), not DNS subdomains."""
RETURNS_DELETED_OBJECT = frozenset({"pods", "services", "persistentvolumeclaims", "namespaces"})
GENERATION_TRACKED = frozenset({"deployments", "pods"})
UNDELETABLE_NAMESPACES = frozenset(INITIAL_NAMESPACES)
PROTECTED_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")

FIELD_SELECTABLE: dict[str, frozenset[str]] = {
    "pods": frozenset({"spec.nodeName", "status.phase", "status.podIP", "spec.restartPolicy", "spec.schedulerName",
                       "spec.serviceAccountName"}),
    "namespaces": frozenset({"status.phase"}),
    "secrets": frozenset({"type"}),
    "events": frozenset({"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                         "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                         "involvedObject.fieldPath", "reason", "type", "source", "reportingComponent"}),
    "nodes": frozenset({"spec.unschedulable"}),
}


def _discovery_entries(rt: ResourceType) -> list[JSON]:
    entries = [{"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced, "kind": rt.kind,
                "verbs": list(rt.verbs), "shortNames": list(rt.short_names)}]
    for sub in rt.subresources:
        kind, group, version, verbs = rt.kind, None, None, list(STATUS_VERBS)
        if sub == "scale":
            kind, group, version = "Scale", "autoscaling", "v1"
        elif sub == "log":
            verbs = ["get"]
        elif sub == "proxy":
            kind, verbs = "ServiceProxyOptions", ["create", "delete", "get", "patch", "update"]
        entry: JSON = {"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced, "kind": kind,
                       "verbs": verbs}
        if group:
            entry.update(group=group, version=version)
        entries.append(entry)
    return entries
