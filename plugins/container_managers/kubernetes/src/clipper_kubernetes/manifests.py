"""The Kubernetes objects of a clipper cluster, as plain dictionaries (``apps/v1``, ``v1`` and
``rbac.authorization.k8s.io/v1`` only).

One function makes each object; :func:`cluster_objects` lists them in the order they are applied (Secrets and
the volume claim first, Services before the Deployments whose pods resolve them) and :func:`model_deployment`
makes a model version's Deployment. ``KubernetesContainerManager`` sends exactly these to the API server and
``clipper kubernetes render`` prints exactly these as YAML, so what GitOps applies is what the manager creates.

The query frontends are **one** Deployment of N replicas behind one REST Service, plus a headless Service over
their RPC port: a model replica dials the headless name, the frontend that answers announces every live
frontend's pod address (WELCOME/PEERS, ``docs/rpc.md``), and the replica joins them all. So every replica serves
every frontend, where Clipper ran one Deployment per frontend and pinned each model pod to one of them.

The management frontend runs the autoscaler, which scales model Deployments from inside its pod: it alone mounts a
service-account token, that of the ServiceAccount ``autoscaler-at-<cluster>``, bound to a Role that may only read
and scale (and, for a version whose Deployment is gone, recreate) Deployments and read pods in the namespace.
Every other pod runs with ``automountServiceAccountToken: false``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clipper_docker.names import DEFAULT_FRONTEND_IMAGE, DEFAULT_REDIS_IMAGE, READY_FILE

from clipper_core.errors import ClipperException
from clipper_kubernetes import names
from clipper_kubernetes.names import Role

__all__ = ["DEFAULT_SERVICE_TYPES", "PORTS", "SERVICE_TYPE_KEYS", "ClusterSpec", "ModelSpec", "cluster_objects",
           "cluster_secrets",
           "exposes_management", "model_deployment", "namespace_object", "store_url"]

PORTS = {"query": 1337, "management": 1338, "rpc": 7000, "redis": 6379}
"""Ports inside the pods; the Services expose the same numbers."""
SERVICE_TYPE_KEYS = ("redis", "management", "query", "query-rpc", "metric")
"""Clipper's ``service_types`` keys. ``query-rpc`` is the headless RPC Service (ClusterIP only); ``metric`` is
accepted for compatibility and creates nothing: the query frontends serve ``/metrics`` themselves."""
DEFAULT_SERVICE_TYPES: Mapping[str, str] = {"redis": "ClusterIP", "management": "NodePort", "query": "NodePort",
                                            "query-rpc": "ClusterIP", "metric": "NodePort"}
"""Clipper made every Service a NodePort; Redis stays inside the cluster here (nothing outside needs it, and a
NodePort would publish the state store on every node)."""
_SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
_RESOURCE_KEYS = ("redis", "management", "query", "model")


def check_service_types(given: Mapping[str, str] | None) -> dict[str, str]:
    """``service_types`` over the defaults; unknown keys, ExternalName and a non-ClusterIP ``query-rpc`` refused."""
    merged = dict(DEFAULT_SERVICE_TYPES)
    for key, value in (given or {}).items():
        if key not in SERVICE_TYPE_KEYS:
            raise ClipperException(f"service_types has the unknown key {key!r}; expected some of "
                                   f"{', '.join(SERVICE_TYPE_KEYS)}")
        if value == "ExternalName":
            raise ClipperException(f"service_types[{key!r}] is ExternalName, which clipper cannot use: a Service of "
                                   "that type selects no pods (use ClusterIP, NodePort or LoadBalancer)")
        if value not in _SERVICE_TYPES:
            raise ClipperException(f"service_types[{key!r}] is {value!r}; expected one of {', '.join(_SERVICE_TYPES)}")
        if key == "query-rpc" and value != "ClusterIP":
            raise ClipperException("service_types['query-rpc'] must be ClusterIP: it is the headless Service through "
                                   "which model replicas find every query frontend")
        merged[key] = value
    return merged


def check_resources(given: Mapping[str, Mapping[str, Mapping[str, str]]] | None) -> dict[str, dict[str, Any]]:
    """``resources``: ``{role: {"requests": {...}, "limits": {...}}}`` for redis, management, query and model."""
    checked: dict[str, dict[str, Any]] = {}
    for key, value in (given or {}).items():
        if key not in _RESOURCE_KEYS:
            raise ClipperException(f"resources has the unknown key {key!r}; expected some of "
                                   f"{', '.join(_RESOURCE_KEYS)}")
        if not isinstance(value, Mapping) or set(value) - {"requests", "limits"}:
            raise ClipperException(f"resources[{key!r}] must be a mapping with 'requests' and/or 'limits', as in a "
                                   "container spec (e.g. {'limits': {'cpu': '1', 'memory': '1Gi'}})")
        checked[key] = {k: {str(n): str(q) for n, q in v.items()} for k, v in value.items()}
    return checked


@dataclass(frozen=True)
class ClusterSpec:
    """What one cluster is made of. Secrets' values are not part of it: they are given when rendering."""

    cluster: str = "default-cluster"
    namespace: str = "default"
    num_frontends: int = 1
    frontend_image: str = DEFAULT_FRONTEND_IMAGE
    management_image: str = DEFAULT_FRONTEND_IMAGE
    redis_image: str = DEFAULT_REDIS_IMAGE
    redis_ip: str | None = None
    """An existing Redis instead of the managed one (no Redis Deployment, Service or volume claim)."""
    redis_port: int = 6379
    redis_storage: str = "1Gi"
    storage_class: str | None = None
    service_types: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SERVICE_TYPES))
    resources: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    cache_size: int | None = None
    image_pull_policy: str = "IfNotPresent"
    has_redis_password: bool = True
    has_admin_token: bool = False
    drain_seconds: int = 10
    """How long a stopping replica may finish its batch (its pods' termination grace, plus 5 s)."""
    deploy_seconds: float = 300.0
    """How long the autoscaler waits for a version's replicas to be ready after it scales them."""
    autoscaler: bool = True
    """The management pod scales model Deployments (its ServiceAccount, Role and RoleBinding); off: none of
    them, and no service-account token in any pod."""

    def __post_init__(self) -> None:
        names.check_cluster_name(self.cluster)
        if self.num_frontends < 1:
            raise ClipperException("num_frontend_replicas must be at least 1")
        object.__setattr__(self, "service_types", check_service_types(self.service_types))
        object.__setattr__(self, "resources", check_resources(self.resources))

    def replace(self, **changes: Any) -> ClusterSpec:
        return dataclasses.replace(self, **changes)

    @property
    def managed_redis(self) -> bool:
        return self.redis_ip is None


