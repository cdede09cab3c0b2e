"""class :class:`Kubelet`, the one emulated node: construction (API clients, thread pool), start/stop (with the
in-cluster API endpoint) and the cleanup of every Docker object it made, the loop and its per-step error handling
(rate-limited warnings), the raw JSON API helpers, Node registration and status, periodic housekeeping, and the
look-ups used by tests and the API server (a pod's Docker container, its logs, every Docker object made). The work
itself is in the mixins."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker
import docker.errors
from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes.client.exceptions import ApiException

from .containers import ContainersMixin
from .controller import ControllerMixin
from .env import EnvMixin
from .network import NetworkMixin
from .nodeports import NodePortsMixin, _NodePorts
from .pods import PodsMixin
from .probes import ProbesMixin
from .runtime import RuntimeMixin
from .serviceaccounts import ServiceAccountsMixin
from .state import _Pod
from .storage import StorageMixin
from .util import LABEL, MERGE, Json, _now, _sanitise, log


class Kubelet(PodsMixin, RuntimeMixin, ContainersMixin, EnvMixin, StorageMixin, ProbesMixin, NetworkMixin,
              ControllerMixin, NodePortsMixin, ServiceAccountsMixin):
    """One emulated node: kubelet + scheduler + Deployment controller + PVC binder + NodePort proxy (see package)."""

    def __init__(self, kubeconfig: str, docker_client: docker.DockerClient, *, name_prefix: str,
                 node_name: str = "emulated-node", period: float = 0.2, backoff_base: float = 1.0,
                 api_handle: Any = None, request_timeout: float = 10.0, node_address: str = "127.0.0.1") -> None:
        self.kubeconfig = kubeconfig
        self.docker = docker_client
        self.prefix = _sanitise(name_prefix)
        self.node_name = node_name
        self.node_address = node_address
        self.period = period
        self.backoff_base = backoff_base
        self.api_handle = api_handle
        self.timeout = request_timeout
        cfg = kclient.Configuration()
        cfg.connection_pool_maxsize = 32
        self.api = kconfig.new_client_from_config(config_file=kubeconfig, client_configuration=cfg)
        self.core = kclient.CoreV1Api(self.api)
        self.apps = kclient.AppsV1Api(self.api)
        self.pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="kubelet-work")
        self.nodeports: _NodePorts | None = None
        self.network_name = f"{self.prefix}-pods"
        self.network_id: str | None = None
        self.subnet: ipaddress.IPv4Network | None = None
        self.gateway: str | None = None
        self.api_endpoint: Any = None
        """The in-cluster API endpoint on the gateway (``kube_api.HttpsEndpoint``: host, port, ca_pem, url), or None
        without an ``api_handle``."""
        self.used_ips: set[str] = set()
        self.pods: dict[str, _Pod] = {}
        self.pvcs: dict[tuple[str, str], str] = {}
        """Live volume claims: (namespace, name) -> uid."""
        self.node_ok = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned: dict[str, float] = {}
        self._next_housekeeping = 0.0
        self.iterations = 0

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Kubelet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Remove leftovers of an earlier kubelet with this prefix, make the pod network, register the node and start
        the loop (a daemon thread)."""
        if self._thread is not None:
            return
        self._remove_docker_objects()
        self._make_network()
        self._start_api_endpoint()
        self.nodeports = _NodePorts(self.node_address)
        self._ensure_node()
        if self.api_handle is not None:
            self.api_handle.set_log_source(self.log_source)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"kubelet-{self.node_name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the loop (bounded) and remove every container, volume, network and forwarder this kubelet made."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            if self._thread.is_alive():
                log.warning("kubelet loop did not stop within %.0f s", timeout)
            self._thread = None
        self.pool.shutdown(wait=False, cancel_futures=True)
        if self.nodeports is not None:
            self.nodeports.stop()
            self.nodeports = None
        self._stop_api_endpoint()
        self._remove_docker_objects()
        for pod in self.pods.values():
            for path in pod.tmpdirs:
                shutil.rmtree(path, ignore_errors=True)
        self.pods.clear()
        self.used_ips.clear()
        with contextlib.suppress(Exception):
            self.api.close()

    def _remove_docker_objects(self) -> None:
        mine = {"label": [f"{LABEL}/prefix={self.prefix}"]}
        for _attempt in range(3):
            try:
                for c in self.docker.api.containers(all=True, filters=mine):  # no inspect per container: no race
                    with contextlib.suppress(docker.errors.NotFound):
                        self.docker.api.remove_container(c["Id"], force=True, v=True)
                for v in self.docker.volumes.list(filters=mine):
                    with contextlib.suppress(docker.errors.NotFound):
                        v.remove(force=True)
                for n in self.docker.networks.list(filters=mine):
                    with contextlib.suppress(docker.errors.NotFound):
                        n.remove()
                return
            except docker.errors.APIError as exc:
                log.warning("cleaning up Docker objects of %s: %s", self.prefix, exc)
                time.sleep(0.5)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.iterate()
            except Exception:
                self._warn("iterate", "kubelet iteration failed", exc=True)
            self.iterations += 1
            self._stop.wait(max(0.0, self.period - (time.monotonic() - started)))

    def _warn(self, key: str, message: str, *args: Any, exc: bool = False) -> None:
        """Log, at most once per 10 s per key (a broken pod must not flood the log)."""
        now = time.monotonic()
        if now - self._warned.get(key, -1e9) >= 10.0:
            self._warned[key] = now
            log.warning(message, *args, exc_info=exc)

    # ------------------------------------------------------------------ API helpers

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """An API call returning the decoded JSON (the raw body, so objects stay in the API's camelCase shape)."""
        response = fn(*args, _preload_content=False, _request_timeout=self.timeout, **kwargs)
        data = response.data
        return json.loads(data) if data else None

    def _items(self, fn: Callable[..., Any], **kwargs: Any) -> list[Json]:
        return list((self._call(fn, **kwargs) or {}).get("items") or [])

    # ------------------------------------------------------------------ the loop

    def iterate(self) -> None:
        """One pass of every controller (also callable directly from tests)."""
        if not self.node_ok:
            self._ensure_node()
        deployments = self._items(self.apps.list_deployment_for_all_namespaces)
        pods = self._items(self.core.list_pod_for_all_namespaces)
        services = self._items(self.core.list_service_for_all_namespaces)
        steps: list[tuple[str, Callable[[], None]]] = [
            ("pvcs", self._bind_pvcs),
            ("schedule", lambda: self._schedule(pods)),
            ("deployments", lambda: self._deployments(deployments, pods)),
            ("pods", lambda: self._sync_pods(pods, services)),
            ("nodeports", lambda: self._sync_nodeports(services, pods)),
        ]
        if time.monotonic() >= self._next_housekeeping:
            self._next_housekeeping = time.monotonic() + 2.0
            steps.append(("housekeeping", self._housekeeping))
        for name, step in steps:
            if self._stop.is_set():
                return
            try:
                step()
            except Exception:
                self._warn(f"step-{name}", "kubelet step %s failed", name, exc=True)

    # ------------------------------------------------------------------ node

    def _ensure_node(self) -> None:
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node_name,
                             "labels": {"kubernetes.io/hostname": self.node_name, "kubernetes.io/os": "linux",
                                        "kubernetes.io/arch": "amd64"}}}
        try:
            self._call(self.core.create_node, body)
        except ApiException as exc:
            if exc.status != 409:
                self._warn("node", "cannot register node %s: %s", self.node_name, exc)
                return
        now = _now()
        cpus = str(os.cpu_count() or 1)
        status = {
            "addresses": [{"type": "InternalIP", "address": self.node_address},
                          {"type": "Hostname", "address": self.node_name}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "emulated kubelet is posting ready status",
                            "lastHeartbeatTime": now, "lastTransitionTime": now}],
            "capacity": {"cpu": cpus, "memory": "16Gi", "pods": "110"},
            "allocatable": {"cpu": cpus, "memory": "16Gi", "pods": "110"},
            "nodeInfo": {"machineID": "emulated", "systemUUID": "emulated", "bootID": "emulated",
                         "kernelVersion": os.uname().release, "osImage": "emulated", "containerRuntimeVersion":
                         "docker://emulated", "kubeletVersion": "v1.37.0-emulated", "kubeProxyVersion": "",
                         "operatingSystem": "linux", "architecture": "amd64"},
        }
        try:
            self._call(self.core.patch_node_status, self.node_name, {"status": status}, _content_type=MERGE)
            self.node_ok = True
        except ApiException as exc:
            self._warn("node-status", "cannot write node %s status: %s", self.node_name, exc)

    # ------------------------------------------------------------------ housekeeping

    def _housekeeping(self) -> None:
        """Remove Docker containers of pods this kubelet no longer tracks, and volumes of PVCs that are gone."""
        known = {c.docker_id for p in self.pods.values() for c in p.containers.values() if c.docker_id}
        for ctr in self.docker.api.containers(all=True, filters={"label": [f"{LABEL}/prefix={self.prefix}"]}):
            if ctr["Id"] not in known and (ctr.get("Labels") or {}).get(f"{LABEL}/pod-uid") not in self.pods:
                with contextlib.suppress(docker.errors.APIError):
                    self.docker.api.remove_container(ctr["Id"], force=True, v=True)
        for vol in self.docker.volumes.list(filters={"label": [f"{LABEL}/prefix={self.prefix}",
                                                               f"{LABEL}/kind=pvc"]}):
            labels = vol.attrs.get("Labels") or {}
            claim = (labels.get(f"{LABEL}/namespace"), labels.get(f"{LABEL}/claim"))
            if self.pvcs.get(claim) != labels.get(f"{LABEL}/claim-uid"):  # type: ignore[call-overload]
                with contextlib.suppress(docker.errors.APIError):  # in use: later
                    vol.remove()

    # ------------------------------------------------------------------ for tests and the API server

    def _pod_containers(self, namespace: str, pod: str, container: str | None = None) -> list[str]:
        """Ids of the Docker containers of a pod's container, newest first (a pod may have been recreated)."""
        labels = [f"{LABEL}/prefix={self.prefix}", f"{LABEL}/namespace={namespace}", f"{LABEL}/pod={pod}"]
        labels.append(f"{LABEL}/container={container}" if container else f"{LABEL}/container-index=0")
        found = self.docker.api.containers(all=True, filters={"label": labels})
        return [c["Id"] for c in sorted(found, key=lambda c: c.get("Created", 0), reverse=True)]

    def container_of(self, namespace: str, pod: str, container: str | None = None) -> Any:
        """The Docker container (``docker.models.containers.Container``) running a pod's (first) container, or
        None."""
        for cid in self._pod_containers(namespace, pod, container):
            with contextlib.suppress(docker.errors.NotFound):
                return self.docker.containers.get(cid)
        return None

    def log_source(self, namespace: str, pod: str, container: str | None, tail_lines: int | None,
                   timestamps: bool) -> str | None:
        """The Docker logs of a pod's container (its current run), for the emulator's ``set_log_source``."""
        try:
            found = self._pod_containers(namespace, pod, container)
            if not found:
                return None
            cid = found[0]
            # Docker keeps the logs of every run of a container restarted in place; Kubernetes shows the current one
            since = next((c.log_since for p in list(self.pods.values()) for c in list(p.containers.values())
                          if c.docker_id == cid), None)
            data = self.docker.api.logs(cid, stdout=True, stderr=True, timestamps=timestamps,
                                        tail=tail_lines if tail_lines is not None else "all", since=since)
            return data.decode("utf-8", errors="replace")
        except docker.errors.APIError as exc:
            log.warning("logs of %s/%s: %s", namespace, pod, exc)
            return None

    def docker_objects(self) -> Iterator[Any]:
        """Every Docker container, volume and network this kubelet made (for tests checking the cleanup)."""
        mine = {"label": [f"{LABEL}/prefix={self.prefix}"]}
        yield from self.docker.api.containers(all=True, filters=mine)
        yield from self.docker.volumes.list(filters=mine)
        yield from self.docker.networks.list(filters=mine)
