"""A stand-in for a one-node Kubernetes cluster's kubelet, scheduler, Deployment controller, PVC provisioner and
kube-proxy (NodePorts only), running pods' containers on a real Docker engine, for tests against an emulated API
server (``kube_api.py``).

:class:`Kubelet` talks to the API server only through the official ``kubernetes`` client (every call with a
``_request_timeout``), as a real kubelet would, and loops every ``period`` seconds (each step and each pod in its
own try: one failing pod is logged, at most every 10 s, and the loop goes on; slow work — pulls, probes, graceful
stops — runs in a thread pool; Docker calls are bounded by the given client's own timeout):

* **Node**: registers Node ``node_name`` (InternalIP ``node_address``, 127.0.0.1 by default, and Hostname; a Ready
  condition via nodes/status). Another loopback address (127.x.y.z) keeps the node ports of concurrent kubelets
  (or test sessions) apart: the emulator hands out node ports from 30000 up, so two clusters collide on 127.0.0.1.
* **Scheduler**: binds pods without ``spec.nodeName`` (default scheduler) to that one node.
* **Deployment controller**: keeps ``spec.replicas`` pods per Deployment, named ``<deployment>-<hash>-<xxxxx>`` and
  labelled with the template's labels + ``pod-template-hash`` (no ReplicaSets are made: pods are owned by the
  Deployment directly). Surplus pods are deleted (not-ready first, then newest) with their grace period. A changed
  template is rolled out with surge 100% / unavailable 0: every new pod is created at once, and old pods are deleted
  only as new ones become ready (the number of old pods kept is ``replicas - ready new pods``). Pods whose owning
  Deployment is gone are garbage-collected. The status (observedGeneration, replicas, readyReplicas,
  availableReplicas, updatedReplicas, unavailableReplicas, Available and Progressing) goes through
  deployments/status, only when it changed. ``minReadySeconds`` is honoured for availableReplicas.
* **PVC provisioner**: every PVC is bound at once (phase Bound, accessModes, capacity); its data is a Docker volume
  per (namespace, claim) that survives pods, removed once the PVC is gone.
* **Kubelet**: for pods on the node, makes one Docker container per pod container (``init=True``, restart policy
  "no"; the kubelet restarts), with K8s command/args → entrypoint/cmd, env (value, fieldRef, secretKeyRef,
  configMapKeyRef, resourceFieldRef, envFrom) with ``$(VAR)`` expansion, workingDir, memory/cpu limits,
  securityContext runAsUser/runAsGroup/fsGroup/supplementalGroups/privileged, volumes (persistentVolumeClaim;
  emptyDir as a named volume per pod, removed with it, or tmpfs for medium Memory; secret and configMap as files;
  hostPath; new volumes are world-writable, as kind's local-path provisioner makes them), a static pod IP on one
  user-defined bridge network (10.244.K.0/24, K from a random start until Docker accepts) and Docker aliases ``svc``,
  ``svc.ns``, ``svc.ns.svc``, ``svc.ns.svc.cluster.local`` for the Services selecting the pod. Images must be on the
  engine (a pull is tried once per back-off: ErrImagePull, then ImagePullBackOff). Probes (httpGet, tcpSocket, exec;
  startup, readiness, liveness) with their timings, CrashLoopBackOff restarts in place (``backoff_base * 2**n``,
  capped at ``30 * backoff_base``, reset after 10 minutes running), graceful deletion (SIGTERM, SIGKILL after the
  grace period, then the pod is finalised with gracePeriodSeconds=0). Pod status via pods/status, only when it
  changed.
* **kube-proxy, NodePorts only**: a TCP forwarder on <node_address>:<nodePort> per Service port, round-robin per
  connection over the ready endpoints (re-read every pass; a port already taken is retried every 5 s).
* **Logs**: :meth:`Kubelet.log_source` returns the Docker logs of a pod's container (its current run); passing
  ``api_handle=`` installs it with the emulator's ``set_log_source`` on :meth:`Kubelet.start`.

What it does NOT do: no scheduler beyond the one node (no resources accounting, affinity, taints); no kube-proxy
virtual IPs (a Service's name resolves to its pods' IPs through Docker's DNS, so the Service port must equal the
target port for in-cluster clients; no ``*_SERVICE_HOST`` env vars); no cluster DNS beyond Docker aliases (aliases are
set when a pod's container is created: a Service created after a pod is not resolvable from it, and the short name
``svc`` is shared across namespaces on the one network); no cgroups QoS or eviction; no image registry (pulls fail
offline, imagePullPolicy Always acts as IfNotPresent); no init containers (a pod with some stays waiting with
CreateContainerConfigError saying so), ephemeral containers, Endpoints or
EndpointSlices objects, ReplicaSets, StatefulSets, Jobs, events; a restarted container keeps its writable layer
(it is restarted in place); with several containers in a pod the 2nd and later share the first one's network
namespace (restarting the first one cuts theirs); secret/configMap volumes are host files bind-mounted (the Docker
engine must share this host's filesystem).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import functools
import hashlib
import http.client
import ipaddress
import json
import logging
import os
import random
import re
import shutil
import socket
import ssl
import string
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import docker
import docker.errors
import docker.types
from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import parse_quantity

log = logging.getLogger(__name__)

LABEL = "kubelet.clipper.test"  # label key prefix on everything this kubelet creates in Docker
MERGE = "application/merge-patch+json"
HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' SafeEncodeString alphabet
RUN_RESET_SECONDS = 600.0  # a container running this long resets its CrashLoopBackOff
MAX_CREATES = 10  # pods created per Deployment per pass (bounded work per loop iteration)
Json = dict[str, Any]


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _docker_time(value: str | None) -> str | None:
    """Docker's RFC 3339 nanosecond time as Kubernetes' second-precision one (None for Docker's zero time)."""
    if not value or value.startswith("0001-"):
        return None
    return value[:19] + "Z"


def _sanitise(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]", "-", text)


def template_hash(template: Json) -> str:
    """A stable 10-character hash of a pod template (Kubernetes' alphabet, without vowels)."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True, separators=(",", ":")).encode()).digest()
    return "".join(HASH_ALPHABET[b % len(HASH_ALPHABET)] for b in digest[:10])


def expand(text: str, mapping: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: ``$$`` is ``$``, unknown or unterminated references stay as written."""
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            rest = text[cursor + 1 :]
            if rest[0] == "$":
                out.append("$")
                advance = 1
            elif rest[0] == "(":
                close = rest.find(")", 1)
                if close == -1:
                    out.append("$(")
                    advance = 1
                else:
                    name = rest[1:close]
                    out.append(mapping.get(name, f"$({name})"))
                    advance = close + 1
            else:
                out.append("$" + rest[0])
                advance = 1
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)