@dataclass(frozen=True)
class ModelSpec:
    model: str
    version: str
    input_type: str
    image: str
    replicas: int


def _meta(spec: ClusterSpec, name: str, role: str, extra_labels: Mapping[str, str] | None = None,
          annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": spec.namespace,
                            "labels": {**names.labels(spec.cluster, role), **(extra_labels or {})}}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def _secret(spec: ClusterSpec, what: str, role: str, key: str, value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": _meta(spec, names.object_name(what, spec.cluster), role),
            "data": {key: base64.b64encode(value.encode()).decode()}}


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def store_url(spec: ClusterSpec) -> str:
    """``CLIPPER_STATE_STORE`` as the pods see it; ``$(REDIS_PASSWORD)`` is expanded by the kubelet from the env
    var defined before it (the password is hex, so it needs no URL quoting)."""
    host = spec.redis_ip if spec.redis_ip is not None else names.object_name("redis", spec.cluster)
    port = spec.redis_port if spec.redis_ip is not None else PORTS["redis"]
    auth = ":$(REDIS_PASSWORD)@" if spec.has_redis_password else ""
    return f"redis://{auth}{host}:{port}/0"


def _store_env(spec: ClusterSpec) -> list[dict[str, Any]]:
    env = []
    if spec.has_redis_password:
        env.append(_secret_env("REDIS_PASSWORD", names.object_name("redis-auth", spec.cluster), "password"))
    env.append({"name": "CLIPPER_STATE_STORE", "value": store_url(spec)})
    return env


def _http_probe(path: str, port: int, period: int, failures: int, delay: int = 0) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": port}, "initialDelaySeconds": delay, "periodSeconds": period,
            "timeoutSeconds": 2, "failureThreshold": failures}


def _tcp_probe(port: int, period: int, failures: int, delay: int = 0) -> dict[str, Any]:
    return {"tcpSocket": {"port": port}, "initialDelaySeconds": delay, "periodSeconds": period,
            "timeoutSeconds": 2, "failureThreshold": failures}


def _container(spec: ClusterSpec, role: str, name: str, image: str, *, command: list[str] | None = None,
               args: list[str] | None = None, env: list[dict[str, Any]] | None = None,
               ports: Mapping[str, int] | None = None, **probes: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": image, "imagePullPolicy": spec.image_pull_policy,
                                 "securityContext": {"allowPrivilegeEscalation": False,
                                                     "capabilities": {"drop": ["ALL"]}}}
    if command is not None:
        container["command"] = command
    if args is not None:
        container["args"] = args
    if env:
        container["env"] = env
    if ports:
        container["ports"] = [{"name": port_name, "containerPort": port, "protocol": "TCP"}
                              for port_name, port in ports.items()]
    if spec.resources.get(role):
        container["resources"] = dict(spec.resources[role])
    container.update({key: value for key, value in probes.items() if value is not None})
    return container


