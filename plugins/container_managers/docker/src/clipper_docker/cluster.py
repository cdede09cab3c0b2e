"""The cluster's own containers (Redis, the management and query frontends, the supervisor) and their network:
starting them with their host ports published on the manager's address, and removing the whole cluster.

Model replicas are :mod:`clipper_docker.replicas`' business; :meth:`ClusterContainers.remove_all` only drains
them, in their turn, with everything else labelled with the cluster.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import urllib.parse
from typing import Any

import docker
from docker.errors import APIError, NotFound
from docker.models.containers import Container

from clipper_core.errors import ClipperException
from clipper_docker import names
from clipper_docker.names import CLUSTER_LABEL, ROLE_LABEL, Role
from clipper_docker.ports import find_free_port, port_in_use_error
from clipper_docker.replicas import Reconciler, labels_of, merge_kwargs

__all__ = ["ClusterContainers", "internal_redis_url"]

log = logging.getLogger("clipper_docker.manager")  # the manager's warnings, under the manager's logger


def internal_redis_url(cluster: str, redis_ip: str | None, redis_port: int, password: str | None) -> str:
    """The state store as the cluster's containers reach it: ``redis_ip`` when external, else the managed
    Redis by its container name on the cluster's network."""
    auth = f":{urllib.parse.quote(password, safe='')}@" if password else ""
    if redis_ip is not None:
        return f"redis://{auth}{redis_ip}:{redis_port}/0"
    return f"redis://{auth}{names.container_name(cluster, Role.REDIS)}:{names.REDIS_PORT}/0"


def _socket_path(docker_socket: str | None) -> str:
    """The engine's socket on the host, to mount into the containers that drive the engine."""
    if docker_socket is not None:
        return docker_socket
    host = os.environ.get("DOCKER_HOST", "")
    return host[len("unix://"):] if host.startswith("unix://") else "/var/run/docker.sock"


def _nth(port: int, i: int) -> int:
    return port + i if port else 0


