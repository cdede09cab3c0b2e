"""``KubernetesContainerManager``: clipper on a Kubernetes cluster, with ``apps/v1`` Deployments and ``v1``
Services only (Clipper's manager used ``extensions/v1beta1``, which modern clusters removed: reference §3.4).

``start_clipper(num_frontend_replicas=N)`` applies the objects of :func:`clipper_kubernetes.manifests.cluster_objects`
(Redis with its volume claim and password Secret unless ``redis_ip`` is given, the management frontend, one
Deployment of N query frontends behind a REST Service and a headless RPC Service) and waits until each is ready.
Each model version is one Deployment (:func:`~clipper_kubernetes.manifests.model_deployment`) whose replicas join
every query frontend. Kubernetes keeps the replica counts (its Deployment controller replaces a pod that dies), so
unlike the Docker manager this one keeps no state of its own: ``connect()`` finds a cluster from its labels.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, ClassVar

from clipper_docker import names as docker_names

from clipper_core.client.admin_http import AdminClient
from clipper_core.errors import ClipperException
from clipper_core.interfaces import ContainerManager
from clipper_kubernetes import names
from clipper_kubernetes.addresses import node_address, service_address
from clipper_kubernetes.api import KubeApi, KubeConflict
from clipper_kubernetes.manifests import (
    ClusterSpec,
    ModelSpec,
    cluster_objects,
    cluster_secrets,
    model_deployment,
    namespace_object,
)
from clipper_kubernetes.names import Role, selector_text
from clipper_kubernetes.waits import (
    POLL,
    PodProblem,
    deployment_pods,
    ready_count,
    wait_deployments,
    wait_gone,
    wait_pods_gone,
)

__all__ = ["KubernetesContainerManager"]

log = logging.getLogger(__name__)
_AUTOSCALER_KINDS = ("RoleBinding", "Role", "ServiceAccount")
_CLUSTER_KINDS = ("Deployment", "Service", "Secret", "ConfigMap", *_AUTOSCALER_KINDS)
"""What ``stop_all`` deletes by the cluster's label (and the volume claim with ``remove_volumes``)."""


