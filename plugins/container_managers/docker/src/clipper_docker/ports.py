"""Host addresses and ports: where the cluster's ports are published."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

from clipper_core.errors import ClipperException

__all__ = ["find_free_port", "port_in_use_error", "published_port", "resolve_publish_ip"]

_SCAN = 2000


def resolve_publish_ip(address: str) -> str:
    """The IP address host ports are published on: ``localhost`` → ``127.0.0.1``, a name → its IPv4 address."""
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(address))
    if address == "localhost":
        return "127.0.0.1"
    try:
        return socket.gethostbyname(address)
    except OSError as exc:
        raise ClipperException(f"docker_ip_address {address!r} does not resolve: {exc}") from None


def _bindable(ip: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((ip, port))
        except OSError:
            return False
    return True


def find_free_port(ip: str, wanted: int, avoid: Iterable[int] = ()) -> int:
    """``wanted`` if it can be bound on ``ip``, else the first free port above it; 0 stays 0 (Docker picks).

    Like Clipper's ``find_unbound_port`` this only sees this machine: with a remote Docker host a taken port
    shows up when the container starts, and the manager then moves on to the next port."""
    if wanted == 0:
        return 0
    skip = set(avoid)
    for port in range(wanted, min(wanted + _SCAN, 65536)):
        if port not in skip and _bindable(ip, port):
            return port
    raise ClipperException(f"no free port on {ip} in {wanted}..{min(wanted + _SCAN, 65536) - 1}")


def port_in_use_error(exc: Exception) -> bool:
    """Docker's refusal to publish a port another process or container holds."""
    text = str(exc).lower()
    return "port is already allocated" in text or "address already in use" in text


def published_port(attrs: dict[str, Any], container_port: int) -> int | None:
    """The host port a container's ``container_port/tcp`` is published on (from ``docker inspect``)."""
    bindings = ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).get(f"{container_port}/tcp") or []
    for binding in bindings:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            return int(binding["HostPort"])
    return None