def selector_matches(selector: dict[str, str] | None, labels: dict[str, str] | None) -> bool:
    """A Service's equality selector against a pod's labels (an empty selector selects nothing, as for Services)."""
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def pod_ready(pod: Json) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _terminating(obj: Json) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def _owner_uid(pod: Json, kind: str = "Deployment") -> str | None:
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("kind") == kind and ref.get("controller"):
            return str(ref.get("uid"))
    return None


def _qos_class(containers: list[Json]) -> str:
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("limits") or r.get("requests") for r in resources):
        return "BestEffort"
    for r in resources:
        limits, requests = r.get("limits") or {}, r.get("requests") or {}
        for kind in ("cpu", "memory"):
            if kind not in limits or parse_quantity(requests.get(kind, limits[kind])) != parse_quantity(limits[kind]):
                return "Burstable"
    return "Guaranteed"


class ConfigError(Exception):
    """A pod's container cannot be made yet (missing secret, unsupported volume...): ``reason`` for its status."""

    def __init__(self, message: str, reason: str = "CreateContainerConfigError") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class _Probe:
    next_at: float
    successes: int = 0
    failures: int = 0
    future: Future[bool] | None = None
    deadline: float = 0.0
    timed_out: bool = False


@dataclass
class _Container:
    name: str
    spec: Json
    index: int
    docker_id: str | None = None
    image_id: str = ""
    restart_count: int = 0
    has_run: bool = False
    run_started_at: str | None = None  # Docker's StartedAt of the current/last run
    run_mono: float = 0.0
    handled_finish: str | None = None
    log_since: float | None = None  # the previous run's end: the current run's log starts after it
    last_terminated: Json | None = None
    state: Json = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    ready: bool = False
    started: bool = False
    backoff_n: int = 0
    restart_at: float | None = None
    final: bool = False
    pull: Future[None] | None = None
    pull_failures: int = 0
    next_pull: float = 0.0
    pull_error_shown: bool = False
    retry_create_at: float = 0.0
    killing: Future[None] | None = None
    probes: dict[str, _Probe] = field(default_factory=dict)


@dataclass
class _Pod:
    uid: str
    namespace: str
    name: str
    ip: str
    containers: dict[str, _Container]
    start_time: str = field(default_factory=_now)
    ip_assigned: bool = False
    conditions: dict[str, tuple[str, str]] = field(default_factory=dict)  # type -> (status, lastTransitionTime)
    last_status: Json | None = None
    teardown: Future[None] | None = None
    finalise_retry_at: float = 0.0
    tmpdirs: list[str] = field(default_factory=list)
    grace: int = 30  # spec.terminationGracePeriodSeconds


