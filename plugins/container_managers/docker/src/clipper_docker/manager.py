"""``DockerContainerManager``: clipper on one Docker engine, as Clipper's Docker mode ran it (reference §3.3).

``start_clipper`` creates, on a user-defined bridge network and all labelled with the cluster name:

* ``<cluster>-redis``: the state store, append-only file on the named volume ``clipper-<cluster>-redis``
  (skipped when ``redis_ip`` names an existing Redis);
* ``<cluster>-mgmt-frontend``: ``clipper admin-server`` (the management REST API);
* ``<cluster>-query-frontend-<i>``: ``clipper frontend`` (query REST API and the RPC port replicas dial);
* ``<cluster>-supervisor``: replaces replicas that die or are stopped from outside (``supervise=True``).

Model replicas are containers ``<cluster>-<model>-<version>-<random>`` whose desired counts are kept in the
cluster's Redis (see :mod:`clipper_docker.replicas`). Every wait is bounded; readiness is checked (Redis
PING, ``/admin/ping``, ``/health``, each replica's ready file), never assumed.

This class keeps the user-facing state and order of things; the work is done in :mod:`clipper_docker.cluster`
(starting and removing the cluster's own containers), :mod:`clipper_docker.discovery` (reading a running
cluster's ports back), :mod:`clipper_docker.readiness` (the waits) and :mod:`clipper_docker.images`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import docker
import redis
from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container

from clipper_core.client.admin_http import AdminClient, health_ok
from clipper_core.errors import ClipperException
from clipper_core.interfaces import ContainerManager
from clipper_docker import names
from clipper_docker.cluster import ClusterContainers, internal_redis_url
from clipper_docker.discovery import discover
from clipper_docker.images import BUILD_HINT, build_cluster_model_image, ensure_image
from clipper_docker.names import Role
from clipper_docker.ports import resolve_publish_ip
from clipper_docker.readiness import POLL, fail_if_exited, wait_replicas
from clipper_docker.replicas import DesiredState, Reconciler, ReplicaSpec

__all__ = ["DockerContainerManager"]

log = logging.getLogger(__name__)


class DockerContainerManager(ContainerManager):
    """Runs clipper and its model replicas as containers on a Docker engine (``DOCKER_HOST`` or the default).

    Clipper's constructor arguments, same defaults; host ports are published on ``docker_ip_address`` (the
    requested port, else the first free one above it; 0 lets Docker choose) and rediscovered by ``connect()``.

    :param cluster_name: labels every container; two clusters on one engine do not collide
    :param redis_ip: an existing Redis (reachable from the containers) instead of a managed one
    :param extra_container_kwargs: extra ``docker.containers.run`` arguments for every container
    :param supervise: run the supervisor container, which replaces replicas that die (it mounts the Docker
        socket: ``docker_socket``, default the engine's own unix socket, else ``/var/run/docker.sock``)
    :param build_offline: ``pkgs_to_install`` are installed from wheels downloaded on this machine
    :param state_url: the cluster's Redis as this process reaches it, instead of discovering it (the management
        container's autoscaler makes its manager so: it runs on the cluster's network)
    """

    name: ClassVar[str] = "docker"
    supports_build: ClassVar[bool] = True

    def __init__(self, cluster_name: str = "default-cluster", docker_ip_address: str = "localhost",
                 use_centralized_log: bool = False, fluentd_port: int = 24224, clipper_query_port: int = 1337,
                 clipper_management_port: int = 1338, clipper_rpc_port: int = 7000, redis_ip: str | None = None,
                 redis_port: int = 6379, prometheus_port: int = 9090, docker_network: str = "clipper_network",
                 extra_container_kwargs: dict[str, Any] | None = None, *, redis_password: str | None = None,
                 admin_token: str | None = None, frontend_image: str = names.DEFAULT_FRONTEND_IMAGE,
                 redis_image: str = names.DEFAULT_REDIS_IMAGE, model_base_image: str = names.DEFAULT_MODEL_BASE_IMAGE,
                 supervise: bool = True, docker_client: docker.DockerClient | None = None,
                 docker_socket: str | None = None, startup_timeout: float = 120.0, deploy_timeout: float = 180.0,
                 drain_timeout: float = 10.0, build_offline: bool = True, state_url: str | None = None) -> None:
        if use_centralized_log:
            raise ClipperException("centralized logging (fluentd) is not supported; get_logs() collects every "
                                   "container's log")
        if docker_network == "host":
            raise ClipperException("docker_network='host' is not supported: clipper needs a bridge network")
        self.cluster = names.check_cluster_name(cluster_name)
        self.docker_ip_address = docker_ip_address
        self.ip = resolve_publish_ip(docker_ip_address)
        self.wanted = {"query": clipper_query_port, "admin": clipper_management_port, "rpc": clipper_rpc_port,
                       "redis": redis_port}
        self.redis_ip, self.redis_port, self.redis_password = redis_ip, redis_port, redis_password
        self.network = docker_network
        self.extra = dict(extra_container_kwargs or {})
        self.admin_token = admin_token or os.environ.get("CLIPPER_ADMIN_TOKEN") or None
        self.frontend_image, self.redis_image, self.model_base_image = frontend_image, redis_image, model_base_image
        self.supervise = supervise
        self.docker_socket = docker_socket
        self.startup_timeout, self.deploy_timeout, self.drain_timeout = startup_timeout, deploy_timeout, drain_timeout
        self.build_offline = build_offline
        self._client = docker_client
        self._redis: redis.Redis | None = None
        self.redis_url = state_url or ""
        """The state store as this process reaches it (the containers use the network-internal name); given
        (``state_url``) inside the cluster's own management container, where its autoscaler uses this manager."""
        self.ports: dict[str, Any] = {}
        _ = (fluentd_port, prometheus_port)  # Clipper's; no fluentd or Prometheus containers here

    # -- plumbing ---------------------------------------------------------------------------------------
    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            try:
                self._client = docker.from_env(timeout=120)
                self._client.ping()
            except DockerException as exc:
                raise ClipperException(f"cannot reach the Docker engine (DOCKER_HOST="
                                       f"{os.environ.get('DOCKER_HOST', 'unset')}): {exc}") from None
        return self._client

    @property
    def state(self) -> DesiredState:
        if self._redis is None:
            if not self.redis_url:
                raise ClipperException("not connected: call start_clipper() or connect() first")
            self._redis = redis.Redis.from_url(self.redis_url, socket_timeout=10, socket_connect_timeout=5)
        return DesiredState(self._redis, self.cluster)

    @property
    def reconciler(self) -> Reconciler:
        return Reconciler(self.client, self.cluster, self.network, self.extra, self.drain_timeout)

    @property
    def cluster_containers(self) -> ClusterContainers:
        """Starts and removes this cluster's own containers (see :mod:`clipper_docker.cluster`)."""
        return ClusterContainers(self.client, self.cluster, self.network, self.ip, self.extra, self.drain_timeout)

    def containers(self, role: str | None = None, all: bool = True) -> list[Container]:
        """This cluster's containers (by label), optionally of one role."""
        return self.cluster_containers.find(role, all)

    def _admin(self) -> AdminClient:
        if "admin" not in self.ports:
            raise ClipperException("not connected: call start_clipper() or connect() first")
        return AdminClient(f"http://{self.get_admin_addr()}", self.admin_token, timeout=30)

    # -- starting ---------------------------------------------------------------------------------------
    def start_clipper(self, query_frontend_image: str | None = None, mgmt_frontend_image: str | None = None,
                      frontend_exporter_image: str | None = None, cache_size: int | None = None,
                      qf_http_thread_pool_size: int = 1, qf_http_timeout_request: int = 5,
                      qf_http_timeout_content: int = 300, num_frontend_replicas: int = 1, **ignored: Any) -> None:
        """Start Redis (unless external), the management frontend, ``num_frontend_replicas`` query frontends
        and the supervisor; wait until each answers; restart the replicas the cluster's Redis remembers.
        Clipper's HTTP tuning arguments and the exporter image are accepted and ignored."""
        existing = self.containers()
        if existing:
            raise ClipperException(f"cluster {self.cluster!r} already has {len(existing)} containers "
                                   f"({', '.join(c.name for c in existing[:4])}...); use connect() or stop_all()")
        if num_frontend_replicas < 1:
            raise ClipperException("num_frontend_replicas must be at least 1")
        frontend_image = query_frontend_image or self.frontend_image
        admin_image = mgmt_frontend_image or self.frontend_image
        for image in {frontend_image, admin_image} | ({self.redis_image} if self.redis_ip is None else set()):
            ensure_image(self.client, image, BUILD_HINT)
        own = self.cluster_containers
        own.ensure_network()
        try:
            password = self.redis_password
            if self.redis_ip is None:
                password = secrets.token_hex(16)
                own.start_redis(self.redis_image, password, self.wanted["redis"])
            store = internal_redis_url(self.cluster, self.redis_ip, self.redis_port, password)
            own.start_management(admin_image, store, self.admin_token, self.wanted["admin"], self.docker_socket)
            own.start_query_frontends(frontend_image, store, num_frontend_replicas, cache_size,
                                      self.wanted["query"], self.wanted["rpc"])
            if self.supervise:
                own.start_supervisor(self.frontend_image, store, self.docker_socket)
            self._discover()
            self._wait_started()
        except BaseException:
            own.remove_all(graceful=False)
            raise
        self._restore_replicas()

    def _discover(self) -> None:
        """Read the published ports (and the state store's address) back from the running containers."""
        found = discover(self.containers(all=False), self.cluster, self.ip)
        if self.admin_token is None and found.admin_token:
            self.admin_token = found.admin_token
        self.ports, self.redis_url, self._redis = found.ports, found.redis_url, None

    def _wait_started(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        checks: list[tuple[str, Callable[[], bool]]] = [("Redis", self._redis_ready),
                                                        ("management frontend", lambda: self._admin().ping())]
        for i in range(len(self.ports["query"])):
            checks.append((f"query frontend {i}", functools.partial(self._query_ready, i)))
        for what, check in checks:
            while not check():
                fail_if_exited(self.containers())
                if time.monotonic() > deadline:
                    raise ClipperException(f"{what} of cluster {self.cluster!r} did not become ready within "
                                           f"{self.startup_timeout:.0f} s; see get_logs()")
                time.sleep(POLL)

    def _redis_ready(self) -> bool:
        try:
            return bool(self.state.redis.ping())
        except redis.RedisError:
            return False

    def _query_ready(self, i: int) -> bool:
        return health_ok(f"{self.ip}:{self.ports['query'][i]}")

    def _restore_replicas(self) -> None:
        """Replicas the cluster ran before its last stop_all (its Redis remembers them), as the local manager
        restores its replicas on restart."""
        specs = [s for s in self.state.all() if s.num_replicas > 0]
        for spec in specs:
            try:
                self.set_num_replicas(spec.model, spec.version, spec.input_type, spec.image, spec.num_replicas)
            except ClipperException as exc:
                log.warning("could not restore %s:%s: %s", spec.model, spec.version, exc)

    def connect(self) -> None:
        self._discover()
        if not self._admin().ping():
            raise ClipperException(f"cluster {self.cluster!r}: the management frontend does not answer on "
                                   f"{self.get_admin_addr()}")

    def get_admin_addr(self) -> str:
        return f"{self.ip}:{self.ports.get('admin') or self.wanted['admin']}"

    def get_query_addr(self) -> str:
        return f"{self.ip}:{self.ports['query'][0] if self.ports.get('query') else self.wanted['query']}"

    def get_query_addrs(self) -> list[str]:
        """Every query frontend's ``host:port`` (``num_frontend_replicas`` > 1)."""
        return [f"{self.ip}:{port}" for port in self.ports.get("query", [])]

    def get_metric_addr(self) -> str:
        return self.get_query_addr()  # the query frontend serves /metrics

    # -- models -----------------------------------------------------------------------------------------
    def build_model(self, name: str, version: str, model_data_path: str, base_image: str | None = None,
                    pkgs_to_install: list[str] | None = None, container_registry: str | None = None) -> str:
        """Build ``<cluster>-<name>:<version>`` FROM ``base_image`` with the model directory at /model and
        ``pkgs_to_install`` installed; returns the image name. The default base is clipper/model-base, or, for a
        model directory written by a framework deployer (its manifest's ``deployer``), that framework's image
        (``clipper/model-sklearn``, ``-pytorch``, ``-tensorflow``, ``-xgboost``)."""
        return build_cluster_model_image(self.client, self.cluster, name, str(version), model_data_path, base_image,
                                         pkgs_to_install, self.model_base_image, container_registry,
                                         offline=self.build_offline)

    def deploy_model(self, name: str, version: str, input_type: str, image: str, num_replicas: int = 1) -> None:
        self.set_num_replicas(name, version, input_type, image, num_replicas)

    def set_num_replicas(self, name: str, version: str, input_type: str, image: str, num_replicas: int) -> None:
        """Record the desired count, start or drain replicas, and wait until ``num_replicas`` are ready."""
        if not 0 <= num_replicas <= 256:
            raise ClipperException(f"num_replicas is {num_replicas}; expected 0 to 256")
        version = str(version)
        if num_replicas:
            ensure_image(self.client, image, BUILD_HINT)
        spec = ReplicaSpec(name, version, input_type, image, num_replicas,
                           frontend=names.container_name(self.cluster, Role.QUERY, 0))
        with self.state.lock():
            if num_replicas:
                self.state.put(spec)
            else:
                self.state.delete(name, version)
            self.reconciler.reconcile(spec if num_replicas else None, name, version)
        self._wait_replicas(name, version, num_replicas)

    def get_num_replicas(self, name: str, version: str) -> int:
        return sum(1 for c in self.reconciler.replicas(name, str(version)) if Reconciler.alive(c))

    def _wait_replicas(self, name: str, version: str, n: int) -> None:
        wait_replicas(self.reconciler, self._admin, name, version, n, self.deploy_timeout)

    def get_logs(self, logging_dir: str) -> list[str]:
        """Write each container's log (stdout and stderr, timestamped) to ``<logging_dir>/<container>.log``."""
        target = Path(logging_dir)
        target.mkdir(parents=True, exist_ok=True)
        paths = []
        for container in self.containers():
            with contextlib.suppress(NotFound, APIError):
                path = target / f"{container.name}.log"
                path.write_bytes(container.logs(stdout=True, stderr=True, timestamps=True))
                paths.append(str(path))
        return paths

    def stop_models(self, models: dict[str, list[str]]) -> None:
        """Drain and remove every replica of the given versions (in parallel); forget their desired counts."""
        pairs = [(name, str(v)) for name, versions in models.items() for v in versions]
        with self.state.lock():
            for name, version in pairs:
                self.state.delete(name, version)
            containers = [c for name, version in pairs for c in self.reconciler.replicas(name, version)]
            self.reconciler.drain(containers)

    def stop_all_model_containers(self) -> None:
        with self.state.lock():
            self.state.redis.delete(self.state.key)
            self.reconciler.drain(self.reconciler.replicas())

    # -- stopping ---------------------------------------------------------------------------------------
    def stop_all(self, graceful: bool = True, remove_volumes: bool = False) -> None:
        """Remove every container labelled with this cluster (replicas drained first when ``graceful``).
        The Redis volume, and so every registration and replica count, is kept for the next start unless
        ``remove_volumes``."""
        own = self.cluster_containers
        own.remove_all(graceful)
        if remove_volumes:
            own.remove_volume()
        own.remove_network()  # shared by clusters: removed once the last one is gone
        self.ports, self.redis_url, self._redis = {}, "", None
