"""What a running cluster published, read back from its containers' labels and ``docker inspect``: how
``connect()`` (and ``start_clipper``, once the containers run) learns the host ports, the state store's address
and the admin token, with nothing remembered in the user's process."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

from docker.models.containers import Container

from clipper_core.errors import ClipperException
from clipper_docker import names
from clipper_docker.names import ROLE_LABEL, Role
from clipper_docker.ports import published_port
from clipper_docker.replicas import labels_of

__all__ = ["Discovered", "discover"]


@dataclass(frozen=True)
class Discovered:
    ports: dict[str, Any]
    """``admin`` and ``redis``: a host port; ``query`` and ``rpc``: one per query frontend."""
    redis_url: str
    """The state store as this process reaches it (the containers use the network-internal name)."""
    admin_token: str | None
    """The management frontend's ``CLIPPER_ADMIN_TOKEN``, if it has one."""


def discover(running: list[Container], cluster: str, ip: str) -> Discovered:
    """Read the published ports (and the state store's address) back from the cluster's running containers;
    ``ip`` is the address the ports are published on."""
    ports: dict[str, Any] = {"query": [], "rpc": []}
    admin_env: dict[str, str] = {}
    for container in running:
        role = labels_of(container).get(ROLE_LABEL)
        if role == Role.MANAGEMENT:
            ports["admin"] = published_port(container.attrs, names.MANAGEMENT_PORT)
            admin_env = dict(e.split("=", 1) for e in (container.attrs["Config"].get("Env") or []) if "=" in e)
        elif role == Role.QUERY:
            ports["query"].append(published_port(container.attrs, names.QUERY_PORT))
            ports["rpc"].append(published_port(container.attrs, names.RPC_PORT))
        elif role == Role.REDIS:
            ports["redis"] = published_port(container.attrs, names.REDIS_PORT)
    if not ports.get("admin") or not ports["query"]:
        raise ClipperException(f"no running clipper cluster {cluster!r} on this Docker engine "
                               "(management or query frontend container missing)")
    store = admin_env.get("CLIPPER_STATE_STORE", "")
    url = urllib.parse.urlsplit(store)
    if url.hostname == names.container_name(cluster, Role.REDIS) and ports.get("redis"):
        netloc = (f"{url.netloc.rsplit('@', 1)[0]}@" if "@" in url.netloc else "") + f"{ip}:{ports['redis']}"
        store = urllib.parse.urlunsplit(url._replace(netloc=netloc))
    return Discovered(ports, store, admin_env.get("CLIPPER_ADMIN_TOKEN"))
