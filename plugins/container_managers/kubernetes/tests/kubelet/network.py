"""The pod network: one user-defined Docker bridge network per kubelet (a 10.244.K.0/24 subnet, K from a random
start until Docker accepts one), static pod IPs allocated from it, and the Docker DNS aliases (``svc``, ``svc.ns``,
``svc.ns.svc``, ``svc.ns.svc.cluster.local``, ``hostname.subdomain``) a pod gets for the Services selecting it."""

from __future__ import annotations

import ipaddress
import random

import docker
import docker.errors
import docker.types

from .util import LABEL, ConfigError, Json, selector_matches


class NetworkMixin:
    """Kubelet's pod network, IPAM and Service aliases."""

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