AUTOSCALER_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "create", "update"]},
    {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["patch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
]
"""What the autoscaler's ``set_num_replicas`` calls, and nothing more: read a version's Deployment and patch its
scale, list its pods while waiting (and read a crashing one's log); create it, or roll it back (update), when a
version has none or another image. RBAC cannot select by label: the Role reaches every Deployment of the
namespace, so give each cluster a namespace of its own where others run."""


def autoscaler_options(spec: ClusterSpec) -> dict[str, Any]:
    """The constructor arguments of the ``KubernetesContainerManager`` the management pod's autoscaler makes
    (``CLIPPER_AUTOSCALE_MANAGER_OPTIONS``): this cluster, in the pod's own namespace (reached with the pod's
    service account), making model Deployments as this one does."""
    options: dict[str, Any] = {"cluster_name": spec.cluster, "namespace": spec.namespace,
                               "image_pull_policy": spec.image_pull_policy, "drain_timeout": spec.drain_seconds,
                               "deploy_timeout": spec.deploy_seconds}
    if spec.resources:
        options["resources"] = {role: dict(value) for role, value in spec.resources.items()}
    return options


def autoscaler_objects(spec: ClusterSpec) -> list[dict[str, Any]]:
    """The management pod's ServiceAccount, its Role (:data:`AUTOSCALER_RULES`) and their RoleBinding."""
    name = names.object_name("autoscaler", spec.cluster)
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(spec, name, Role.MANAGEMENT),
               "automountServiceAccountToken": False}  # mounted only where a pod asks for it: the management pod
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": _meta(spec, name, Role.MANAGEMENT), "rules": [dict(rule) for rule in AUTOSCALER_RULES]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": _meta(spec, name, Role.MANAGEMENT),
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
               "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": spec.namespace}]}
    return [account, role, binding]


def _deployment(spec: ClusterSpec, name: str, role: str, replicas: int, pod_spec: dict[str, Any], *,
                extra_labels: Mapping[str, str] | None = None, annotations: Mapping[str, str] | None = None,
                pod_annotations: Mapping[str, str] | None = None, recreate: bool = False,
                pod_security: Mapping[str, Any] | None = None) -> dict[str, Any]:
    pod_security = dict(pod_security or {})
    selector = names.role_selector(spec.cluster, role)
    if extra_labels:
        selector.update({k: v for k, v in extra_labels.items() if k in (names.MODEL_NAME_LABEL,
                                                                        names.MODEL_VERSION_LABEL)})
    pod_meta: dict[str, Any] = {"labels": {**names.labels(spec.cluster, role), **(extra_labels or {})}}
    if pod_annotations:
        pod_meta["annotations"] = dict(pod_annotations)
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": _meta(spec, name, role, extra_labels, annotations),
        "spec": {"replicas": replicas, "selector": {"matchLabels": selector},
                 "template": {"metadata": pod_meta, "spec": {
                     "enableServiceLinks": False, "automountServiceAccountToken": False,
                     "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}, **pod_security}, **pod_spec}}}}
    if recreate:
        deployment["spec"]["strategy"] = {"type": "Recreate"}
    return deployment


def _service(spec: ClusterSpec, what: str, role: str, type_key: str, ports: Mapping[str, int], *,
             headless: bool = False) -> dict[str, Any]:
    service_spec: dict[str, Any] = {
        "type": spec.service_types[type_key], "selector": names.role_selector(spec.cluster, role),
        "ports": [{"name": port_name, "port": port, "targetPort": port, "protocol": "TCP"}
                  for port_name, port in ports.items()]}
    if headless:
        service_spec["clusterIP"] = "None"
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(spec, names.object_name(what, spec.cluster), role),
            "spec": service_spec}


# -- Redis ------------------------------------------------------------------------------------------------------
def redis_objects(spec: ClusterSpec, password: str) -> list[dict[str, Any]]:
    """The Secret with its password, the volume claim for its append-only file, its Service and Deployment."""
    claim = names.object_name("redis-data", spec.cluster)
    pvc_spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                                "resources": {"requests": {"storage": spec.redis_storage}}}
    if spec.storage_class:
        pvc_spec["storageClassName"] = spec.storage_class
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": _meta(spec, claim, Role.REDIS),
           "spec": pvc_spec}
    ping = ["sh", "-c", 'redis-cli -a "$REDIS_PASSWORD" --no-auth-warning ping | grep -q PONG']
    container = _container(
        spec, Role.REDIS, "redis", spec.redis_image, command=["redis-server"],
        # appendfsync always: registrations survive a crash of Redis or its node (the write rate is low).
        args=["--appendonly", "yes", "--appendfsync", "always", "--save", "", "--dir", "/data",
              "--protected-mode", "no", "--requirepass", "$(REDIS_PASSWORD)"],
        env=[_secret_env("REDIS_PASSWORD", names.object_name("redis-auth", spec.cluster), "password")],
        ports={"redis": PORTS["redis"]},
        readinessProbe={"exec": {"command": ping}, "periodSeconds": 2, "timeoutSeconds": 2, "failureThreshold": 3},
        livenessProbe=_tcp_probe(PORTS["redis"], 10, 3, delay=5))
    container["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    pod = {"containers": [container], "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}
    return [_secret(spec, "redis-auth", Role.REDIS, "password", password), pvc,
            _service(spec, "redis", Role.REDIS, "redis", {"redis": PORTS["redis"]}),
            # fsGroup: a fresh cloud volume is root's; the group it is given (and Redis's process joins) can write it,
            # whatever uid the Redis image runs as.
            _deployment(spec, names.object_name("redis", spec.cluster), Role.REDIS, 1, pod, recreate=True,
                        pod_security={"fsGroup": 1000, "fsGroupChangePolicy": "OnRootMismatch"})]


