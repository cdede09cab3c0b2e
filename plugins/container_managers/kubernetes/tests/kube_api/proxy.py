"""Helpers of the service proxy subresource: parsing ``[scheme:]name[:port]``, the proxied tail of the URL, the
hop-by-hop headers not forwarded, which pods are ready endpoints of a service and which port a target port
names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import bad_request
from .resources import JSON
from .util import _labels, _meta

PROXY_TAIL = re.compile(r"/services/[^/]+/proxy(?P<tail>/.*)?$")
def split_proxy_name(name: str) -> tuple[str, str]:
    """``[scheme:]name[:port]`` of a service proxy URL -> (name, port or "")."""
    parts = name.split(":")
    if len(parts) == 3 and parts[0] in ("http", "https"):
        parts = parts[1:]
    if len(parts) > 2 or not parts[0]:
        raise bad_request(f"invalid service request {name!r}")
    return parts[0], parts[1] if len(parts) == 2 else ""


HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "trailers", "transfer-encoding", "upgrade", "host", "content-length", "authorization"})


def _is_ready_endpoint(pod: JSON, selector: Mapping[str, str]) -> bool:
    labels = _labels(pod)
    status = pod.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return (all(labels.get(k) == v for k, v in selector.items()) and ready and bool(status.get("podIP"))
            and not _meta(pod).get("deletionTimestamp"))


def _resolve_target_port(pod: JSON, target: Any) -> int | None:
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target:
                return int(port["containerPort"])
    return None