class _NodePorts:
    """kube-proxy's NodePorts: an asyncio TCP forwarder per node port, round-robin per connection."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="kubelet-nodeports", daemon=True)
        self.servers: dict[int, asyncio.Server] = {}
        self.endpoints: dict[int, list[tuple[str, int]]] = {}
        self.turn: dict[int, int] = {}
        self.tasks: dict[int, set[asyncio.Task[Any]]] = {}
        self.failed: dict[int, float] = {}
        self.thread.start()

    def sync(self, wanted: dict[int, list[tuple[str, int]]]) -> None:
        asyncio.run_coroutine_threadsafe(self._sync(wanted), self.loop).result(timeout=5)

    def stop(self) -> None:
        if not self.loop.is_running():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._sync({}), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        if not self.thread.is_alive():
            self.loop.close()

    async def _sync(self, wanted: dict[int, list[tuple[str, int]]]) -> None:
        for port in list(self.servers):
            if port not in wanted:
                server = self.servers.pop(port)
                server.close()
                for task in self.tasks.pop(port, set()):
                    task.cancel()
                self.endpoints.pop(port, None)
        for port, endpoints in wanted.items():
            self.endpoints[port] = endpoints
            if port in self.servers or time.monotonic() < self.failed.get(port, 0.0):
                continue
            try:
                self.servers[port] = await asyncio.start_server(
                    functools.partial(self._accept, port), self.host, port, reuse_address=True)
                self.tasks.setdefault(port, set())
            except OSError as exc:
                log.warning("node port %s: cannot listen: %s", port, exc)
                self.failed[port] = time.monotonic() + 5.0

    async def _accept(self, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        tasks = self.tasks.setdefault(port, set())
        if task is not None:
            tasks.add(task)
        try:
            endpoints = self.endpoints.get(port) or []
            if not endpoints:
                return
            turn = self.turn.get(port, 0)
            self.turn[port] = turn + 1
            address = endpoints[turn % len(endpoints)]
            try:
                b_reader, b_writer = await asyncio.wait_for(asyncio.open_connection(*address), 5.0)
            except (OSError, asyncio.TimeoutError):
                return
            try:
                await asyncio.gather(self._pipe(reader, b_writer, writer), self._pipe(b_reader, writer, b_writer))
            finally:
                b_writer.close()
        except asyncio.CancelledError:
            pass
        finally:
            writer.close()
            if task is not None:
                tasks.discard(task)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, other: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, RuntimeError):
            writer.transport.abort()
            other.transport.abort()


class Kubelet:
    """One emulated node: kubelet + scheduler + Deployment controller + PVC binder + NodePort proxy (see module)."""

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
        self.used_ips: set[str] = set()
        self.pods: dict[str, _Pod] = {}
        self.pvcs: set[tuple[str, str]] = set()
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

    # ------------------------------------------------------------------ Docker network and IPAM

    def _make_network(self) -> None:
        offset = random.randrange(256)
        last: Exception | None = None
        for i in range(256):
            k = (offset + i) % 256
            subnet = ipaddress.IPv4Network(f"10.244.{k}.0/24")
            gateway = str(subnet.network_address + 1)
            ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=str(subnet), gateway=gateway)])
            try:
                net = self.docker.networks.create(self.network_name, driver="bridge", ipam=ipam, check_duplicate=True,
                                                  labels={f"{LABEL}/prefix": self.prefix})
            except docker.errors.APIError as exc:
                last = exc
                continue
            self.network_id, self.subnet, self.gateway = net.id, subnet, gateway
            return
        raise RuntimeError(f"no free 10.244.K.0/24 subnet for the pod network: {last}")

    def _allocate_ip(self) -> str:
        assert self.subnet is not None
        for host in self.subnet.hosts():
            ip = str(host)
            if ip != self.gateway and ip not in self.used_ips:
                self.used_ips.add(ip)
                return ip
        raise ConfigError(f"pod network {self.subnet} is full", reason="ContainerCreating")

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

    # ------------------------------------------------------------------ PVCs

    def _bind_pvcs(self) -> None:
        claims = self._items(self.core.list_persistent_volume_claim_for_all_namespaces)
        self.pvcs = {(c["metadata"]["namespace"], c["metadata"]["name"]) for c in claims}
        for claim in claims:
            if _terminating(claim) or (claim.get("status") or {}).get("phase") == "Bound":
                continue
            spec = claim.get("spec") or {}
            storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
            status = {"phase": "Bound", "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                      "capacity": {"storage": storage}}
            self._call(self.core.patch_namespaced_persistent_volume_claim_status, claim["metadata"]["name"],
                       claim["metadata"]["namespace"], {"status": status}, _content_type=MERGE)

    def _volume(self, name: str, labels: dict[str, str], image: str) -> str:
        """A named Docker volume, world-writable when new (as kind's local-path provisioner and emptyDir make them,
        so that images running as a non-root user can write to it)."""
        try:
            self.docker.volumes.get(name)
            return name
        except docker.errors.NotFound:
            pass
        volume = self.docker.volumes.create(name, labels={f"{LABEL}/prefix": self.prefix, **labels})
        try:
            os.chmod(volume.attrs["Mountpoint"], 0o777)  # the engine shares this host's filesystem
        except (OSError, KeyError):
            self.docker.containers.run(image, ["0777", "/v"], entrypoint="chmod", user="0", remove=True,
                                       volumes={name: {"bind": "/v", "mode": "rw"}}, network_mode="none",
                                       labels={f"{LABEL}/prefix": self.prefix})
        return name

    def _pvc_volume(self, namespace: str, claim: str, image: str) -> str:
        name = f"{self.prefix}-pvc-{_sanitise(namespace)}-{_sanitise(claim)}"
        return self._volume(name, {f"{LABEL}/kind": "pvc", f"{LABEL}/namespace": namespace, f"{LABEL}/claim": claim},
                            image)

    # ------------------------------------------------------------------ scheduler

    def _schedule(self, pods: list[Json]) -> None:
        for pod in pods:
            spec = pod.get("spec") or {}
            if spec.get("nodeName") or _terminating(pod) or \
                    spec.get("schedulerName", "default-scheduler") != "default-scheduler":
                continue
            name, ns = pod["metadata"]["name"], pod["metadata"]["namespace"]
            binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "namespace": ns},
                       "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name}}
            try:
                self._call(self.core.create_namespaced_pod_binding, name, ns, binding)
            except ApiException as exc:
                if exc.status not in (404, 405, 415):
                    raise
                # no pods/binding in the emulator: set spec.nodeName directly
                self._call(self.core.patch_namespaced_pod, name, ns, {"spec": {"nodeName": self.node_name}},
                           _content_type=MERGE)
            pod["spec"]["nodeName"] = self.node_name  # this pass's kubelet step sees it at once

    # ------------------------------------------------------------------ Deployment controller

    def _deployments(self, deployments: list[Json], pods: list[Json]) -> None:
        uids = {d["metadata"]["uid"] for d in deployments}
        owned: dict[str, list[Json]] = {}
        for pod in pods:
            owner = _owner_uid(pod)
            if owner is None:
                continue
            if owner in uids:
                owned.setdefault(owner, []).append(pod)
            elif not _terminating(pod):  # garbage collection: its Deployment is gone
                self._delete_pod(pod)
        for dep in deployments:
            try:
                created = self._deployment(dep, owned.get(dep["metadata"]["uid"], []))
                pods.extend(created)  # this pass's kubelet step starts them at once
            except Exception:
                self._warn(f"deployment-{dep['metadata']['uid']}", "deployment %s/%s failed",
                           dep["metadata"]["namespace"], dep["metadata"]["name"], exc=True)

    def _delete_pod(self, pod: Json) -> None:
        grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        try:
            self._call(self.core.delete_namespaced_pod, pod["metadata"]["name"], pod["metadata"]["namespace"],
                       grace_period_seconds=int(grace))
        except ApiException as exc:
            if exc.status != 404:
                raise

    def _deployment(self, dep: Json, pods: list[Json]) -> list[Json]:
        """Reconcile one Deployment; returns the pods it created."""
        spec = dep.get("spec") or {}
        template = spec.get("template") or {}
        wanted = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
        h = template_hash(template)
        active = [p for p in pods if not _terminating(p)]
        new = [p for p in active if (p["metadata"].get("labels") or {}).get("pod-template-hash") == h]
        old = [p for p in active if p not in new]
        if _terminating(dep):
            new, old, wanted = [], active, 0

        def surplus_order(candidates: list[Json]) -> list[Json]:  # not ready first, then newest
            newest = sorted(candidates, key=lambda p: p["metadata"].get("creationTimestamp") or "", reverse=True)
            return sorted(newest, key=pod_ready)

        created = [self._create_pod(dep, template, h) for _ in range(min(MAX_CREATES, max(0, wanted - len(new))))]
        new += created
        for pod in surplus_order(new)[: max(0, len(new) - wanted)]:
            self._delete_pod(pod)
            new.remove(pod)
        ready_new = sum(1 for p in new if pod_ready(p))
        keep_old = max(0, wanted - ready_new)
        for pod in surplus_order(old)[: max(0, len(old) - keep_old)]:
            self._delete_pod(pod)
            old.remove(pod)
        if not _terminating(dep):
            self._deployment_status(dep, new, old, wanted)
        return created

    def _create_pod(self, dep: Json, template: Json, h: str) -> Json:
        meta = dep["metadata"]
        tmeta = template.get("metadata") or {}
        suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        body: Json = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": f"{meta['name']}-{h}-{suffix}", "namespace": meta["namespace"],
                "labels": {**(tmeta.get("labels") or {}), "pod-template-hash": h},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"],
                                     "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]},
            "spec": {**copy.deepcopy(template.get("spec") or {}), "nodeName": self.node_name},
        }
        if tmeta.get("annotations"):
            body["metadata"]["annotations"] = dict(tmeta["annotations"])
        created = self._call(self.core.create_namespaced_pod, meta["namespace"], body)
        return created if isinstance(created, dict) else body

    def _deployment_status(self, dep: Json, new: list[Json], old: list[Json], wanted: int) -> None:
        spec = dep.get("spec") or {}
        min_ready = float(spec.get("minReadySeconds") or 0)
        pods = new + old
        ready = [p for p in pods if pod_ready(p)]

        def available(pod: Json) -> bool:
            if min_ready <= 0:
                return True
            for c in pod["status"].get("conditions") or []:
                if c.get("type") == "Ready" and c.get("lastTransitionTime"):
                    since = datetime.strptime(c["lastTransitionTime"], "%Y-%m-%dT%H:%M:%SZ").replace(
                        tzinfo=timezone.utc)
                    return (datetime.now(timezone.utc) - since).total_seconds() >= min_ready
            return False

        n_available = sum(1 for p in ready if available(p))
        current = dep.get("status") or {}
        conditions_before = {c.get("type"): c for c in current.get("conditions") or []}
        now = _now()

        def condition(kind: str, status: str, reason: str, message: str) -> Json:
            before = conditions_before.get(kind) or {}
            same = before.get("status") == status and before.get("reason") == reason
            return {"type": kind, "status": status, "reason": reason, "message": message,
                    "lastUpdateTime": before.get("lastUpdateTime", now) if same else now,
                    "lastTransitionTime": before.get("lastTransitionTime", now)
                    if before.get("status") == status else now}

        name = dep["metadata"]["name"]
        if n_available >= wanted:
            available_c = condition("Available", "True", "MinimumReplicasAvailable",
                                    "Deployment has minimum availability.")
        else:
            available_c = condition("Available", "False", "MinimumReplicasUnavailable",
                                    "Deployment does not have minimum availability.")
        if not old and len(new) == wanted and n_available >= wanted:
            progressing = condition("Progressing", "True", "NewReplicaSetAvailable",
                                    f'Deployment "{name}" has successfully progressed.')
        else:
            progressing = condition("Progressing", "True", "ReplicaSetUpdated",
                                    f'Deployment "{name}" is progressing.')
        status: Json = {
            "observedGeneration": dep["metadata"].get("generation", 1),
            "replicas": len(pods), "updatedReplicas": len(new), "readyReplicas": len(ready),
            "availableReplicas": n_available, "unavailableReplicas": max(0, wanted - n_available),
            "conditions": [available_c, progressing],
        }
        keys = ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                "unavailableReplicas")

        def strip(conds: list[Json]) -> list[tuple[Any, ...]]:
            return sorted((c.get("type"), c.get("status"), c.get("reason")) for c in conds)

        if all(current.get(k, 0) == status[k] for k in keys) and \
                strip(current.get("conditions") or []) == strip(status["conditions"]):
            return
        self._call(self.apps.patch_namespaced_deployment_status, name, dep["metadata"]["namespace"],
                   {"status": status}, _content_type=MERGE)

    # ------------------------------------------------------------------ kubelet: pods

    def _sync_pods(self, pods: list[Json], services: list[Json]) -> None:
        listed: set[str] = set()
        for pod in pods:
            if (pod.get("spec") or {}).get("nodeName") != self.node_name:
                continue
            uid = pod["metadata"]["uid"]
            listed.add(uid)
            try:
                self._sync_pod(pod, services)
            except Exception:
                self._warn(f"pod-{uid}", "pod %s/%s failed", pod["metadata"]["namespace"], pod["metadata"]["name"],
                           exc=True)
        for uid, state in list(self.pods.items()):
            if uid in listed:
                continue
            if state.teardown is None:  # gone from the API: remove its containers at once
                state.teardown = self.pool.submit(self._teardown, state, 0, False)
            elif state.teardown.done():
                self._forget(state)

    def _forget(self, state: _Pod) -> None:
        self.used_ips.discard(state.ip)
        for path in state.tmpdirs:
            shutil.rmtree(path, ignore_errors=True)
        self.pods.pop(state.uid, None)

    def _sync_pod(self, pod: Json, services: list[Json]) -> None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        uid = meta["uid"]
        state = self.pods.get(uid)
        if state is None:
            state = _Pod(uid=uid, namespace=meta["namespace"], name=meta["name"], ip=self._allocate_ip(),
                         containers={c["name"]: _Container(name=c["name"], spec=c, index=i)
                                     for i, c in enumerate(spec.get("containers") or [])})
            self.pods[uid] = state
        state.grace = int(spec.get("terminationGracePeriodSeconds", 30))
        if _terminating(pod):
            if state.teardown is None:
                grace = meta.get("deletionGracePeriodSeconds", spec.get("terminationGracePeriodSeconds", 30))
                state.teardown = self.pool.submit(self._teardown, state, int(grace or 0), True)
            elif state.teardown.done() and time.monotonic() >= state.finalise_retry_at:
                state.finalise_retry_at = time.monotonic() + 2.0
                self.pool.submit(self._finalise, state)
            return
        for c in state.containers.values():
            try:
                self._sync_container(pod, state, c, services)
            except ConfigError as exc:
                c.state = {"waiting": {"reason": exc.reason, "message": str(exc)}}
                c.retry_create_at = time.monotonic() + max(1.0, self.backoff_base)
        status = self._pod_status(pod, state)
        if status != state.last_status:
            try:
                self._call(self.core.patch_namespaced_pod_status, meta["name"], meta["namespace"],
                           {"status": status}, _content_type=MERGE)
            except ApiException as exc:
                if exc.status == 404:  # deleted meanwhile
                    return
                raise
            state.last_status = status

    def _teardown(self, state: _Pod, grace: int, finalise: bool) -> None:
        """Stop (SIGTERM, then SIGKILL after ``grace`` s) and remove a pod's containers and per-pod volumes."""
        ids = [c.docker_id for c in sorted(state.containers.values(), key=lambda c: -c.index) if c.docker_id]
        for cid in ids:
            try:
                if grace > 0:
                    self.docker.api.stop(cid, timeout=grace)
                self.docker.api.remove_container(cid, force=True, v=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                log.warning("removing container %s of pod %s/%s: %s", cid[:12], state.namespace, state.name, exc)
        for v in self.docker.volumes.list(filters={"label": [f"{LABEL}/prefix={self.prefix}",
                                                             f"{LABEL}/pod-uid={state.uid}"]}):
            with contextlib.suppress(docker.errors.APIError):
                v.remove(force=True)
        if finalise:
            self._finalise(state)

    def _finalise(self, state: _Pod) -> None:
        try:
            self._call(self.core.delete_namespaced_pod, state.name, state.namespace, grace_period_seconds=0)
        except ApiException as exc:
            if exc.status != 404:
                log.warning("finalising pod %s/%s: %s", state.namespace, state.name, exc)

    # ------------------------------------------------------------------ kubelet: containers

    def _sync_container(self, pod: Json, state: _Pod, c: _Container, services: list[Json]) -> None:
        now = time.monotonic()
        if c.final:
            return
        if c.docker_id is None:
            if c.restart_at is not None and now < c.restart_at:
                return
            if now < c.retry_create_at or not self._image_ready(c):
                return
            self._create_container(pod, state, c, services)
            if c.has_run:
                c.restart_count += 1
            c.restart_at = None
            return
        try:
            info = self.docker.api.inspect_container(c.docker_id)
        except docker.errors.NotFound:  # removed behind our back: make a new one (a restart)
            c.docker_id, c.ready, c.killing = None, False, None
            c.last_terminated = {"exitCode": 137, "reason": "ContainerRemoved", "containerID": ""}
            c.state = {"waiting": {"reason": "ContainerCreating"}}
            return
        s = info["State"]
        if s.get("Running"):
            if c.run_started_at != s.get("StartedAt"):  # a new run
                c.run_started_at, c.run_mono, c.has_run = s.get("StartedAt"), now, True
                c.probes.clear()
                c.ready, c.killing = False, None
                c.started = not c.spec.get("startupProbe")
            if now - c.run_mono >= RUN_RESET_SECONDS:
                c.backoff_n = 0
            if c.killing is not None and c.killing.done() and c.killing.exception() is not None:
                self._warn(f"kill-{c.docker_id}", "stopping %s failed: %s", c.name, c.killing.exception())
                c.killing = None
            c.state = {"running": {"startedAt": _docker_time(s.get("StartedAt")) or _now()}}
            if c.killing is None:
                self._probe(state, c, now)
            return
        if s.get("Status") == "created":  # its start failed (a missing executable, say): retry after a back-off
            if c.restart_at is None or now >= c.restart_at:
                try:
                    self.docker.api.start(c.docker_id)
                    c.restart_at = None
                except docker.errors.APIError as exc:
                    delay = min(self.backoff_base * 2 ** c.backoff_n, 30 * self.backoff_base)
                    c.backoff_n += 1
                    c.restart_at = now + delay
                    c.state = {"waiting": {"reason": "RunContainerError", "message": str(exc.explanation or exc)}}
            return
        finished = s.get("FinishedAt")
        if c.handled_finish != finished:
            c.handled_finish = finished
            c.ready, c.killing = False, None
            code = int(s.get("ExitCode", 0))
            reason = "OOMKilled" if s.get("OOMKilled") else ("Completed" if code == 0 else "Error")
            term = {"exitCode": code, "reason": reason, "containerID": f"docker://{c.docker_id}",
                    "startedAt": _docker_time(s.get("StartedAt")) or _now(),
                    "finishedAt": _docker_time(finished) or _now()}
            policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
            if policy == "Always" or (policy == "OnFailure" and code != 0):
                if c.has_run and now - c.run_mono >= RUN_RESET_SECONDS:
                    c.backoff_n = 0
                delay = min(self.backoff_base * 2 ** c.backoff_n, 30 * self.backoff_base)
                c.backoff_n += 1
                c.restart_at = now + delay
                c.last_terminated = term
                c.state = {"waiting": {"reason": "CrashLoopBackOff",
                                       "message": f"back-off {delay:g}s restarting failed container={c.name} "
                                                  f"pod={state.name}_{state.namespace}({state.uid})"}}
            else:
                c.final = True
                c.state = {"terminated": term}
                return
        if c.restart_at is not None and now >= c.restart_at:
            # The current run's log: what Docker timestamps after this (same host clock). Not the previous run's
            # FinishedAt: Docker may still stamp that run's last lines after it (the log copier drains late).
            c.log_since = time.time()
            self.docker.api.start(c.docker_id)  # in place: same container, same IP
            c.restart_count += 1
            c.restart_at = None

    def _image_ready(self, c: _Container) -> bool:
        image = c.spec.get("image") or ""
        now = time.monotonic()
        if c.pull is not None:
            if not c.pull.done():
                return False
            error = c.pull.exception()
            c.pull = None
            if error is not None:
                c.pull_failures += 1
                delay = min(self.backoff_base * 2 ** (c.pull_failures - 1), 30 * self.backoff_base)
                c.next_pull = now + delay
                c.pull_error_shown = False
                c.state = {"waiting": {"reason": "ErrImagePull",
                                       "message": f'failed to pull image "{image}": {error}'}}
                return False
        try:
            c.image_id = self.docker.api.inspect_image(image)["Id"]
            return True
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:  # an invalid reference, say
            c.state = {"waiting": {"reason": "InvalidImageName", "message": f'image "{image}": {exc}'}}
            return False
        if c.pull_failures and now < c.next_pull:
            if c.pull_error_shown:
                c.state = {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}}
            c.pull_error_shown = True  # ErrImagePull is written once, then ImagePullBackOff
            return False
        c.pull = self.pool.submit(self._pull, image)
        if not c.pull_failures:
            c.state = {"waiting": {"reason": "ContainerCreating", "message": f'pulling image "{image}"'}}
        return False

    def _pull(self, image: str) -> None:
        repo, tag = docker.utils.parse_repository_tag(image)
        self.docker.api.pull(repo, tag=tag or "latest")

    def _create_container(self, pod: Json, state: _Pod, c: _Container, services: list[Json]) -> None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        cs = c.spec
        if spec.get("initContainers"):
            raise ConfigError("initContainers are not supported by the emulated kubelet (tests/kubelet.py)")
        env = self._env(pod, state, cs)
        command = [expand(str(x), env) for x in cs.get("command") or []] or None
        args = [expand(str(x), env) for x in cs.get("args") or []] or None
        mounts = self._mounts(pod, state, cs)
        limits = (cs.get("resources") or {}).get("limits") or {}
        host: Json = {"init": True, "mounts": mounts, "restart_policy": {"Name": "no"}}
        if "memory" in limits:
            host["mem_limit"] = int(parse_quantity(limits["memory"]))
        if "cpu" in limits:
            host["nano_cpus"] = int(parse_quantity(limits["cpu"]) * 1_000_000_000)
        pod_sc, sc = spec.get("securityContext") or {}, cs.get("securityContext") or {}
        user, group = sc.get("runAsUser", pod_sc.get("runAsUser")), sc.get("runAsGroup", pod_sc.get("runAsGroup"))
        if user is not None:
            host_user: str | None = f"{user}:{group}" if group is not None else str(user)
        else:
            host_user = None
        groups = [str(g) for g in pod_sc.get("supplementalGroups") or []]
        if pod_sc.get("fsGroup") is not None:
            groups.append(str(pod_sc["fsGroup"]))
        if groups:
            host["group_add"] = groups
        if sc.get("privileged"):
            host["privileged"] = True
        first = min(state.containers.values(), key=lambda x: x.index)
        networking = None
        hostname: str | None = (spec.get("hostname") or meta["name"])[:63]
        if c is first:
            host["network_mode"] = self.network_name
            aliases = self._aliases(pod, services)
            networking = self.docker.api.create_networking_config({self.network_name: self.docker.api.
                                                                   create_endpoint_config(ipv4_address=state.ip,
                                                                                          aliases=aliases)})
        else:
            if first.docker_id is None:
                raise ConfigError(f"waiting for container {first.name} (its network namespace)",
                                  reason="ContainerCreating")
            host["network_mode"] = f"container:{first.docker_id}"
            hostname = None
        labels = {f"{LABEL}/prefix": self.prefix, f"{LABEL}/namespace": state.namespace,
                  f"{LABEL}/pod": state.name, f"{LABEL}/pod-uid": state.uid, f"{LABEL}/container": c.name,
                  f"{LABEL}/container-index": str(c.index)}
        name = _sanitise(f"{self.prefix}-{state.namespace}-{state.name}-{c.name}-{state.uid[:8]}")[:200]
        with contextlib.suppress(docker.errors.NotFound):  # a leftover of an earlier attempt
            self.docker.api.remove_container(name, force=True, v=True)
        created = self.docker.api.create_container(
            cs["image"], command=args, entrypoint=command, environment=[f"{k}={v}" for k, v in env.items()],
            working_dir=cs.get("workingDir"), labels=labels, name=name, hostname=hostname, user=host_user,
            host_config=self.docker.api.create_host_config(**host), networking_config=networking,
            tty=bool(cs.get("tty")), stdin_open=bool(cs.get("stdin")))
        c.docker_id = created["Id"]
        c.handled_finish = None
        state.ip_assigned = True
        try:
            self.docker.api.start(c.docker_id)
        except docker.errors.APIError as exc:  # e.g. the entrypoint does not exist: retried as "created"
            c.state = {"waiting": {"reason": "RunContainerError", "message": str(exc.explanation or exc)}}
            c.restart_at = time.monotonic() + self.backoff_base

    def _aliases(self, pod: Json, services: list[Json]) -> list[str]:
        ns = pod["metadata"]["namespace"]
        labels = pod["metadata"].get("labels") or {}
        names: list[str] = []
        for svc in services:
            if svc["metadata"]["namespace"] == ns and selector_matches((svc.get("spec") or {}).get("selector"),
                                                                       labels):
                names.append(svc["metadata"]["name"])
        spec = pod.get("spec") or {}
        if spec.get("hostname") and spec.get("subdomain"):
            names.append(f"{spec['hostname']}.{spec['subdomain']}")
        aliases: list[str] = []
        for n in names:
            aliases += [n, f"{n}.{ns}", f"{n}.{ns}.svc", f"{n}.{ns}.svc.cluster.local"]
        return aliases

    # ------------------------------------------------------------------ env and volumes

    def _read_source(self, kind: str, namespace: str, name: str, optional: bool) -> dict[str, str] | None:
        try:
            if kind == "Secret":
                obj = self._call(self.core.read_namespaced_secret, name, namespace)
                data = {k: base64.b64decode(v).decode("utf-8", errors="replace")
                        for k, v in (obj.get("data") or {}).items()}
                data.update(obj.get("stringData") or {})
                return data
            obj = self._call(self.core.read_namespaced_config_map, name, namespace)
            return dict(obj.get("data") or {})
        except ApiException as exc:
            if exc.status == 404:
                if optional:
                    return None
                raise ConfigError(f'{kind.lower()} "{name}" not found') from exc
            raise

    def _field(self, pod: Json, state: _Pod, path: str) -> str:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        simple = {"metadata.name": meta["name"], "metadata.namespace": meta["namespace"], "metadata.uid": meta["uid"],
                  "status.podIP": state.ip, "status.podIPs": state.ip, "status.hostIP": self.node_address,
                  "status.hostIPs": self.node_address, "spec.nodeName": self.node_name,
                  "spec.serviceAccountName": spec.get("serviceAccountName", "default")}
        if path in simple:
            return str(simple[path])
        m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
        if m:
            return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
        raise ConfigError(f"unsupported fieldRef {path}")

    def _env(self, pod: Json, state: _Pod, cs: Json) -> dict[str, str]:
        ns = pod["metadata"]["namespace"]
        env: dict[str, str] = {}
        for source in cs.get("envFrom") or []:
            prefix = source.get("prefix", "")
            for kind, key in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
                if key in source:
                    ref = source[key]
                    data = self._read_source(kind, ns, ref["name"], bool(ref.get("optional")))
                    env.update({prefix + k: v for k, v in (data or {}).items()})
        for var in cs.get("env") or []:
            name = var["name"]
            if "value" in var or "valueFrom" not in var:
                env[name] = expand(str(var.get("value", "")), env)
                continue
            vf = var["valueFrom"]
            if "fieldRef" in vf:
                env[name] = self._field(pod, state, vf["fieldRef"]["fieldPath"])
            elif "resourceFieldRef" in vf:
                env[name] = self._resource_field(cs, vf["resourceFieldRef"])
            else:
                kind, key = ("Secret", "secretKeyRef") if "secretKeyRef" in vf else ("ConfigMap", "configMapKeyRef")
                ref = vf.get(key)
                if ref is None:
                    raise ConfigError(f"unsupported valueFrom for env {name}")
                optional = bool(ref.get("optional"))
                data = self._read_source(kind, ns, ref["name"], optional)
                if data is None:
                    continue
                if ref["key"] not in data:
                    if optional:
                        continue
                    raise ConfigError(f"couldn't find key {ref['key']} in {kind} {ns}/{ref['name']}")
                env[name] = data[ref["key"]]
        return env

    @staticmethod
    def _resource_field(cs: Json, ref: Json) -> str:
        group, _, kind = ref["resource"].partition(".")
        value = ((cs.get("resources") or {}).get(group) or {}).get(kind)
        if value is None:
            return "0" if group == "requests" else ""
        divisor = parse_quantity(ref.get("divisor", "1"))
        quantity = parse_quantity(value) / divisor
        return str(int(-(-quantity // 1)))  # rounded up, as Kubernetes does

    def _mounts(self, pod: Json, state: _Pod, cs: Json) -> list[docker.types.Mount]:
        ns = pod["metadata"]["namespace"]
        volumes = {v["name"]: v for v in (pod.get("spec") or {}).get("volumes") or []}
        mounts: list[docker.types.Mount] = []
        for vm in cs.get("volumeMounts") or []:
            vol = volumes.get(vm["name"])
            if vol is None:
                raise ConfigError(f'volume "{vm["name"]}" not found in the pod spec')
            ro = bool(vm.get("readOnly"))
            sub = vm.get("subPath") or ""
            target = vm["mountPath"]
            if "persistentVolumeClaim" in vol:
                claim = vol["persistentVolumeClaim"]["claimName"]
                if (ns, claim) not in self.pvcs:
                    raise ConfigError(f'persistentvolumeclaim "{claim}" not found', reason="ContainerCreating")
                mounts.append(self._volume_mount(target, self._pvc_volume(ns, claim, cs["image"]), ro, sub))
            elif "emptyDir" in vol:
                if (vol["emptyDir"] or {}).get("medium") == "Memory":
                    mounts.append(docker.types.Mount(target, None, type="tmpfs"))
                    continue
                name = _sanitise(f"{self.prefix}-empty-{state.uid[:8]}-{vol['name']}")
                self._volume(name, {f"{LABEL}/kind": "empty", f"{LABEL}/pod-uid": state.uid}, cs["image"])
                mounts.append(self._volume_mount(target, name, ro, sub))
            elif "secret" in vol or "configMap" in vol:
                kind, key = ("Secret", "secret") if "secret" in vol else ("ConfigMap", "configMap")
                src = vol[key]
                source_name = src.get("secretName") if kind == "Secret" else src.get("name")
                path = self._files_volume(state, vol["name"], kind, ns, str(source_name), src)
                mounts.append(docker.types.Mount(target, os.path.join(path, sub), type="bind", read_only=True))
            elif "hostPath" in vol:
                mounts.append(docker.types.Mount(target, os.path.join(vol["hostPath"]["path"], sub), type="bind",
                                                 read_only=ro))
            else:
                raise ConfigError(f'volume "{vm["name"]}": unsupported volume type {sorted(set(vol) - {"name"})}')
        return mounts

    @staticmethod
    def _volume_mount(target: str, source: str, ro: bool, sub: str) -> docker.types.Mount:
        mount = docker.types.Mount(target, source, type="volume", read_only=ro)
        if sub:
            mount.setdefault("VolumeOptions", {})["Subpath"] = sub
        return mount

    def _files_volume(self, state: _Pod, volume: str, kind: str, ns: str, name: str, src: Json) -> str:
        """A secret/configMap volume: the keys as files in a host directory, bind-mounted read-only."""
        data = self._read_source(kind, ns, name, bool(src.get("optional"))) or {}
        path = tempfile.mkdtemp(prefix=f"{self.prefix}-{volume}-")
        os.chmod(path, 0o755)
        state.tmpdirs.append(path)
        mode = int(src.get("defaultMode", 0o644))
        items = src.get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            if item["key"] not in data:
                if src.get("optional"):
                    continue
                raise ConfigError(f"couldn't find key {item['key']} in {kind} {ns}/{name}")
            file = os.path.join(path, item["path"])
            os.makedirs(os.path.dirname(file), exist_ok=True)
            with open(file, "w", encoding="utf-8") as fh:
                fh.write(data[item["key"]])
            os.chmod(file, int(item.get("mode", mode)))
        return path

    # ------------------------------------------------------------------ probes

    def _probe(self, state: _Pod, c: _Container, now: float) -> None:
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            spec = c.spec.get(kind)
            if not spec or (kind == "startupProbe") == c.started:
                continue
            probe = c.probes.get(kind)
            if probe is None:
                probe = c.probes[kind] = _Probe(next_at=c.run_mono + float(spec.get("initialDelaySeconds", 0)))
            if probe.future is not None:
                if probe.future.done():
                    ok = probe.future.exception() is None and bool(probe.future.result())
                    probe.future = None
                    if not probe.timed_out:
                        self._record(state, c, kind, spec, probe, ok)
                elif now >= probe.deadline and not probe.timed_out:
                    probe.timed_out = True
                    self._record(state, c, kind, spec, probe, False)
            if probe.future is None and now >= probe.next_at and c.killing is None:
                timeout = float(spec.get("timeoutSeconds", 1))
                probe.future = self.pool.submit(self._run_probe, spec, state.ip, c, timeout)
                probe.deadline, probe.timed_out = now + timeout + 0.5, False
                probe.next_at = now + float(spec.get("periodSeconds", 10))
        if not c.spec.get("readinessProbe"):
            c.ready = c.started

    def _record(self, state: _Pod, c: _Container, kind: str, spec: Json, probe: _Probe, ok: bool) -> None:
        if ok:
            probe.successes, probe.failures = probe.successes + 1, 0
        else:
            probe.successes, probe.failures = 0, probe.failures + 1
        threshold = int(spec.get("failureThreshold", 3))
        if kind == "readinessProbe":
            if ok and probe.successes >= int(spec.get("successThreshold", 1)):
                c.ready = True
            elif not ok and probe.failures >= threshold:
                c.ready = False
        elif kind == "startupProbe" and ok:
            c.started = True
        elif not ok and probe.failures >= threshold and c.docker_id is not None:  # liveness/startup: restart
            log.info("%s of %s/%s container %s failed %d times: restarting", kind, state.namespace, state.name,
                     c.name, probe.failures)
            grace = int(spec.get("terminationGracePeriodSeconds", state.grace))
            c.ready = False
            c.killing = self.pool.submit(self.docker.api.stop, c.docker_id, timeout=grace)

    def _run_probe(self, spec: Json, ip: str, c: _Container, timeout: float) -> bool:
        if "httpGet" in spec:
            h = spec["httpGet"]
            port = self._port(h.get("port"), c.spec)
            target = h.get("host") or ip
            headers = {x["name"]: x["value"] for x in h.get("httpHeaders") or []}
            headers.setdefault("User-Agent", "kube-probe/1.37")
            conn: http.client.HTTPConnection
            if str(h.get("scheme", "HTTP")).upper() == "HTTPS":
                conn = http.client.HTTPSConnection(target, port, timeout=timeout,
                                                   context=ssl._create_unverified_context())
            else:
                conn = http.client.HTTPConnection(target, port, timeout=timeout)
            try:
                conn.request("GET", h.get("path") or "/", headers=headers)
                return 200 <= conn.getresponse().status < 400
            except (OSError, http.client.HTTPException):
                return False
            finally:
                conn.close()
        if "tcpSocket" in spec:
            t = spec["tcpSocket"]
            try:
                with socket.create_connection((t.get("host") or ip, self._port(t.get("port"), c.spec)), timeout):
                    return True
            except OSError:
                return False
        if "exec" in spec:
            if c.docker_id is None:
                return False
            exec_id = self.docker.api.exec_create(c.docker_id, spec["exec"].get("command") or [])["Id"]
            self.docker.api.exec_start(exec_id)
            return self.docker.api.exec_inspect(exec_id).get("ExitCode") == 0
        self._warn(f"probe-kind-{c.name}", "unsupported probe %s (only httpGet, tcpSocket, exec)", sorted(spec))
        return False

    @staticmethod
    def _port(port: Any, cs: Json) -> int:
        if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
            return int(port)
        for p in cs.get("ports") or []:
            if p.get("name") == port:
                return int(p["containerPort"])
        raise ValueError(f"no container port named {port!r}")

    # ------------------------------------------------------------------ pod status

    def _pod_status(self, pod: Json, state: _Pod) -> Json:
        containers = sorted(state.containers.values(), key=lambda c: c.index)
        statuses = []
        for c in containers:
            status: Json = {"name": c.name, "image": c.spec.get("image", ""), "imageID": c.image_id and
                            f"docker://{c.image_id}", "ready": c.ready,
                            "started": bool(c.has_run and "running" in c.state and c.started),
                            "restartCount": c.restart_count, "state": c.state,
                            "lastState": {"terminated": c.last_terminated} if c.last_terminated else {}}
            if c.docker_id:
                status["containerID"] = f"docker://{c.docker_id}"
            statuses.append(status)
        if containers and all(c.final for c in containers):
            failed = any(c.state["terminated"]["exitCode"] != 0 for c in containers)
            phase = "Failed" if failed else "Succeeded"
        elif containers and all(c.has_run for c in containers):
            phase = "Running"
        else:
            phase = "Pending"
        all_ready = bool(containers) and all(c.ready for c in containers)
        terminal = phase in ("Succeeded", "Failed")
        reason = "PodCompleted" if terminal else "ContainersNotReady"
        conditions = []
        for kind, ok in (("PodScheduled", True), ("Initialized", True), ("ContainersReady", all_ready),
                         ("Ready", all_ready)):
            value = "True" if ok else "False"
            before = state.conditions.get(kind)
            if before is None or before[0] != value:
                state.conditions[kind] = before = (value, _now())
            cond: Json = {"type": kind, "status": value, "lastTransitionTime": before[1]}
            if not ok:
                not_ready = [c.name for c in containers if not c.ready]
                cond["reason"] = reason
                cond["message"] = f"containers with unready status: [{' '.join(not_ready)}]"
            conditions.append(cond)
        status = {"phase": phase, "hostIP": self.node_address, "hostIPs": [{"ip": self.node_address}],
                  "startTime": state.start_time, "conditions": conditions, "containerStatuses": statuses,
                  "qosClass": _qos_class([c.spec for c in containers])}
        if state.ip_assigned:
            status["podIP"] = state.ip
            status["podIPs"] = [{"ip": state.ip}]
        return status

    # ------------------------------------------------------------------ NodePorts

    def _sync_nodeports(self, services: list[Json], pods: list[Json]) -> None:
        if self.nodeports is None:
            return
        wanted: dict[int, list[tuple[str, int]]] = {}
        for svc in services:
            spec = svc.get("spec") or {}
            ns = svc["metadata"]["namespace"]
            selected = [p for p in pods if p["metadata"]["namespace"] == ns and not _terminating(p)
                        and pod_ready(p) and (p.get("status") or {}).get("podIP")
                        and selector_matches(spec.get("selector"), p["metadata"].get("labels"))]
            for port in spec.get("ports") or []:
                if not port.get("nodePort") or port.get("protocol", "TCP") != "TCP":
                    continue
                target = port.get("targetPort", port.get("port"))
                endpoints = []
                for p in selected:
                    number = self._target_port(target, p)
                    if number is not None:
                        endpoints.append((p["status"]["podIP"], number))
                wanted[int(port["nodePort"])] = sorted(endpoints)
        self.nodeports.sync(wanted)

    def _target_port(self, target: Any, pod: Json) -> int | None:
        """A Service's targetPort (a number, or a containerPort name looked up in the pod's containers)."""
        for cs in (pod.get("spec") or {}).get("containers") or []:
            with contextlib.suppress(ValueError):
                return self._port(target, cs)
        return None

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
            if (labels.get(f"{LABEL}/namespace"), labels.get(f"{LABEL}/claim")) not in self.pvcs:
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
