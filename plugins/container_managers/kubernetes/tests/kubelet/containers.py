"""Turning a pod's container spec into a Docker container: command/args → entrypoint/cmd (``$(VAR)``-expanded),
env, mounts, memory/cpu limits, securityContext user/groups/privileged, the pod IP, aliases and ``/etc/hosts``
entries for the API server on the pod network for the first container (the others join its network namespace),
labels and name, then create and start it."""

from __future__ import annotations

import contextlib
import time

import docker
import docker.errors
from kubernetes.utils import parse_quantity

from .state import _Container, _Pod
from .util import LABEL, ConfigError, Json, _sanitise, expand


class ContainersMixin:
    """Kubelet's pod-spec-to-Docker-container translation."""

    def _create_container(self, pod: Json, state: _Pod, c: _Container, services: list[Json]) -> None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        cs = c.spec
        if spec.get("initContainers"):
            raise ConfigError("initContainers are not supported by the emulated kubelet (tests/kubelet/)")
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
            if extra_hosts := self._api_hosts():
                host["extra_hosts"] = extra_hosts
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