# -- frontends --------------------------------------------------------------------------------------------------
def management_objects(spec: ClusterSpec) -> list[dict[str, Any]]:
    """The management Service and Deployment: ``clipper admin-server``, whose autoscaler acts through a
    KubernetesContainerManager of this cluster with the pod's service account (``autoscaler-at-<cluster>``;
    none of that with ``spec.autoscaler`` off)."""
    env = _store_env(spec)
    if spec.autoscaler:
        env += [{"name": "CLIPPER_AUTOSCALE_MANAGER", "value": "kubernetes"},
                {"name": "CLIPPER_AUTOSCALE_MANAGER_OPTIONS",
                 "value": json.dumps(autoscaler_options(spec), sort_keys=True)}]
    if spec.has_admin_token:
        env.append(_secret_env("CLIPPER_ADMIN_TOKEN", names.object_name("admin-token", spec.cluster), "token"))
    port = PORTS["management"]
    # A TCP probe: with an admin token every HTTP endpoint, /admin/ping included, wants the token, and a probe
    # cannot carry a Secret. The manager itself pings /admin/ping with the token before it says the cluster is up.
    container = _container(
        spec, Role.MANAGEMENT, "mgmt-frontend", spec.management_image,
        command=["clipper", "admin-server", "--admin-host", "0.0.0.0", "--admin-port", str(port), "--no-replicas"],
        env=env, ports={"http": port},
        readinessProbe=_tcp_probe(port, 2, 3), livenessProbe=_tcp_probe(port, 10, 3, delay=10))
    pod: dict[str, Any] = {"containers": [container]}
    account: list[dict[str, Any]] = []
    if spec.autoscaler:
        pod.update(serviceAccountName=names.object_name("autoscaler", spec.cluster), automountServiceAccountToken=True)
        account = autoscaler_objects(spec)
    return [*account, _service(spec, "management", Role.MANAGEMENT, "management", {"http": port}),
            _deployment(spec, names.object_name("management", spec.cluster), Role.MANAGEMENT, 1, pod)]


def query_objects(spec: ClusterSpec) -> list[dict[str, Any]]:
    """The REST Service, the headless RPC Service and the Deployment of ``num_frontends`` query frontends."""
    query, rpc = PORTS["query"], PORTS["rpc"]
    command = ["clipper", "frontend", "--host", "0.0.0.0", "--query-port", str(query), "--rpc-host", "0.0.0.0",
               "--rpc-port", str(rpc), "--rpc-advertise", f"tcp://$(POD_IP):{rpc}"]
    if spec.cache_size is not None:
        command += ["--cache-size", str(spec.cache_size)]
    env = [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}, *_store_env(spec)]
    container = _container(spec, Role.QUERY, "query-frontend", spec.frontend_image, command=command, env=env,
                           ports={"http": query, "rpc": rpc},
                           # /health is readiness: it fails while the state store is away; liveness must not, or
                           # a rescheduled Redis would have every frontend killed.
                           readinessProbe=_http_probe("/health", query, 2, 3),
                           livenessProbe=_http_probe("/v2/health/live", query, 10, 3, delay=10))
    scrape = {"prometheus.io/scrape": "true", "prometheus.io/port": str(query), "prometheus.io/path": "/metrics"}
    return [_service(spec, "query", Role.QUERY, "query", {"http": query}),
            _service(spec, "query-rpc", Role.QUERY, "query-rpc", {"rpc": rpc}, headless=True),
            _deployment(spec, names.object_name("query", spec.cluster), Role.QUERY, spec.num_frontends,
                        {"containers": [container]}, pod_annotations=scrape)]