class KubernetesContainerManager(ContainerManager):
    """Runs clipper and its model replicas on Kubernetes. Clipper's constructor arguments, same defaults, plus:

    :param kubeconfig: a kubeconfig file (default ``$KUBECONFIG``, else ``~/.kube/config``; inside a pod with
        neither, the pod's service account)
    :param context: a context of that kubeconfig (default its current-context)
    :param kubernetes_proxy_addr: reach the Services through ``kubectl proxy`` at this ``host:port``
    :param useInternalIP: NodePort Services are reached on a node's InternalIP rather than its ExternalIP
    :param service_types: ``{"redis"|"management"|"query"|"query-rpc"|"metric": "ClusterIP"|"NodePort"|
        "LoadBalancer"}`` over :data:`~clipper_kubernetes.manifests.DEFAULT_SERVICE_TYPES` (ExternalName refused)
    :param resources: ``{"redis"|"management"|"query"|"model": {"requests": {...}, "limits": {...}}}``
    :param autoscaler: the management pod autoscales model versions (its ServiceAccount, Role and RoleBinding
        ``autoscaler-at-<cluster>``); False: none of them (for an account that may not create RBAC objects, or a
        frontend image without clipper-kubernetes)
    :param frontend_image, redis_image, model_base_image: clipper's images (built by containers/docker/build.sh;
        push them to a registry the nodes pull from and name them here)
    """

    name: ClassVar[str] = "kubernetes"
    supports_build: ClassVar[bool] = True

    def __init__(self, cluster_name: str = "default-cluster", kubernetes_proxy_addr: str | None = None,
                 redis_ip: str | None = None, redis_port: int = 6379, useInternalIP: bool = False,
                 namespace: str = "default", service_types: dict[str, str] | None = None,
                 create_namespace_if_not_exists: bool = False, kubeconfig: str | None = None,
                 context: str | None = None, *, redis_password: str | None = None, admin_token: str | None = None,
                 frontend_image: str = docker_names.DEFAULT_FRONTEND_IMAGE,
                 redis_image: str = docker_names.DEFAULT_REDIS_IMAGE,
                 model_base_image: str = docker_names.DEFAULT_MODEL_BASE_IMAGE,
                 resources: dict[str, dict[str, dict[str, str]]] | None = None, redis_storage: str = "1Gi",
                 storage_class: str | None = None, image_pull_policy: str = "IfNotPresent",
                 startup_timeout: float = 300.0, deploy_timeout: float = 300.0, request_timeout: float = 30.0,
                 drain_timeout: int = 10, docker_client: Any = None, build_offline: bool = True,
                 autoscaler: bool = True) -> None:
        self.spec = ClusterSpec(cluster=names.check_cluster_name(cluster_name), namespace=namespace,
                                frontend_image=frontend_image, management_image=frontend_image,
                                redis_image=redis_image, redis_ip=redis_ip, redis_port=redis_port,
                                redis_storage=redis_storage, storage_class=storage_class,
                                service_types=dict(service_types or {}), resources=dict(resources or {}),
                                image_pull_policy=image_pull_policy,
                                has_redis_password=redis_ip is None or bool(redis_password),
                                drain_seconds=drain_timeout, deploy_seconds=deploy_timeout, autoscaler=autoscaler)
        self.cluster, self.namespace = cluster_name, namespace
        self.proxy = kubernetes_proxy_addr
        self.use_internal_ip = useInternalIP
        self.create_namespace = create_namespace_if_not_exists
        self.kubeconfig, self.context = kubeconfig, context
        self.redis_password = redis_password
        self.admin_token = admin_token or os.environ.get("CLIPPER_ADMIN_TOKEN") or None
        self.model_base_image = model_base_image
        self.startup_timeout, self.deploy_timeout = startup_timeout, deploy_timeout
        self.request_timeout = request_timeout
        self.build_offline = build_offline
        self._docker = docker_client
        self._api: KubeApi | None = None
        self.addresses: dict[str, str] = {}

    # -- plumbing ---------------------------------------------------------------------------------------
    @property
    def api(self) -> KubeApi:
        if self._api is None:
            self._api = KubeApi(self.kubeconfig, self.context, timeout=self.request_timeout)
        return self._api

    def _selector(self, role: str | None = None) -> str:
        return selector_text(names.role_selector(self.cluster, role) if role else names.cluster_selector(self.cluster))

    def _admin(self, timeout: float = 30.0) -> AdminClient:
        if "admin" not in self.addresses:
            raise ClipperException("not connected: call start_clipper() or connect() first")
        return AdminClient(f"http://{self.addresses['admin']}", self.admin_token, timeout=timeout)

    def _check_namespace(self) -> None:
        self.api.check_reachable()
        if self.api.namespace_exists(self.namespace):
            return
        if not self.create_namespace:
            raise ClipperException(f"namespace {self.namespace!r} does not exist; create it, or pass "
                                   "create_namespace_if_not_exists=True")
        self.api.create_namespace(namespace_object(self.namespace))

    # -- starting ---------------------------------------------------------------------------------------
    def start_clipper(self, query_frontend_image: str | None = None, mgmt_frontend_image: str | None = None,
                      frontend_exporter_image: str | None = None, cache_size: int | None = None,
                      qf_http_thread_pool_size: int = 1, qf_http_timeout_request: int = 5,
                      qf_http_timeout_content: int = 300, num_frontend_replicas: int = 1, **ignored: Any) -> None:
        """Apply the cluster's objects and wait until Redis, the management frontend and every query frontend
        are ready. Clipper's HTTP tuning arguments and the exporter image are accepted and ignored."""
        deadline = time.monotonic() + self.startup_timeout
        self._check_namespace()
        existing = self.api.select("Deployment", self.namespace, self._selector())
        if existing:
            raise ClipperException(f"cluster {self.cluster!r} already runs in namespace {self.namespace!r} "
                                   f"({', '.join(d['metadata']['name'] for d in existing[:4])}); use connect() or "
                                   "stop_all()")
        # A managed Redis gets a fresh password at every start (a given redis_password is an external one's); a
        # management API reachable from outside the cluster is never left open: a token is made (kept in its
        # Secret, where connect() finds it; this manager's admin_token holds it).
        given = None if self.spec.managed_redis else self.redis_password
        password, self.admin_token, made = cluster_secrets(self.spec, given, self.admin_token,
                                                           proxied=bool(self.proxy))
        if "an admin token" in made:
            log.info("cluster %s: the management API is exposed; it requires the admin token this manager made",
                     self.cluster)
        self._check_proxy_token()
        spec = self.spec.replace(num_frontends=num_frontend_replicas, cache_size=cache_size,
                                 frontend_image=query_frontend_image or self.spec.frontend_image,
                                 management_image=mgmt_frontend_image or self.spec.management_image,
                                 has_admin_token=bool(self.admin_token))
        if not self.proxy and "NodePort" in (spec.service_types["management"], spec.service_types["query"]):
            node_address(self.api, self.use_internal_ip)  # before anything is made: a 403 on nodes, no nodes
        try:
            for obj in cluster_objects(spec, redis_password=password, admin_token=self.admin_token):
                self._create(obj)
            order = ([names.object_name("redis", self.cluster)] if spec.managed_redis else []) + [
                names.object_name("management", self.cluster), names.object_name("query", self.cluster)]
            wait_deployments(self.api, self.namespace, order, max(1.0, deadline - time.monotonic()),
                             f"starting {self.cluster}")
            self._discover(deadline)
            self._wait_admin(deadline)
        except BaseException:
            with contextlib.suppress(Exception):
                self._delete_cluster_objects(grace_seconds=1)
            raise
        self.spec = spec

    def _create(self, obj: dict[str, Any]) -> None:
        """Create one of the cluster's objects; one that exists means another start of the same cluster is under
        way or left it (its volume claim excepted: it keeps the registrations for the next start)."""
        if obj["kind"] == "PersistentVolumeClaim":
            self.api.apply(obj)
            return
        try:
            self.api.create(obj)
        except KubeConflict:
            raise ClipperException(f"cluster {self.cluster!r}: the {obj['kind']} {obj['metadata']['name']} exists "
                                   "already (another start_clipper of this cluster, or what one left: stop_all() "
                                   "removes it)") from None

    def _check_proxy_token(self) -> None:
        if self.proxy and self.admin_token:
            raise ClipperException("an admin token cannot travel through kubernetes_proxy_addr: the API server "
                                   "takes the Authorization header for itself. Reach the management Service as a "
                                   "NodePort or LoadBalancer, or run it without a token (and as ClusterIP)")

    def _discover(self, deadline: float | None = None) -> None:
        """The addresses of the management and query Services, as this process reaches them. A LoadBalancer
        Service is waited for (until ``deadline``) to get its ingress address."""
        addresses = {}
        for key, what, port in (("admin", "management", "http"), ("query", "query", "http")):
            name = names.object_name(what, self.cluster)
            while True:
                service = self.api.read("Service", self.namespace, name)
                if service is None:
                    raise ClipperException(f"cluster {self.cluster!r}: the Service {name} is missing in namespace "
                                           f"{self.namespace!r}")
                pending = (service["spec"].get("type") == "LoadBalancer" and not self.proxy
                           and not ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress"))
                if not pending or deadline is None or time.monotonic() > deadline:
                    break
                time.sleep(POLL)
            addresses[key] = service_address(self.api, service, port, self.use_internal_ip, self.proxy)
        self.addresses = addresses

    def _wait_admin(self, deadline: float) -> None:
        """The management frontend answers through its Service (a node port can take a moment to forward)."""
        while not self._admin(timeout=5).ping():
            if time.monotonic() > deadline:
                raise ClipperException(f"the management frontend of {self.cluster!r} does not answer on "
                                       f"{self.addresses['admin']}")
            time.sleep(0.25)

    def connect(self) -> None:
        """Find the running cluster from its labels and read its Services' addresses (and the admin token from
        its Secret, when this manager was given none)."""
        self._check_namespace()
        found = self.api.select("Deployment", self.namespace, self._selector(Role.MANAGEMENT))
        if not found:
            raise ClipperException(f"no clipper cluster {self.cluster!r} runs in namespace {self.namespace!r}")
        if self.admin_token is None:
            self.admin_token = self._read_admin_token()
        self._check_proxy_token()
        query = self.api.read("Deployment", self.namespace, names.object_name("query", self.cluster))
        frontends = int(((query or {}).get("spec") or {}).get("replicas") or 1)
        self.spec = self.spec.replace(num_frontends=frontends, has_admin_token=bool(self.admin_token))
        self._discover()
        if not self._admin(timeout=10).ping():
            raise ClipperException(f"cluster {self.cluster!r}: the management frontend does not answer on "
                                   f"{self.addresses['admin']}")

    def _read_admin_token(self) -> str | None:
        secret = self.api.read("Secret", self.namespace, names.object_name("admin-token", self.cluster))
        token = ((secret or {}).get("data") or {}).get("token")
        return base64.b64decode(token).decode() if token else None

    def get_admin_addr(self) -> str:
        return self._addr("admin")

    def get_query_addr(self) -> str:
        return self._addr("query")

    def get_metric_addr(self) -> str:
        return self._addr("query")  # the query frontends serve /metrics (and carry Prometheus scrape annotations)

    def _addr(self, key: str) -> str:
        if key not in self.addresses:
            raise ClipperException("not connected: call start_clipper() or connect() first")
        return self.addresses[key]

    # -- models -----------------------------------------------------------------------------------------
    def build_model(self, name: str, version: str, model_data_path: str, base_image: str | None = None,
                    pkgs_to_install: list[str] | None = None, container_registry: str | None = None) -> str:
        """Build ``[<registry>/]<cluster>-<name>:<version>`` with the Docker plugin's builder (on ``DOCKER_HOST``),
        and push it when ``container_registry`` is given: the nodes must be able to pull what they run."""
        from clipper_docker.images import build_cluster_model_image, push_image

        client = self._docker_client()
        tag = build_cluster_model_image(client, self.cluster, name, str(version), model_data_path, base_image,
                                        pkgs_to_install, self.model_base_image, container_registry,
                                        offline=self.build_offline)
        if container_registry:
            push_image(client, tag)
        return tag

    def _docker_client(self) -> Any:
        if self._docker is None:
            import docker

            try:
                self._docker = docker.from_env(timeout=120)
                self._docker.ping()
            except docker.errors.DockerException as exc:
                raise ClipperException(f"build_model needs a Docker engine (DOCKER_HOST="
                                       f"{os.environ.get('DOCKER_HOST', 'unset')}): {exc}") from None
        return self._docker

    def _model_name(self, name: str, version: str) -> str:
        return names.model_deployment_name(self.cluster, name, str(version))

    def deploy_model(self, name: str, version: str, input_type: str, image: str, num_replicas: int = 1) -> None:
        """Create (or replace) the version's Deployment with ``num_replicas`` replicas and wait until they are
        ready: running and welcomed by a frontend."""
        self._check_replicas(num_replicas)
        model = ModelSpec(name, str(version), input_type, image, num_replicas)
        previous = self.api.read("Deployment", self.namespace, self._model_name(name, version))
        self.api.apply(model_deployment(self.spec, model))
        self._wait_model(name, str(version), previous)

    def set_num_replicas(self, name: str, version: str, input_type: str, image: str, num_replicas: int) -> None:
        """Scale the version's Deployment (its scale subresource) and wait until ``num_replicas`` are ready; a
        version without a Deployment (or with another image) gets one (or is rolled to it)."""
        self._check_replicas(num_replicas)
        current = self.api.read("Deployment", self.namespace, self._model_name(name, version))
        if current is None:
            if num_replicas:
                self.deploy_model(name, version, input_type, image, num_replicas)
            return
        containers = current["spec"]["template"]["spec"]["containers"]
        if num_replicas and containers[0].get("image") != image:
            self.deploy_model(name, version, input_type, image, num_replicas)
            return
        self.api.scale(self.namespace, current["metadata"]["name"], num_replicas)
        self._wait_model(name, str(version))

    @staticmethod
    def _check_replicas(n: int) -> None:
        if not 0 <= n <= 1024:
            raise ClipperException(f"num_replicas is {n}; expected 0 to 1024")

    def _wait_model(self, name: str, version: str, previous: dict[str, Any] | None = None) -> None:
        """Wait for the version's Deployment. When its new pods cannot start: with no replica ready, the
        Deployment is scaled to 0 (every pod would fail alike, retrying forever); with some ready (a scale-up
        or a new image), the ones serving are left alone and a new image is rolled back to ``previous``."""
        deployment = self._model_name(name, version)
        try:
            wait_deployments(self.api, self.namespace, [deployment], self.deploy_timeout, f"{name}:{version}")
        except PodProblem as exc:
            current = self.api.read("Deployment", self.namespace, deployment)
            serving = ready_count(deployment_pods(self.api, current)) if current else 0
            if not serving:
                with contextlib.suppress(ClipperException):
                    self.api.scale(self.namespace, deployment, 0)
                raise PodProblem(f"{exc}\n(the Deployment {deployment} was scaled to 0)") from None
            note = f"{serving} ready replicas keep serving"
            if previous is not None and current is not None:
                rollback = json.loads(json.dumps(current))
                rollback["spec"]["template"] = previous["spec"]["template"]
                with contextlib.suppress(ClipperException):
                    self.api.replace(rollback)
                    note += "; the Deployment was rolled back to its previous pods"
            raise PodProblem(f"{exc}\n({note})") from None

    def get_num_replicas(self, name: str, version: str) -> int:
        deployment = self.api.read("Deployment", self.namespace, self._model_name(name, version))
        return int(((deployment or {}).get("status") or {}).get("readyReplicas") or 0)

    def get_logs(self, logging_dir: str) -> list[str]:
        """Write each pod's log (each container's, timestamped) to ``<logging_dir>/<pod>.log``."""
        target = Path(logging_dir)
        target.mkdir(parents=True, exist_ok=True)
        paths = []
        for pod in self.api.select("Pod", self.namespace, self._selector()):
            pod_name = pod["metadata"]["name"]
            containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
            for container in containers:
                try:
                    text = self.api.pod_log(self.namespace, pod_name, container)
                except ClipperException as exc:
                    log.warning("no log of %s/%s: %s", pod_name, container, exc)
                    continue
                file = target / (f"{pod_name}.log" if len(containers) == 1 else f"{pod_name}-{container}.log")
                file.write_text(text)
                paths.append(str(file))
        return paths

    def stop_models(self, models: dict[str, list[str]]) -> None:
        """Delete the Deployments of the given versions and wait until their pods are gone."""
        selectors = [selector_text(names.model_selector(self.cluster, name, str(v)))
                     for name, versions in models.items() for v in versions]
        self._delete_deployments(selectors)

    def stop_all_model_containers(self) -> None:
        self._delete_deployments([selector_text(names.model_selector(self.cluster))])

    def _delete_deployments(self, selectors: list[str], grace_seconds: int | None = None) -> None:
        for selector in selectors:
            for deployment in self.api.select("Deployment", self.namespace, selector):
                self.api.delete("Deployment", self.namespace, deployment["metadata"]["name"])
            if grace_seconds is not None:
                for pod in self.api.select("Pod", self.namespace, selector):
                    self.api.delete("Pod", self.namespace, pod["metadata"]["name"], grace_seconds)
        for selector in selectors:
            wait_pods_gone(self.api, self.namespace, selector, self.deploy_timeout, "stopping replicas")

    # -- stopping ---------------------------------------------------------------------------------------
    def stop_all(self, graceful: bool = True, remove_volumes: bool = False) -> None:
        """Delete every object labelled with this cluster (the model replicas first, while the frontends take
        their goodbyes; then the frontends and Redis) and wait until their pods are gone; ``graceful=False``
        gives the pods 1 s (not 0, which would remove the pod objects while their containers still run). The
        Redis volume claim, and so every registration, is kept for the next start unless ``remove_volumes``
        (then waited for until it is gone too)."""
        self._delete_cluster_objects(grace_seconds=None if graceful else 1)
        if remove_volumes:
            for claim in self.api.select("PersistentVolumeClaim", self.namespace, self._selector()):
                self.api.delete("PersistentVolumeClaim", self.namespace, claim["metadata"]["name"])
                wait_gone(self.api, "PersistentVolumeClaim", self.namespace, claim["metadata"]["name"],
                          self.deploy_timeout)
        self.addresses = {}

    def _delete_cluster_objects(self, grace_seconds: int | None) -> None:
        # The management frontend first (its autoscaler would start replicas again), then the replicas, while the
        # query frontends are up to take their goodbyes; Redis with the frontends.
        self._delete_deployments([self._selector(Role.MANAGEMENT)], grace_seconds)
        self._delete_deployments([self._selector(Role.MODEL)], grace_seconds)
        self._delete_deployments([self._selector(role) for role in (Role.QUERY, Role.REDIS)], grace_seconds)
        for kind in _CLUSTER_KINDS:
            try:
                found = self.api.select(kind, self.namespace, self._selector())
            except ClipperException as exc:
                if exc.status == 403 and kind in _AUTOSCALER_KINDS:  # an account that never made them
                    log.info("cluster %s: may not list %ss (%s); none were made by it", self.cluster, kind, exc)
                    continue
                raise
            for obj in found:
                self.api.delete(kind, self.namespace, obj["metadata"]["name"])
        wait_pods_gone(self.api, self.namespace, self._selector(), self.deploy_timeout, f"stopping {self.cluster}")