class ClusterContainers:
    """Starts and removes the containers of one cluster on its bridge network."""

    def __init__(self, client: docker.DockerClient, cluster: str, network: str, ip: str,
                 extra_container_kwargs: dict[str, Any] | None = None, drain_timeout: float = 10.0) -> None:
        self.client = client
        self.cluster = cluster
        self.network = network
        self.ip = ip
        """Where host ports are published."""
        self.extra = extra_container_kwargs if extra_container_kwargs is not None else {}
        self.drain_timeout = drain_timeout

    @property
    def redis_volume(self) -> str:
        return f"clipper-{self.cluster}-redis"

    def find(self, role: str | None = None, all: bool = True) -> list[Container]:
        """This cluster's containers (by label), optionally of one role."""
        filters = [f"{CLUSTER_LABEL}={self.cluster}"] + ([f"{ROLE_LABEL}={role}"] if role else [])
        found = self.client.containers.list(all=all, filters={"label": filters}, ignore_removed=True)
        return sorted(found, key=lambda c: c.name)

    # -- starting ---------------------------------------------------------------------------------------
    def ensure_network(self) -> None:
        for attempt in range(3):
            if any(n.name == self.network for n in self.client.networks.list(names=[self.network])):
                return
            try:
                self.client.networks.create(self.network, driver="bridge", check_duplicate=True,
                                            labels={names.NETWORK_LABEL: "true"})
                return
            except APIError:
                if attempt == 2:
                    raise

    def start_redis(self, image: str, password: str, host_port: int) -> None:
        volume = self.redis_volume
        self.client.volumes.create(name=volume, labels={CLUSTER_LABEL: self.cluster, names.VOLUME_LABEL: "redis"})
        # appendfsync always: registrations survive a crash of Redis or the host (the write rate is low).
        command = ["sh", "-c", 'exec redis-server --appendonly yes --appendfsync always --save "" --dir /data '
                               '--protected-mode no --requirepass "$REDIS_PASSWORD"']
        self.run(Role.REDIS, None, image, {"REDIS_PASSWORD": password}, command,
                 {names.REDIS_PORT: host_port}, {}, volumes={volume: {"bind": "/data", "mode": "rw"}})

    def start_management(self, image: str, store: str, admin_token: str | None, host_port: int,
                         docker_socket: str | None = None) -> None:
        """The management frontend. Its autoscaler acts through a DockerContainerManager of this cluster inside
        the container, over the engine's socket (mounted, as the supervisor's) and the cluster's Redis."""
        env = {"CLIPPER_STATE_STORE": store, "DOCKER_HOST": "unix:///var/run/docker.sock",
               "CLIPPER_AUTOSCALE_MANAGER": "docker"}
        options: dict[str, Any] = {"cluster_name": self.cluster, "docker_network": self.network, "state_url": store,
                                   "supervise": False}
        extra = self._extra_json("the autoscaler")
        if extra is not None:
            options["extra_container_kwargs"] = self.extra
        env["CLIPPER_AUTOSCALE_MANAGER_OPTIONS"] = json.dumps(options)
        if admin_token:
            env["CLIPPER_ADMIN_TOKEN"] = admin_token
        self.run(Role.MANAGEMENT, None, image, env,
                 ["clipper", "admin-server", "--admin-host", "0.0.0.0", "--admin-port", str(names.MANAGEMENT_PORT),
                  "--no-replicas"], {names.MANAGEMENT_PORT: host_port},
                 {names.MANAGEMENT_LABEL: "true"}, user="0",
                 volumes={_socket_path(docker_socket): {"bind": "/var/run/docker.sock", "mode": "rw"}})

    def start_query_frontends(self, image: str, store: str, count: int, cache_size: int | None,
                              query_port: int, rpc_port: int) -> None:
        """``count`` query frontends; the i-th publishes ``query_port + i`` and ``rpc_port + i`` (0: Docker picks)."""
        for i in range(count):
            host = names.container_name(self.cluster, Role.QUERY, i)
            command = ["clipper", "frontend", "--host", "0.0.0.0", "--query-port", str(names.QUERY_PORT),
                       "--rpc-host", "0.0.0.0", "--rpc-port", str(names.RPC_PORT),
                       "--rpc-advertise", f"tcp://{host}:{names.RPC_PORT}"]
            if cache_size is not None:
                command += ["--cache-size", str(cache_size)]
            self.run(Role.QUERY, i, image, {"CLIPPER_STATE_STORE": store}, command,
                     {names.QUERY_PORT: _nth(query_port, i),
                      names.RPC_PORT: _nth(rpc_port, i)}, {names.QUERY_FRONTEND_LABEL: str(i)})

    def start_supervisor(self, image: str, store: str, docker_socket: str | None) -> None:
        socket = _socket_path(docker_socket)
        env = {"CLIPPER_DOCKER_REDIS_URL": store, "DOCKER_HOST": "unix:///var/run/docker.sock",
               "CLIPPER_DOCKER_NETWORK": self.network}
        extra = self._extra_json("the supervisor")
        if extra is not None:
            env["CLIPPER_DOCKER_CONTAINER_KWARGS"] = extra
        self.run(Role.SUPERVISOR, None, image, env,
                 ["python", "-m", "clipper_docker.supervisor", "--cluster", self.cluster], {}, {},
                 user="0", volumes={socket: {"bind": "/var/run/docker.sock", "mode": "rw"}})

    def _extra_json(self, who: str) -> str | None:
        """``extra_container_kwargs`` as JSON for a container that starts replicas itself; None (with a warning)
        when they are not JSON, so ``who`` starts replicas without them."""
        try:
            return json.dumps(self.extra)
        except TypeError:
            log.warning("extra_container_kwargs are not JSON: replicas %s starts will not get them", who)
            return None

    def run(self, role: str, index: int | None, image: str, environment: dict[str, str], command: list[str],
            ports: dict[int, int], labels: dict[str, str], **kwargs: Any) -> Container:
        """Start one of clipper's own containers, publishing ``ports`` (container port → wanted host port) on
        this manager's address; a host port someone took meanwhile moves the container to the next free one."""
        name = names.container_name(self.cluster, role, index)
        avoid: set[int] = set()
        for _attempt in range(8):
            host_ports: dict[int, int] = {}
            for container_port, wanted in ports.items():
                host_ports[container_port] = find_free_port(self.ip, wanted, avoid | set(host_ports.values()))
            ours = {"name": name, "detach": True, "init": True, "network": self.network, "command": command,
                    "environment": environment, "restart_policy": {"Name": "unless-stopped"},
                    "labels": {CLUSTER_LABEL: self.cluster, ROLE_LABEL: role, **labels},
                    "ports": {f"{cp}/tcp": (self.ip, hp or None) for cp, hp in host_ports.items()}, **kwargs}
            try:
                return self.client.containers.run(image, **merge_kwargs(ours, self.extra))
            except APIError as exc:
                with contextlib.suppress(NotFound, APIError):
                    self.client.containers.get(name).remove(force=True)
                if not port_in_use_error(exc) or not any(host_ports.values()):
                    raise ClipperException(f"cannot start {name} from {image}: {exc.explanation or exc}") from None
                avoid |= {p for p in host_ports.values() if p}
        raise ClipperException(f"cannot start {name}: every host port tried was taken")

    # -- stopping ---------------------------------------------------------------------------------------
    def remove_all(self, graceful: bool) -> None:
        """Remove every container labelled with this cluster, role by role (drained first when ``graceful``)."""
        # The supervisor first, so nothing is replaced; Redis last, so the frontends shut down cleanly.
        order = [Role.SUPERVISOR, Role.MODEL, Role.QUERY, Role.MANAGEMENT, Role.REDIS]
        drain = Reconciler(self.client, self.cluster, self.network, self.extra, self.drain_timeout).drain
        by_role: dict[str, list[Container]] = {}
        for container in self.find():
            by_role.setdefault(labels_of(container).get(ROLE_LABEL, ""), []).append(container)
        for role in order + sorted(set(by_role) - set(order)):
            batch = by_role.get(role, [])
            if graceful:
                drain(batch)
            else:
                for container in batch:
                    with contextlib.suppress(NotFound, APIError):
                        container.remove(force=True)

    def remove_volume(self) -> None:
        with contextlib.suppress(NotFound, APIError):
            self.client.volumes.get(self.redis_volume).remove(force=True)

    def remove_network(self) -> None:
        """The network, once no cluster uses it (clusters share it), and only if clipper created it."""
        with contextlib.suppress(NotFound, APIError):
            network = self.client.networks.get(self.network)
            if (network.attrs.get("Labels") or {}).get(names.NETWORK_LABEL) and not network.attrs.get("Containers"):
                network.remove()