def namespace_object(namespace: str) -> dict[str, Any]:
    """The Namespace ``create_namespace_if_not_exists`` (``render --create-namespace``) creates."""
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {"app.kubernetes.io/managed-by": "clipper-kubernetes"}}}


def exposes_management(spec: ClusterSpec) -> bool:
    """Whether the management API can be reached from outside the cluster (then it always wants a token)."""
    return spec.service_types["management"] != "ClusterIP"


def cluster_secrets(spec: ClusterSpec, redis_password: str | None, admin_token: str | None, *,
                    proxied: bool = False) -> tuple[str | None, str | None, list[str]]:
    """The Redis password and admin token the cluster's Secrets hold: those given, else made where one is
    wanted (a managed Redis always has a password; a management API reachable from outside the cluster, and not
    through a proxy, which a token cannot cross, always a token); and what was made. One rule for the manager and
    ``clipper kubernetes render``."""
    made: list[str] = []
    if redis_password is None and spec.managed_redis:
        redis_password = secrets.token_hex(16)
        made.append("a Redis password")
    if admin_token is None and exposes_management(spec) and not proxied:
        admin_token = secrets.token_urlsafe(24)
        made.append("an admin token")
    return redis_password, admin_token, made


def cluster_objects(spec: ClusterSpec, *, redis_password: str | None, admin_token: str | None) -> list[dict[str, Any]]:
    """Every object ``start_clipper`` applies, in order. ``redis_password``: the managed Redis's (required with
    a managed Redis), or an external Redis's (None: it has none)."""
    objects: list[dict[str, Any]] = []
    if spec.managed_redis:
        if not redis_password:
            raise ClipperException("a managed Redis needs a password")
        objects += redis_objects(spec, redis_password)
    elif redis_password:
        objects.append(_secret(spec, "redis-auth", Role.REDIS, "password", redis_password))
    if admin_token:
        objects.append(_secret(spec, "admin-token", Role.MANAGEMENT, "token", admin_token))
    return objects + management_objects(spec) + query_objects(spec)


# -- models -----------------------------------------------------------------------------------------------------
def model_deployment(spec: ClusterSpec, model: ModelSpec) -> dict[str, Any]:
    """One Deployment per model version: ``replicas`` pods that dial the headless RPC Service, ready once a
    frontend has welcomed them (the ready file the model image's entrypoint writes)."""
    env = [{"name": "CLIPPER_MODEL_NAME", "value": model.model},
           {"name": "CLIPPER_MODEL_VERSION", "value": model.version},
           {"name": "CLIPPER_INPUT_TYPE", "value": model.input_type},
           {"name": "CLIPPER_IP", "value": names.object_name("query-rpc", spec.cluster)},
           {"name": "CLIPPER_PORT", "value": str(PORTS["rpc"])},
           # finish the batches held within the termination grace (drain + 5 s), then abandon the rest
           {"name": "CLIPPER_DRAIN_SECONDS", "value": str(spec.drain_seconds)}]
    # No liveness probe: a replica whose model fails exits (and is restarted); one whose frontends are away
    # reconnects by itself, and restarting it would only lose its loaded model.
    container = _container(spec, Role.MODEL, "model", model.image, env=env,
                           readinessProbe={"exec": {"command": ["cat", READY_FILE]}, "periodSeconds": 1,
                                           "timeoutSeconds": 2, "failureThreshold": 3})
    annotations = {names.MODEL_NAME_ANNOTATION: model.model, names.MODEL_VERSION_ANNOTATION: model.version,
                   names.INPUT_TYPE_ANNOTATION: model.input_type}
    pod = {"containers": [container], "terminationGracePeriodSeconds": spec.drain_seconds + 5}
    extra = {k: v for k, v in names.model_labels(spec.cluster, model.model, model.version).items()
             if k not in names.labels(spec.cluster, Role.MODEL)}
    return _deployment(spec, names.model_deployment_name(spec.cluster, model.model, model.version), Role.MODEL,
                       model.replicas, pod, extra_labels=extra, annotations=annotations, pod_annotations=annotations)
