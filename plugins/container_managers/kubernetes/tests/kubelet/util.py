"""Shared constants and pure helpers of the emulated kubelet: the Docker label prefix, the merge-patch content type,
the logger, timestamps (API and Docker), name sanitising, the pod-template hash, Kubernetes' ``$(VAR)`` expansion,
Service selector matching, pod readiness/termination/ownership tests, the pod QoS class and :class:`ConfigError`
(a pod's container that cannot be made yet, with the reason shown in its status)."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import datetime, timezone
from typing import Any

from kubernetes.utils import parse_quantity

log = logging.getLogger(__package__)  # "kubelet", the old module's logger, for every module of the package

LABEL = "kubelet.clipper.test"  # label key prefix on everything this kubelet creates in Docker
MERGE = "application/merge-patch+json"
HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' SafeEncodeString alphabet
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
