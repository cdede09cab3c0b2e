"""An emulated Kubernetes API server for the clipper_kubernetes tests.

What it is: a subclass of ``kmock.KubernetesEmulator`` that answers the official ``kubernetes``
Python client like a kube-apiserver 1.37 would, for the resources the plugin uses:

* core/v1: namespaces, pods (+log, +status), services (+status, +proxy), secrets, configmaps,
  persistentvolumeclaims (+status), nodes (+status), events;
* apps/v1: deployments (+scale, +status).

It keeps kmock's object store (``self._objects``, keyed ``(resource, namespace, name)``, with history),
its watch buses, request recording (``list(server)``, ``server[-1]``, kmock's DSL views), discovery and
Status rendering (raise ``kmock.KubernetesError``), and adds:
create/replace/patch (merge, strategic-merge, json-patch)/delete/deletecollection with server-side
fields (uid, one global resourceVersion counter, creationTimestamp, generation, generateName),
defaulting (Deployment replicas/strategy, Service type/clusterIP/ports/nodePorts, Pod/PVC phase),
validation (the 1.37 JSON schemas via ``kubernetes_validate`` in strict mode, plus names, labels,
annotations, Deployment selectors), status and scale subresources, label and field selectors on
lists and watches (watches honour ``timeoutSeconds`` and ``resourceVersion``), graceful pod deletion,
finalizers, garbage collection of dependents by ownerReferences, pod logs from a pluggable source,
a service proxy to "ready" pods, bearer-token authentication, an RBAC deny list and one-shot error
injection.

What it is NOT: there is no scheduler, no controllers (no ReplicaSets, no Endpoints, no pods are made
for a Deployment, no status is ever computed — the kubelet stand-in in ``tests/kubelet.py`` plays those
parts; only the garbage collector's deletion of dependents is emulated), no admission webhooks or quotas,
no real RBAC (only the deny list), no server-side apply, no YAML/protobuf/CBOR bodies (JSON only), no
pagination (``limit``/``continue`` are ignored), no watch bookmarks, no TLS (plain http on loopback),
no ``follow`` for logs (the log is answered once), no ``kubernetes`` Service in ``default``, and
strategic merge is approximated (see :func:`strategic_merge_patch`). kmock DSL reactions
(``server['get /x'] << ...``) still work for paths that are not Kubernetes resources; for resources use
:meth:`KubeApiEmulator.fail_next` instead.

The runner :func:`running_api_server` serves it on 127.0.0.1 in a daemon thread with its own event
loop and writes a kubeconfig file, so tests configure the client exactly as production code does::

    with running_api_server() as api:
        client = kubernetes.config.new_client_from_config(config_file=api.kubeconfig)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import concurrent.futures
import contextlib
import copy
import dataclasses
import datetime
import inspect
import ipaddress
import json
import math
import re
import secrets
import shutil
import tempfile
import threading
import traceback
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import aiohttp.web
import attrs
import jsonpatch
import jsonpointer
import kmock
import kubernetes_validate
import multidict
import yaml
import yarl
from kmock._internal import parsing as kmock_parsing
from kmock._internal.aiobus import Bus, BusMark
from kmock._internal.apps import KMockError

__all__ = [
    "ApiServerHandle",
    "KubeApiEmulator",
    "LogSource",
    "ResourceType",
    "label_selector_matches",
    "merge_patch",
    "parse_field_selector",
    "parse_label_selector",
    "running_api_server",
    "strategic_merge_patch",
    "write_kubeconfig",
]

T = TypeVar("T")
JSON = dict[str, Any]

KUBE_VERSION = "1.37.0"
DEFAULT_USER = "system:serviceaccount:default:clipper"
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public")
SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/16")
NODE_PORT_RANGE = range(30000, 32768)
WATCH_HISTORY = 2000  # events per resource kept for watches resuming from a resourceVersion

LogSource = Callable[[str, str, "str | None", "int | None", bool], "str | None"]
"""``log_source(namespace, pod_name, container_or_None, tail_lines_or_None, timestamps) -> text or None``."""

ALL_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
STATUS_VERBS = ("get", "patch", "update")


# --------------------------------------------------------------------------------------------------------------------
# Resource table
# --------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ResourceType:
    """One served resource: where it lives, what it is called, what can be done to it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[str, ...] = ()
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def ref(self) -> kmock.resource:
        return kmock.resource(self.group, self.version, self.plural)

    @property
    def group_resource(self) -> str:
        """``deployments.apps`` / ``pods``: how the server names it in NotFound/AlreadyExists/Forbidden."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        """``Deployment.apps`` / ``Pod``: how the server names it in Invalid messages."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def singular(self) -> str:
        return self.kind.lower()

    def has(self, subresource: str) -> bool:
        return subresource in self.subresources


RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "namespaces", "Namespace", False,
                 ("get", "list", "watch", "create", "update", "patch", "delete"), ("status",), ("ns",)),
    ResourceType("", "v1", "pods", "Pod", True, subresources=("log", "status"), short_names=("po",)),
    ResourceType("", "v1", "services", "Service", True,
                 ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"),
                 ("proxy", "status"), ("svc",)),
    ResourceType("", "v1", "secrets", "Secret", True),
    ResourceType("", "v1", "configmaps", "ConfigMap", True, short_names=("cm",)),
    ResourceType("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, subresources=("status",),
                 short_names=("pvc",)),
    ResourceType("", "v1", "nodes", "Node", False, subresources=("status",), short_names=("no",)),
    ResourceType("", "v1", "events", "Event", True, short_names=("ev",)),
    ResourceType("apps", "v1", "deployments", "Deployment", True, subresources=("scale", "status"),
                 short_names=("deploy",)),
)
RESOURCE_TYPES: dict[tuple[str, str, str], ResourceType] = {(r.group, r.version, r.plural): r for r in RESOURCES}
GROUP_VERSIONS: frozenset[tuple[str, str]] = frozenset((r.group, r.version) for r in RESOURCES)
COLLECTION_DELETABLE = frozenset({"deployments", "pods", "services", "secrets", "configmaps", "persistentvolumeclaims",
                                  "events"})
RETURNS_DELETED_OBJECT = frozenset({"pods", "services", "persistentvolumeclaims", "namespaces"})
GENERATION_TRACKED = frozenset({"deployments", "pods"})
UNDELETABLE_NAMESPACES = frozenset(INITIAL_NAMESPACES)
PROTECTED_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")

FIELD_SELECTABLE: dict[str, frozenset[str]] = {
    "pods": frozenset({"spec.nodeName", "status.phase", "status.podIP", "spec.restartPolicy", "spec.schedulerName",
                       "spec.serviceAccountName"}),
    "namespaces": frozenset({"status.phase"}),
    "secrets": frozenset({"type"}),
    "events": frozenset({"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                         "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                         "involvedObject.fieldPath", "reason", "type", "source", "reportingComponent"}),
    "nodes": frozenset({"spec.unschedulable"}),
}


# --------------------------------------------------------------------------------------------------------------------
# Errors, rendered by kmock as v1 Status objects
# --------------------------------------------------------------------------------------------------------------------


def _details(rt: ResourceType, name: str | None, kind: str | None = None, **extra: Any) -> JSON:
    details: JSON = {"name": name} if name else {}
    if rt.group:
        details["group"] = rt.group
    details["kind"] = kind or rt.plural
    details.update(extra)
    return details


def bad_request(message: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=400, reason="BadRequest", message=message)


def not_found(rt: ResourceType, name: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=404, reason="NotFound", message=f'{rt.group_resource} "{name}" not found',
                                 details=_details(rt, name))


def namespace_not_found(namespace: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=404, reason="NotFound", message=f'namespaces "{namespace}" not found',
                                 details={"name": namespace, "kind": "namespaces"})


def no_such_resource() -> kmock.KubernetesError:
    return kmock.KubernetesError(
        status=404, reason="NotFound", message="the server could not find the requested resource",
        details={"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})


def already_exists(rt: ResourceType, name: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=409, reason="AlreadyExists",
                                 message=f'{rt.group_resource} "{name}" already exists', details=_details(rt, name))


def conflict(rt: ResourceType, name: str, why: str = "the object has been modified; please apply your changes to "
                                                      "the latest version and try again") -> kmock.KubernetesError:
    return kmock.KubernetesError(status=409, reason="Conflict",
                                 message=f'Operation cannot be fulfilled on {rt.group_resource} "{name}": {why}',
                                 details=_details(rt, name))


def method_not_allowed() -> kmock.KubernetesError:
    return kmock.KubernetesError(status=405, reason="MethodNotAllowed",
                                 message="the server does not allow this method on the requested resource")


def unsupported_media_type(content_type: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=415, reason="UnsupportedMediaType",
                                 message=f'the body of the request was in an unknown format - accepted media types '
                                         f'include: application/json-patch+json, application/merge-patch+json, '
                                         f'application/strategic-merge-patch+json (got "{content_type}")')


@dataclasses.dataclass(frozen=True)
class FieldError:
    """One cause of a 422 Invalid answer: the field path and what is wrong with it."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def render(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def invalid(rt: ResourceType, name: str | None, errors: list[FieldError]) -> kmock.KubernetesError:
    texts = [error.render() for error in errors]
    summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    causes = [{"reason": e.reason, "message": e.message, "field": e.field} for e in errors]
    return kmock.KubernetesError(status=422, reason="Invalid",
                                 message=f'{rt.group_kind} "{name or ""}" is invalid: {summary}',
                                 details=_details(rt, name, kind=rt.kind, causes=causes))


# --------------------------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _random_suffix(length: int = 5) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"  # what the real apiserver uses: no vowels, no look-alikes
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _meta(obj: Mapping[str, Any]) -> JSON:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _labels(obj: Mapping[str, Any]) -> dict[str, str]:
    labels = _meta(obj).get("labels")
    return labels if isinstance(labels, dict) else {}


def _dig(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _json_path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _int_param(params: Mapping[str, str], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise bad_request(f'invalid value for {name}: "{value}"') from None


def _status_success(rt: ResourceType, obj: JSON) -> JSON:
    meta = _meta(obj)
    return {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Success",
            "details": _details(rt, meta.get("name"), uid=meta.get("uid"))}


def _json_response(payload: Any, status: int = 200) -> aiohttp.web.Response:
    return aiohttp.web.json_response(payload, status=status)


# --------------------------------------------------------------------------------------------------------------------
# Names, labels, annotations
# --------------------------------------------------------------------------------------------------------------------

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
MSG_SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                 "and must start and end with an alphanumeric character")
MSG_LABEL = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
             "and must start and end with an alphanumeric character")
MSG_DNS1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
               "alphabetic character, and end with an alphanumeric character")
MSG_QUALIFIED = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
                 "an alphanumeric character")


def dns_subdomain_errors(value: str) -> list[str]:
    errors = [] if DNS1123_SUBDOMAIN.fullmatch(value) else [MSG_SUBDOMAIN]
    return errors + (["must be no more than 253 characters"] if len(value) > 253 else [])


def dns_label_errors(value: str) -> list[str]:
    errors = [] if DNS1123_LABEL.fullmatch(value) else [MSG_LABEL]
    return errors + (["must be no more than 63 characters"] if len(value) > 63 else [])


def dns1035_label_errors(value: str) -> list[str]:
    errors = [] if DNS1035_LABEL.fullmatch(value) else [MSG_DNS1035]
    return errors + (["must be no more than 63 characters"] if len(value) > 63 else [])


def qualified_name_errors(key: str) -> list[str]:
    """Label and annotation keys: ``[prefix/]name`` with a DNS subdomain prefix and a 63-character name."""
    prefix, slash, name = key.rpartition("/")
    errors: list[str] = []
    if slash and not prefix:
        errors.append("prefix part must be non-empty")
    elif slash:
        errors += [f"prefix part {e}" for e in dns_subdomain_errors(prefix)]
    if not name:
        errors.append("name part must be non-empty")
    elif not QUALIFIED_NAME.fullmatch(name):
        errors.append(MSG_QUALIFIED)
    if len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    return errors


def label_value_errors(value: Any) -> list[str]:
    if not isinstance(value, str):
        return ["must be a string"]
    errors = [] if value == "" or QUALIFIED_NAME.fullmatch(value) else [
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
        "and must start and end with an alphanumeric character"]
    return errors + (["must be no more than 63 characters"] if len(value) > 63 else [])


def label_map_errors(labels: Any, field: str) -> list[FieldError]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [FieldError(field, "Invalid value: must be a map of strings")]
    errors: list[FieldError] = []
    for key, value in labels.items():
        errors += [FieldError(field, f'Invalid value: "{key}": {e}') for e in qualified_name_errors(key)]
        errors += [FieldError(field, f'Invalid value: "{value}": {e}') for e in label_value_errors(value)]
    return errors


def annotation_errors(annotations: Any) -> list[FieldError]:
    if annotations is None:
        return []
    if not isinstance(annotations, dict):
        return [FieldError("metadata.annotations", "Invalid value: must be a map of strings")]
    errors = [FieldError("metadata.annotations", f'Invalid value: "{key}": {e}')
              for key in annotations for e in qualified_name_errors(key)]
    size = sum(len(k) + len(str(v)) for k, v in annotations.items())
    if size > 256 * 1024:
        errors.append(FieldError("metadata.annotations", "Too long: must have at most 262144 bytes",
                                 "FieldValueTooLong"))
    return errors


# --------------------------------------------------------------------------------------------------------------------
# Label and field selectors
# --------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Requirement:
    """One term of a selector: ``key op values``; op is one of = != in notin exists !exists."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, fields: Mapping[str, str]) -> bool:
        present = self.key in fields
        value = fields.get(self.key)
        match self.op:
            case "exists":
                return present
            case "!exists":
                return not present
            case "=" | "in":
                return present and value in self.values
            case "!=" | "notin":  # like the real server: absence of the key matches "!=" and "notin"
                return not present or value not in self.values
        raise AssertionError(self.op)


LABEL_TERM = re.compile(r"\s*(?P<key>[^\s!=,()]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s!=,()]*)\s*")
SET_TERM = re.compile(r"\s*(?P<key>[^\s!=,()]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)\s*")
EXISTS_TERM = re.compile(r"\s*(?P<neg>!?)\s*(?P<key>[^\s!=,()]+)\s*")


def _split_terms(selector: str) -> list[str]:
    """Split on the commas that are not inside ``( )``."""
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [] if selector.strip() == "" else terms


def _parse_label_term(term: str) -> Requirement:
    if match := SET_TERM.fullmatch(term):
        if not match["values"].strip():
            raise ValueError(f"for 'in', 'notin' operators, values set can't be empty: {term.strip()!r}")
        values = tuple(v.strip() for v in match["values"].split(","))
        requirement = Requirement(match["key"], "in" if match["op"] == "in" else "notin", values)
    elif match := LABEL_TERM.fullmatch(term):
        requirement = Requirement(match["key"], "!=" if match["op"] == "!=" else "=", (match["value"],))
    elif match := EXISTS_TERM.fullmatch(term):
        requirement = Requirement(match["key"], "!exists" if match["neg"] else "exists")
    else:
        raise ValueError(f"unable to parse requirement: {term.strip()!r}")
    if errors := qualified_name_errors(requirement.key):
        raise ValueError(f"invalid label key {requirement.key!r}: {errors[0]}")
    for value in requirement.values:
        if errors := label_value_errors(value):
            raise ValueError(f"invalid label value: {value!r}: {errors[0]}")
    return requirement


def parse_label_selector(selector: str | None) -> list[Requirement]:
    """Parse ``k=v,k==v,k!=v,k in (a,b),k notin (a,b),k,!k``; raise ValueError when malformed."""
    return [_parse_label_term(term) for term in _split_terms(selector or "")]


def label_selector_matches(requirements: list[Requirement], labels: Mapping[str, str]) -> bool:
    return all(requirement.matches(labels) for requirement in requirements)


FIELD_TERM = re.compile(r"\s*(?P<key>[A-Za-z0-9_.]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^,]*?)\s*")


def parse_field_selector(selector: str | None, allowed: frozenset[str]) -> list[Requirement]:
    """Parse ``field=value,field==value,field!=value``; raise ValueError when malformed or not supported."""
    requirements = []
    for term in _split_terms(selector or ""):
        match = FIELD_TERM.fullmatch(term)
        if not match:
            raise ValueError(f"invalid selector: '{selector}'; can't understand '{term.strip()}'")
        if match["key"] not in allowed:
            raise ValueError(f'field label not supported: {match["key"]}')
        requirements.append(Requirement(match["key"], "!=" if match["op"] == "!=" else "=", (match["value"],)))
    return requirements


def field_selector_matches(requirements: list[Requirement], obj: Mapping[str, Any]) -> bool:
    for requirement in requirements:
        actual = _dig(obj, requirement.key)
        actual_text = "" if actual is None else (str(actual).lower() if isinstance(actual, bool) else str(actual))
        if (actual_text == requirement.values[0]) != (requirement.op == "="):
            return False
    return True


@dataclasses.dataclass(frozen=True)
class Selection:
    """What a list/watch/deletecollection asks for: a namespace (or all), selectors, maybe one name."""

    namespace: str | None
    labels: list[Requirement]
    fields: list[Requirement]
    name: str | None = None

    def matches(self, obj: Mapping[str, Any]) -> bool:
        meta = _meta(obj)
        return ((self.namespace is None or meta.get("namespace") == self.namespace)
                and (self.name is None or meta.get("name") == self.name)
                and label_selector_matches(self.labels, _labels(obj))
                and field_selector_matches(self.fields, obj))


def selection_of(rt: ResourceType, request: kmock.Request) -> Selection:
    allowed = frozenset({"metadata.name", "metadata.namespace"}) | FIELD_SELECTABLE.get(rt.plural, frozenset())
    try:
        labels = parse_label_selector(request.params.get("labelSelector"))
        fields = parse_field_selector(request.params.get("fieldSelector"), allowed)
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    return Selection(request.namespace, labels, fields, request.name)


# --------------------------------------------------------------------------------------------------------------------
# Patches
# --------------------------------------------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: dicts merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


LIST_MERGE_KEYS = ("name", "type", "containerPort", "port", "mountPath", "devicePath", "ip")


def _list_merge_key(target: list[Any], patch: list[Any]) -> str | None:
    items = target + patch
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    for key in LIST_MERGE_KEYS:
        if all(key in item for item in items):
            return key
    return None


def _strategic_merge_list(target: list[Any], patch: list[Any]) -> list[Any]:
    key = None
    if all(isinstance(item, dict) for item in patch):
        key = _list_merge_key(target, [item for item in patch if item.get("$patch") != "delete"])
    if key is None:
        return [_strip_directives(item) for item in patch]
    result = copy.deepcopy(target)
    for item in patch:
        index = next((i for i, existing in enumerate(result) if existing.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append(_strip_directives(item))
        else:
            result[index] = strategic_merge_patch(result[index], item)
    return result


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """An approximation of Kubernetes' strategic merge patch.

    Like a JSON merge patch (dicts merge, ``null`` deletes), except that a list of objects merges item by item
    when every item (old and new) carries the same key, tried in this order: ``name`` (containers, env, ports,
    volumes...), ``type`` (conditions), ``containerPort``, ``port``, ``mountPath``, ``devicePath``, ``ip``.
    A patch item ``{"name": x, "$patch": "delete"}`` removes the item; ``{"$patch": "replace"}`` in a dict
    replaces it whole; other ``$`` directives (``$setElementOrder/...``, ``$retainKeys``) are ignored.
    Lists of scalars, or of objects without a common key, are replaced. The real server uses per-field merge
    keys from the Go types (e.g. Service ports merge by ``port`` even when they are named): close, not equal.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return _strip_directives(patch)
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _strategic_merge_list(result[key], value)
        else:
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    return result


def apply_patch(rt: ResourceType, name: str, current: JSON, content_type: str, patch: Any) -> JSON:
    """Apply a PATCH body according to its Content-Type; answer 400/415/422 like the real server."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "application/json-patch+json":
        if not isinstance(patch, list):
            raise bad_request("json patch must be a list of operations")
        try:
            patched = jsonpatch.apply_patch(copy.deepcopy(current), patch)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, KeyError) as exc:
            raise invalid(rt, name, [FieldError("", f"the server rejected our request due to an error in our "
                                                    f"request: {exc}")]) from None
        if not isinstance(patched, dict):
            raise bad_request("json patch must produce an object")
        return patched
    if media_type not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
        raise unsupported_media_type(content_type)
    if not isinstance(patch, dict):
        raise bad_request(f"the body of the request must be a JSON object for {media_type}")
    if media_type == "application/merge-patch+json":
        merged: JSON = merge_patch(current, patch)
        return merged
    strategic: JSON = strategic_merge_patch(current, patch)
    return strategic


# --------------------------------------------------------------------------------------------------------------------
# Defaulting
# --------------------------------------------------------------------------------------------------------------------


def _default_container(container: JSON) -> None:
    image = str(container.get("image", ""))
    tag = image.rsplit("/", 1)[-1]
    latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
    container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def default_pod_spec(spec: Any) -> None:
    """The pod-spec defaults a real server fills in (for Pods and for Deployment templates)."""
    if not isinstance(spec, dict):
        return
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                _default_container(container)


def default_deployment(obj: JSON) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {})
    if isinstance(strategy, dict):
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            if isinstance(rolling, dict):
                rolling.setdefault("maxSurge", "25%")
                rolling.setdefault("maxUnavailable", "25%")
    template = spec.get("template")
    if isinstance(template, dict):
        default_pod_spec(template.get("spec"))


def default_secret(obj: JSON) -> None:
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def default_namespace(obj: JSON) -> None:
    name = _meta(obj).get("name")
    if name:
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])


# --------------------------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------------------------


def _schema_errors(obj: JSON) -> list[FieldError]:
    try:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = _json_path(exc.absolute_path)
        if exc.validator == "additionalProperties":
            unknown = re.findall(r"'([^']+)'", exc.message.split("(", 1)[-1])
            return [FieldError(_json_path([*exc.absolute_path, key]), f'Invalid value: unknown field "{key}"',
                               "FieldValueNotSupported") for key in unknown or ["?"]]
        if exc.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", exc.message)
            return [FieldError(_json_path([*exc.absolute_path, key]), "Required value", "FieldValueRequired")
                    for key in missing]
        return [FieldError(path, f"Invalid value: {exc.message}")]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [FieldError("kind", f"Invalid value: {exc.message}")]
    return []


def _name_errors(rt: ResourceType, obj: JSON) -> list[FieldError]:
    name = _meta(obj).get("name")
    if not name:
        return [FieldError("metadata.name", "Required value: name or generateName is required", "FieldValueRequired")]
    if rt.plural == "services":
        messages = dns1035_label_errors(name)
    elif rt.plural == "namespaces":
        messages = dns_label_errors(name)
    else:
        messages = dns_subdomain_errors(name)
    return [FieldError("metadata.name", f'Invalid value: "{name}": {m}') for m in messages]


def _container_errors(spec: Any, path: str) -> list[FieldError]:
    if not isinstance(spec, dict):
        return []
    errors: list[FieldError] = []
    containers = spec.get("containers")
    if not containers:
        errors.append(FieldError(f"{path}.containers", "Required value", "FieldValueRequired"))
    seen: set[str] = set()
    for index, container in enumerate(containers or []):
        here = f"{path}.containers[{index}]"
        name = container.get("name") or ""
        errors += [FieldError(f"{here}.name", f'Invalid value: "{name}": {m}') for m in dns_label_errors(name)]
        if name in seen:
            errors.append(FieldError(f"{here}.name", f'Duplicate value: "{name}"', "FieldValueDuplicate"))
        seen.add(name)
        if not container.get("image"):
            errors.append(FieldError(f"{here}.image", "Required value", "FieldValueRequired"))
        for pindex, port in enumerate(container.get("ports") or []):
            number = port.get("containerPort")
            if not isinstance(number, int) or not 0 < number < 65536:
                errors.append(FieldError(f"{here}.ports[{pindex}].containerPort",
                                         f"Invalid value: {number}: must be between 1 and 65535, inclusive"))
    return errors


SELECTOR_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}


def _selector_matches_labels(selector: Any, labels: Mapping[str, str]) -> bool:
    if not isinstance(selector, dict):
        return False
    match_labels = selector.get("matchLabels") or {}
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        op = SELECTOR_OPERATORS.get(expression.get("operator"))
        requirement = Requirement(expression.get("key", ""), op or "?", tuple(expression.get("values") or ()))
        if op is None or not requirement.matches(labels):
            return False
    return True


def _deployment_errors(obj: JSON) -> list[FieldError]:
    spec = obj.get("spec") or {}
    template = spec.get("template") or {}
    template_labels = _labels(template)
    selector = spec.get("selector")
    errors: list[FieldError] = []
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        errors.append(FieldError("spec.selector", "Invalid value: empty selector is invalid for deployment"))
    elif not _selector_matches_labels(selector, template_labels):
        errors.append(FieldError("spec.template.metadata.labels",
                                 f"Invalid value: {json.dumps(template_labels)}: `selector` does not match template "
                                 f"`labels`"))
    if isinstance(spec.get("replicas"), int) and spec["replicas"] < 0:
        errors.append(FieldError("spec.replicas",
                                 f"Invalid value: {spec['replicas']}: must be greater than or equal to 0"))
    errors += label_map_errors(template_labels, "spec.template.metadata.labels")
    errors += _container_errors(template.get("spec"), "spec.template.spec")
    if (template.get("spec") or {}).get("restartPolicy", "Always") != "Always":
        errors.append(FieldError("spec.template.spec.restartPolicy", 'Unsupported value: only "Always" is supported',
                                 "FieldValueNotSupported"))
    return errors


def _service_errors(obj: JSON) -> list[FieldError]:
    spec = obj.get("spec") or {}
    ports = spec.get("ports") or []
    errors: list[FieldError] = []
    if not ports and spec.get("clusterIP") != "None" and spec.get("type") != "ExternalName":
        errors.append(FieldError("spec.ports", "Required value", "FieldValueRequired"))
    names: set[str] = set()
    for index, port in enumerate(ports):
        number = port.get("port")
        if not isinstance(number, int) or not 0 < number < 65536:
            errors.append(FieldError(f"spec.ports[{index}].port",
                                     f"Invalid value: {number}: must be between 1 and 65535, inclusive"))
        name = port.get("name")
        if len(ports) > 1 and not name:
            errors.append(FieldError(f"spec.ports[{index}].name", "Required value", "FieldValueRequired"))
        if name and name in names:
            errors.append(FieldError(f"spec.ports[{index}].name", f'Duplicate value: "{name}"', "FieldValueDuplicate"))
        names.add(name or "")
    errors += label_map_errors(spec.get("selector"), "spec.selector")
    return errors


def _secret_errors(obj: JSON) -> list[FieldError]:
    errors: list[FieldError] = []
    for key, value in (obj.get("data") or {}).items():
        try:
            base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            errors.append(FieldError(f"data[{key}]", "Invalid value: illegal base64 data"))
    return errors


KIND_VALIDATORS: dict[str, Callable[[JSON], list[FieldError]]] = {
    "deployments": _deployment_errors,
    "services": _service_errors,
    "secrets": _secret_errors,
    "pods": lambda obj: _container_errors(obj.get("spec"), "spec"),
}


def validate_object(rt: ResourceType, obj: JSON) -> None:
    """Raise a 422 Invalid KubernetesError unless the object is valid for a 1.37 server."""
    errors = _schema_errors(obj)
    if not errors:
        meta = _meta(obj)
        errors = _name_errors(rt, obj) + label_map_errors(meta.get("labels"), "metadata.labels")
        errors += annotation_errors(meta.get("annotations"))
        kind_validator = KIND_VALIDATORS.get(rt.plural)
        errors += kind_validator(obj) if kind_validator else []
    if errors:
        raise invalid(rt, _meta(obj).get("name"), errors)


def check_type_meta(rt: ResourceType, body: JSON, *, kind: str | None = None, api_version: str | None = None) -> None:
    """The body's apiVersion/kind must be the URL's (when given); fill them in when absent."""
    expected_kind, expected_version = kind or rt.kind, api_version or rt.api_version
    if body.get("apiVersion") not in (None, "", expected_version):
        raise bad_request(f"the API version in the data ({body['apiVersion']}) does not match the expected API "
                          f"version ({expected_version})")
    if body.get("kind") not in (None, "", expected_kind):
        raise bad_request(f"the kind in the data ({body['kind']}) does not match the expected kind ({expected_kind})")
    body["apiVersion"], body["kind"] = expected_version, expected_kind


# --------------------------------------------------------------------------------------------------------------------
# URL parsing (kmock's parser cannot parse /api/v1/namespaces[/x[/status]] or services/x:port/proxy/...)
# --------------------------------------------------------------------------------------------------------------------

NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


def parse_api_path(path: str) -> kmock_parsing.ParsedPath:
    """Split a Kubernetes API URL into group, version, plural, namespace, name, subresource."""
    parts = path.strip("/").split("/")
    version: str | None
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 2 and parts[0] == "apis":
        group, version, rest = parts[1], (parts[2] if len(parts) > 2 else None), parts[3:]
    else:
        return kmock_parsing.ParsedPath()
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in NAMESPACE_SUBRESOURCES:
        namespace, rest = rest[1], rest[2:]
    plural = rest[0] if rest else None
    name = rest[1] if len(rest) > 1 else None
    subresource = "/".join(rest[2:]) or None
    return kmock_parsing.ParsedPath(group, version, plural, namespace, name, subresource)


def _decode_body(body: bytes) -> Any:
    """JSON bodies only: YAML, protobuf and CBOR are not served."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def request_verb(request: kmock.Request) -> str:
    """The RBAC verb of a request (the proxy subresource uses the plain HTTP verbs)."""
    method = str(request.method.value).upper()
    if method == "GET":
        if request.name is None:
            return "watch" if request.params.get("watch") in ("true", "1") else "list"
        return "watch" if request.params.get("watch") in ("true", "1") else "get"
    collection = {"POST": "create", "DELETE": "deletecollection"}
    named = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete", "HEAD": "get"}
    return (named if request.name is not None else collection).get(method, method.lower())


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


# --------------------------------------------------------------------------------------------------------------------
# RBAC deny list and error injection
# --------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Rule:
    """Matches requests by verb, ``plural[/subresource]``, namespace (None: any) and API group."""

    verb: str
    resource: str
    namespace: str | None = None
    group: str = ""

    def matches(self, verb: str, resource: str, namespace: str | None, group: str) -> bool:
        return (self.verb in (verb, "*") and self.resource in (resource, "*") and self.group == group
                and (self.namespace is None or self.namespace == namespace))


@dataclasses.dataclass
class InjectedFailure:
    rule: Rule
    error: kmock.KubernetesError
    remaining: int


# --------------------------------------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------------------------------------


@attrs.define(kw_only=True)
class KubeApiEmulator(kmock.KubernetesEmulator):
    """kmock's KubernetesEmulator made to behave like a kube-apiserver 1.37 for the resources in RESOURCES."""

    token: str | None = None  # None: no authentication
    user: str = DEFAULT_USER  # who the token belongs to, for Forbidden messages
    log_source: LogSource | None = None
    proxy_timeout: float = 10.0
    garbage_collect: bool = True  # delete dependents (by ownerReferences) of deleted objects, like the GC controller

    _rv: int = attrs.field(default=1, init=False)
    _rules_lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)
    _denials: list[Rule] = attrs.field(factory=list, init=False)
    _failures: list[InjectedFailure] = attrs.field(factory=list, init=False)
    _history: dict[str, collections.deque[tuple[int, JSON]]] = attrs.field(factory=dict, init=False)
    _closing: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)
    _session: aiohttp.ClientSession | None = attrs.field(default=None, init=False)
    _executor: concurrent.futures.ThreadPoolExecutor = attrs.field(
        factory=lambda: concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="kube-api-logs"),
        init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for rt in RESOURCES:
            self.resources[rt.ref] = kmock.ResourceInfo(
                namespaced=rt.namespaced, kind=rt.kind, singular=rt.singular, verbs=set(rt.verbs),
                shortnames=set(rt.short_names), subresources=set(rt.subresources))
        # The official client asks for /version/, /api/, /apis/ with a trailing slash; kmock matches exact paths.
        self.fallback["get /version/"] << self._serve_server_version
        self.fallback["get /api/"] << self._serve_api
        self.fallback["get /apis/"] << self._serve_apis
        for probe in ("/healthz", "/livez", "/readyz"):
            self.fallback[f"get {probe}"] << b"ok"
        namespaces = RESOURCE_TYPES["", "v1", "namespaces"]
        for name in INITIAL_NAMESPACES:
            self._put(namespaces, self._new_object(namespaces, {"metadata": {"name": name}}, None))

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()
        await super().__aexit__(*exc_info)

    async def close(self) -> None:
        """End the open watches and the proxy's client session (call before stopping the HTTP server)."""
        self._closing.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ---- public API for tests (thread-safe where noted) ------------------------------------------------------------

    def deny(self, verb: str, resource: str, namespace: str | None = None, group: str = "") -> None:
        """Answer matching requests 403 Forbidden like an RBAC denial; ``resource`` is plural[/sub]. Thread-safe."""
        with self._rules_lock:
            self._denials.append(Rule(verb, resource, namespace, group))

    def allow_all(self) -> None:
        """Clear the deny list. Thread-safe."""
        with self._rules_lock:
            self._denials.clear()

    def fail_next(self, verb: str, resource: str, *, status: int = 500, reason: str = "InternalError",
                  message: str = "injected failure", count: int = 1, namespace: str | None = None,
                  group: str = "") -> None:
        """Answer the next ``count`` matching requests with a Status error (after authn/authz). Thread-safe."""
        error = kmock.KubernetesError(status=status, reason=reason, message=message)
        with self._rules_lock:
            self._failures.append(InjectedFailure(Rule(verb, resource, namespace, group), error, count))

    def get_object(self, plural: str, namespace: str | None, name: str) -> JSON | None:
        """A copy of one stored object, or None. Call on the server loop (ApiServerHandle.call)."""
        obj = self._get(self._type_by_plural(plural), namespace, name)
        return copy.deepcopy(obj) if obj is not None else None

    def list_objects(self, plural: str, namespace: str | None = None) -> list[JSON]:
        """Copies of the stored objects of a resource (all namespaces if None). Call on the server loop."""
        rt = self._type_by_plural(plural)
        return [copy.deepcopy(obj) for obj in self._all(rt)
                if namespace is None or _meta(obj).get("namespace") == namespace]

    @property
    def resource_version(self) -> int:
        return self._rv

    # ---- HTTP entry point ------------------------------------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        # Same contract as kmock's RawHandler.__call__, but with a parser that understands every URL we serve.
        await raw_request.read()
        try:
            if self.limit is not None and len(self._requests) >= self.limit:
                raise KMockError("Too many requests have been served so far.")
            request = await self._parse(raw_request)
            self._requests.append(request)
            return await self._handle(request)
        except kmock.KubernetesError as exc:
            return await self._render_error(exc)
        except Exception as exc:
            if not self._errors:
                raise
            self._errors[-1].append(exc)  # emulator bugs only; API errors above are expected answers
            return await self._render_error(exc)

    async def _parse(self, raw: aiohttp.web.BaseRequest) -> kmock.Request:
        body = await raw.read()
        path = parse_api_path(raw.path)
        method = kmock.method(raw.method)
        resource = None if path.group is None else kmock.resource(group=path.group, version=path.version,
                                                                  plural=path.plural)
        return kmock.Request(
            id=len(self._requests), raw_request=raw, url=raw.url, method=method, params=dict(raw.query),
            headers=dict(raw.headers), cookies=dict(raw.cookies), body=body, text=body.decode("utf-8", "replace"),
            data=_decode_body(body), action=kmock_parsing.guess_k8s(path, method, dict(raw.query)),
            resource=resource, namespace=path.namespace, name=path.name, subresource=path.subresource)

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        # NB: kmock's KubernetesEmulator._handle (dict-merging writes) is bypassed on purpose.
        self._authenticate(request)
        if request.resource is None:
            return await kmock.RawHandler._handle(self, request)  # /api, /apis, /version, kmock DSL reactions
        if request.resource.plural is None:  # /api/v1, /apis/apps, /apis/apps/v1, with or without a trailing slash
            serve = self._serve_group if request.resource.version is None else self._serve_version
            return _json_response(await serve(request))
        rt = self._resolve_type(request)
        self._authorize(rt, request)
        self._inject_failure(rt, request)
        self._check_scope(rt, request)
        return await self._route(rt, request)

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        if isinstance(exc, kmock.KubernetesError):
            status: JSON = {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                            "message": exc.message or "", "reason": exc.reason or "", "code": exc.status}
            if exc.details:
                status["details"] = exc.details
            return _json_response(status, exc.status)
        return await super()._render_error(exc)

    # ---- authentication, authorization, scope ----------------------------------------------------------------------

    def _authenticate(self, request: kmock.Request) -> None:
        if self.token is None:
            return
        header = request.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(credentials.strip(), self.token):
            raise kmock.KubernetesError(status=401, reason="Unauthorized", message="Unauthorized")

    @staticmethod
    def _rbac_resource(request: kmock.Request) -> str:
        plural = request.resource.plural if request.resource else ""
        if request.subresource:
            return f"{plural}/{request.subresource.split('/')[0]}"
        return plural or ""

    def _authorize(self, rt: ResourceType, request: kmock.Request) -> None:
        verb, resource = request_verb(request), self._rbac_resource(request)
        with self._rules_lock:
            denied = any(rule.matches(verb, resource, request.namespace, rt.group) for rule in self._denials)
        if not denied:
            return
        where = f'in the namespace "{request.namespace}"' if request.namespace else "at the cluster scope"
        name = split_proxy_name(request.name)[0] if request.name else None
        subject = f'{rt.group_resource} "{name}"' if name else rt.group_resource
        raise kmock.KubernetesError(
            status=403, reason="Forbidden",
            message=f'{subject} is forbidden: User "{self.user}" cannot {verb} resource "{resource}" in API group '
                    f'"{rt.group}" {where}',
            details=_details(rt, name))

    def _inject_failure(self, rt: ResourceType, request: kmock.Request) -> None:
        verb, resource = request_verb(request), self._rbac_resource(request)
        with self._rules_lock:
            for failure in self._failures:
                if failure.remaining > 0 and failure.rule.matches(verb, resource, request.namespace, rt.group):
                    failure.remaining -= 1
                    raise failure.error

    def _resolve_type(self, request: kmock.Request) -> ResourceType:
        assert request.resource is not None
        key = (request.resource.group or "", request.resource.version or "", request.resource.plural or "")
        if key not in RESOURCE_TYPES:
            raise no_such_resource()
        return RESOURCE_TYPES[key]

    def _check_scope(self, rt: ResourceType, request: kmock.Request) -> None:
        if not rt.namespaced and request.namespace is not None:
            raise no_such_resource()
        if rt.namespaced and request.namespace is None and request_verb(request) not in ("list", "watch"):
            raise no_such_resource()
        if request.namespace is not None:
            self._require_namespace(request.namespace)

    def _require_namespace(self, namespace: str) -> None:
        if self._get(self._namespaces, None, namespace) is None:
            raise namespace_not_found(namespace)

    # ---- routing ---------------------------------------------------------------------------------------------------

    async def _route(self, rt: ResourceType, request: kmock.Request) -> aiohttp.web.StreamResponse:
        sub = request.subresource
        if sub is None:
            return await self._route_main(rt, request)
        head = sub.split("/")[0]
        if rt.plural == "services" and head == "proxy" and request.name:
            return await self._proxy(request)
        if "/" in sub or not rt.has(sub) or request.name is None:
            raise no_such_resource()
        if sub == "status":
            return await self._route_status(rt, request)
        if sub == "scale":
            return await self._route_scale(rt, request)
        if sub == "log" and request_verb(request) == "get":
            return await self._pod_log(request)
        raise method_not_allowed()

    async def _route_main(self, rt: ResourceType, request: kmock.Request) -> aiohttp.web.StreamResponse:
        verb = request_verb(request)
        if verb not in rt.verbs:
            raise method_not_allowed()
        match verb:
            case "list":
                return _json_response(self._list(rt, selection_of(rt, request)))
            case "watch":
                return await self._watch(rt, request)
            case "get":
                return _json_response(self._require(rt, request))
            case "create" if request.name is None:
                return await self._create(rt, request)
            case "update":
                return await self._replace(rt, request)
            case "patch":
                return await self._patch(rt, request)
            case "delete":
                return await self._delete_one(rt, request)
            case "deletecollection" if rt.plural in COLLECTION_DELETABLE:
                return await self._delete_collection(rt, request)
        raise method_not_allowed()

    # ---- storage primitives ----------------------------------------------------------------------------------------

    @property
    def _namespaces(self) -> ResourceType:
        return RESOURCE_TYPES["", "v1", "namespaces"]

    @staticmethod
    def _type_by_plural(plural: str) -> ResourceType:
        for rt in RESOURCES:
            if rt.plural == plural:
                return rt
        raise KeyError(f"not an emulated resource: {plural!r}")

    def _get(self, rt: ResourceType, namespace: str | None, name: str) -> JSON | None:
        key = (rt.ref, namespace if rt.namespaced else None, name)
        if key not in self._objects or self._objects[key].deleted:
            return None
        return self._objects[key].raw

    def _all(self, rt: ResourceType) -> list[JSON]:
        found = [(ns or "", name, obj.raw) for (res, ns, name), obj in self._objects.items()
                 if res == rt.ref and not obj.deleted]
        return [obj for _, _, obj in sorted(found, key=lambda item: (item[0], item[1]))]

    def _require(self, rt: ResourceType, request: kmock.Request) -> JSON:
        assert request.name is not None
        obj = self._get(rt, request.namespace, request.name)
        if obj is None:
            raise not_found(rt, request.name)
        return obj

    def _bump(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _put(self, rt: ResourceType, obj: JSON) -> None:
        meta = obj["metadata"]
        key = (rt.ref, meta.get("namespace") if rt.namespaced else None, meta["name"])
        if key in self._objects:
            self._objects[key].history.append(obj)
        else:
            self._objects[key] = obj

    async def _emit(self, rt: ResourceType, event_type: str, obj: JSON, previous: JSON | None) -> None:
        rv = int(obj["metadata"]["resourceVersion"])
        event: JSON = {"type": event_type, "object": copy.deepcopy(obj), "previous": copy.deepcopy(previous), "rv": rv}
        history = self._history.setdefault(rt.plural, collections.deque(maxlen=WATCH_HISTORY))
        history.append((rv, event))
        await self._buses[rt.ref].put(event)

    async def _store(self, rt: ResourceType, obj: JSON, previous: JSON | None) -> JSON:
        """Write an object (new RV), emit ADDED/MODIFIED, and remove it if it is deleting and released."""
        obj["metadata"]["resourceVersion"] = self._bump()
        self._put(rt, obj)
        await self._emit(rt, "ADDED" if previous is None else "MODIFIED", obj, previous)
        if self._is_released(rt, obj):
            await self._remove(rt, obj)
        return obj

    async def _remove(self, rt: ResourceType, obj: JSON, orphan: bool = False) -> JSON:
        meta = obj["metadata"]
        key = (rt.ref, meta.get("namespace") if rt.namespaced else None, meta["name"])
        if self._get(rt, meta.get("namespace"), meta["name"]) is None:
            return obj  # already gone (e.g. collected as a dependent while its namespace was purged)
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = self._bump()
        self._objects[key].delete()
        await self._emit(rt, "DELETED", gone, obj)
        if self.garbage_collect and not orphan:
            await self._collect_dependents(meta.get("uid"), meta.get("namespace"))
        if rt.plural == "namespaces":
            await self._purge_namespace(meta["name"])
        return gone

    @staticmethod
    def _is_released(rt: ResourceType, obj: JSON) -> bool:
        meta = obj["metadata"]
        if not meta.get("deletionTimestamp") or meta.get("finalizers"):
            return False
        return rt.plural != "pods" or not (obj.get("spec") or {}).get("nodeName") or meta.get(
            "deletionGracePeriodSeconds") == 0

    async def _collect_dependents(self, uid: str | None, namespace: str | None) -> None:
        if not uid:
            return
        for rt in RESOURCES:
            for obj in self._all(rt):
                owners = _meta(obj).get("ownerReferences") or []
                same_scope = not rt.namespaced or _meta(obj).get("namespace") == namespace
                if same_scope and any(owner.get("uid") == uid for owner in owners):
                    await self._delete(rt, obj, grace=None)

    async def _purge_namespace(self, namespace: str) -> None:
        for rt in RESOURCES:
            if rt.namespaced:
                for obj in self._all(rt):
                    if _meta(obj).get("namespace") == namespace:
                        await self._remove(rt, obj)

    # ---- server-side fields and defaults ---------------------------------------------------------------------------

    def _new_object(self, rt: ResourceType, body: JSON, namespace: str | None) -> JSON:
        obj = copy.deepcopy(body)
        check_type_meta(rt, obj)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        self._check_namespace_field(meta, namespace)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = self._generate_name(rt, namespace, meta["generateName"])
        for field in (*PROTECTED_META, "resourceVersion", "managedFields", "selfLink"):
            meta.pop(field, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), resourceVersion=str(self._rv))
        if rt.plural in GENERATION_TRACKED:
            meta["generation"] = 1
        if rt.has("status") and rt.plural != "nodes":  # the status is the controllers' (a kubelet registers nodes)
            obj.pop("status", None)
        self._default(rt, obj, previous=None)
        return obj

    def _check_namespace_field(self, meta: JSON, namespace: str | None) -> None:
        if namespace is None:
            meta.pop("namespace", None)
            return
        if meta.get("namespace") not in (None, "", namespace):
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        meta["namespace"] = namespace

    def _generate_name(self, rt: ResourceType, namespace: str | None, prefix: str) -> str:
        while True:
            name = prefix + _random_suffix()
            if self._get(rt, namespace, name) is None:
                return name

    def _default(self, rt: ResourceType, obj: JSON, previous: JSON | None) -> None:
        match rt.plural:
            case "deployments":
                default_deployment(obj)
                obj.setdefault("status", {})
            case "pods":
                default_pod_spec(obj.setdefault("spec", {}))
                obj.setdefault("status", {}).setdefault("phase", "Pending")
            case "persistentvolumeclaims":
                obj.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
                obj.setdefault("status", {}).setdefault("phase", "Pending")
            case "services":
                self._default_service(obj, previous)
            case "secrets":
                default_secret(obj)
            case "namespaces":
                default_namespace(obj)
                obj.setdefault("status", {}).setdefault("phase", "Active")

    # ---- services: clusterIP and nodePort allocation ---------------------------------------------------------------

    def _default_service(self, obj: JSON, previous: JSON | None) -> None:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        old_spec = (previous or {}).get("spec") or {}
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec["type"] != "ExternalName":
            spec.setdefault("internalTrafficPolicy", "Cluster")
            self._assign_cluster_ip(obj, spec, old_spec)
        old_ports = {p.get("port"): p for p in old_spec.get("ports") or [] if isinstance(p, dict)}
        for index, port in enumerate(spec.get("ports") or []):
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
                self._assign_node_port(obj, spec, index, port, old_ports.get(port.get("port")))
        obj.setdefault("status", {}).setdefault("loadBalancer", {})

    def _assign_cluster_ip(self, obj: JSON, spec: JSON, old_spec: JSON) -> None:
        old_ip = old_spec.get("clusterIP")
        wanted = spec.get("clusterIP") or old_ip
        if old_ip and wanted != old_ip:
            raise invalid(self._services, _meta(obj).get("name"),
                          [FieldError("spec.clusterIPs[0]", f'Invalid value: ["{wanted}"]: may not change once set')])
        if wanted == "None":
            spec["clusterIP"], spec["clusterIPs"] = "None", ["None"]
            return
        if not wanted:
            wanted = self._free_cluster_ip()
        elif not old_ip:
            self._check_cluster_ip(obj, wanted)
        spec["clusterIP"], spec["clusterIPs"] = wanted, [wanted]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")

    @property
    def _services(self) -> ResourceType:
        return RESOURCE_TYPES["", "v1", "services"]

    def _used_cluster_ips(self) -> set[str]:
        addresses = {str((svc.get("spec") or {}).get("clusterIP") or "") for svc in self._all(self._services)}
        return addresses - {"None", ""}

    def _free_cluster_ip(self) -> str:
        used = self._used_cluster_ips()
        for address in SERVICE_CIDR.hosts():
            if int(address) - int(SERVICE_CIDR.network_address) >= 10 and str(address) not in used:
                return str(address)
        raise kmock.KubernetesError(status=500, reason="InternalError", message="range is full")

    def _check_cluster_ip(self, obj: JSON, address: str) -> None:
        name = _meta(obj).get("name")
        try:
            inside = ipaddress.ip_address(address) in SERVICE_CIDR
        except ValueError:
            inside = False
        if not inside:
            raise invalid(self._services, name, [FieldError(
                "spec.clusterIPs", f'Invalid value: ["{address}"]: failed to allocate IP {address}: the provided IP '
                                   f'({address}) is not in the valid range. The range of valid IPs is {SERVICE_CIDR}')])
        if address in self._used_cluster_ips():
            raise invalid(self._services, name, [FieldError(
                "spec.clusterIPs", f'Invalid value: ["{address}"]: failed to allocate IP {address}: provided IP is '
                                   f'already allocated')])

    def _used_node_ports(self, except_uid: str | None) -> set[int]:
        return {int(port["nodePort"]) for svc in self._all(self._services) if _meta(svc).get("uid") != except_uid
                for port in (svc.get("spec") or {}).get("ports") or [] if port.get("nodePort")}

    def _assign_node_port(self, obj: JSON, spec: JSON, index: int, port: JSON, old_port: JSON | None) -> None:
        if spec.get("type") not in ("NodePort", "LoadBalancer"):
            port.pop("nodePort", None)
            return
        used = self._used_node_ports(_meta(obj).get("uid"))
        used |= {int(p["nodePort"]) for p in spec.get("ports", [])[:index] if isinstance(p, dict) and p.get("nodePort")}
        wanted = port.get("nodePort") or (old_port or {}).get("nodePort")
        if not wanted:
            port["nodePort"] = next(p for p in NODE_PORT_RANGE if p not in used)
            return
        field = f"spec.ports[{index}].nodePort"
        if wanted not in NODE_PORT_RANGE:
            raise invalid(self._services, _meta(obj).get("name"), [FieldError(
                field, f"Invalid value: {wanted}: provided port is not in the valid range. The range of valid ports "
                       f"is {NODE_PORT_RANGE.start}-{NODE_PORT_RANGE.stop - 1}")])
        if wanted in used:
            raise invalid(self._services, _meta(obj).get("name"), [FieldError(
                field, f"Invalid value: {wanted}: provided port is already allocated")])
        port["nodePort"] = wanted

    # ---- create / replace / patch ----------------------------------------------------------------------------------

    @staticmethod
    def _body(request: kmock.Request) -> JSON:
        if not isinstance(request.data, dict):
            raise bad_request("the body of the request must be a JSON object")
        return request.data

    async def _create(self, rt: ResourceType, request: kmock.Request) -> aiohttp.web.StreamResponse:
        async with self._lock:
            if request.namespace is not None:
                self._require_namespace(request.namespace)  # again: it may have gone while waiting for the lock
            obj = self._new_object(rt, self._body(request), request.namespace if rt.namespaced else None)
            validate_object(rt, obj)
            name = obj["metadata"]["name"]
            if self._get(rt, request.namespace, name) is not None:
                raise already_exists(rt, name)
            await self._store(rt, obj, previous=None)
        return _json_response(obj, 201)

    def _check_identity(self, rt: ResourceType, request: kmock.Request, body: JSON) -> None:
        check_type_meta(rt, body)
        meta = body.setdefault("metadata", {})
        if meta.get("name") not in (None, request.name):
            raise bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the URL "
                              f"({request.name})")
        meta["name"] = request.name
        self._check_namespace_field(meta, request.namespace if rt.namespaced else None)

    def _merge_server_fields(self, rt: ResourceType, current: JSON, new: JSON, *, keep_status: bool) -> JSON:
        """The update as the server stores it: server-owned metadata and (for the main resource) status kept."""
        meta, old_meta = new["metadata"], current["metadata"]
        for field in PROTECTED_META:
            meta.pop(field, None)
            if field in old_meta:
                meta[field] = old_meta[field]
        for field in ("managedFields", "selfLink"):
            meta.pop(field, None)
        if old_meta.get("generateName") and not meta.get("generateName"):
            meta["generateName"] = old_meta["generateName"]
        if keep_status:
            new.pop("status", None)
            if "status" in current:
                new["status"] = copy.deepcopy(current["status"])
        self._default(rt, new, previous=current)
        return new

    async def _update(self, rt: ResourceType, current: JSON, new: JSON) -> JSON:
        """Validate and store an update of ``current``; RV conflicts, immutability, generation, no-op detection."""
        name = current["metadata"]["name"]
        wanted_rv = new["metadata"].get("resourceVersion")
        if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
            raise conflict(rt, name)
        new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        if rt.plural == "deployments":
            self._check_deployment_update(current, new)
        if rt.plural in GENERATION_TRACKED and new.get("spec") != current.get("spec"):
            new["metadata"]["generation"] = int(current["metadata"].get("generation", 0)) + 1
        validate_object(rt, new)
        if new == current:
            return current  # a no-op update: no new resourceVersion, no event (as the real server)
        if current["metadata"].get("deletionTimestamp"):
            self._check_finalizers_update(rt, current, new)
        return await self._store(rt, new, previous=current)

    @staticmethod
    def _check_deployment_update(current: JSON, new: JSON) -> None:
        old_selector = (current.get("spec") or {}).get("selector")
        if (new.get("spec") or {}).get("selector") != old_selector:
            raise invalid(RESOURCE_TYPES["apps", "v1", "deployments"], current["metadata"]["name"], [FieldError(
                "spec.selector", f"Invalid value: {json.dumps((new.get('spec') or {}).get('selector'))}: field is "
                                 f"immutable")])

    @staticmethod
    def _check_finalizers_update(rt: ResourceType, current: JSON, new: JSON) -> None:
        added = set(new["metadata"].get("finalizers") or []) - set(current["metadata"].get("finalizers") or [])
        if added:
            raise invalid(rt, current["metadata"]["name"], [FieldError(
                "metadata.finalizers", f"Forbidden: no new finalizers can be added if the object is being deleted, "
                                       f"found new finalizers {sorted(added)}", "FieldValueForbidden")])

    async def _replace(self, rt: ResourceType, request: kmock.Request) -> aiohttp.web.StreamResponse:
        body = copy.deepcopy(self._body(request))
        async with self._lock:
            current = self._require(rt, request)
            self._check_identity(rt, request, body)
            new = self._merge_server_fields(rt, current, body, keep_status=rt.has("status"))
            stored = await self._update(rt, current, new)
        return _json_response(stored)

    async def _patch(self, rt: ResourceType, request: kmock.Request) -> aiohttp.web.StreamResponse:
        assert request.name is not None
        async with self._lock:
            current = self._require(rt, request)
            patched = apply_patch(rt, request.name, current, request.headers.get("Content-Type", ""), request.data)
            self._check_identity(rt, request, patched)
            new = self._merge_server_fields(rt, current, patched, keep_status=rt.has("status"))
            stored = await self._update(rt, current, new)
        return _json_response(stored)

    # ---- status subresource ----------------------------------------------------------------------------------------

    async def _route_status(self, rt: ResourceType, request: kmock.Request) -> aiohttp.web.StreamResponse:
        verb = request_verb(request)
        if verb == "get":
            return _json_response(self._require(rt, request))
        if verb not in ("update", "patch"):
            raise method_not_allowed()
        assert request.name is not None
        async with self._lock:
            current = self._require(rt, request)
            if verb == "update":
                source = copy.deepcopy(self._body(request))
                self._check_identity(rt, request, source)
            else:
                source = apply_patch(rt, request.name, current, request.headers.get("Content-Type", ""), request.data)
            new = copy.deepcopy(current)
            new["status"] = copy.deepcopy(source.get("status") or {})
            wanted_rv = _meta(source).get("resourceVersion")
            if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
                raise conflict(rt, request.name)
            validate_object(rt, new)
            stored = current if new == current else await self._store(rt, new, previous=current)
        return _json_response(stored)

    # ---- scale subresource -----------------------------------------------------------------------------------------

    @staticmethod
    def _scale_of(deployment: JSON) -> JSON:
        meta = deployment["metadata"]
        match_labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        return {
            "apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": {key: meta[key] for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if key in meta},
            "spec": {"replicas": (deployment.get("spec") or {}).get("replicas", 0)},
            "status": {"replicas": (deployment.get("status") or {}).get("replicas", 0),
                       "selector": ",".join(f"{k}={v}" for k, v in match_labels.items())},
        }

    async def _route_scale(self, rt: ResourceType, request: kmock.Request) -> aiohttp.web.StreamResponse:
        verb = request_verb(request)
        if verb == "get":
            return _json_response(self._scale_of(self._require(rt, request)))
        if verb not in ("update", "patch"):
            raise method_not_allowed()
        assert request.name is not None
        async with self._lock:
            current = self._require(rt, request)
            scale = self._scale_of(current)
            if verb == "update":
                wanted = copy.deepcopy(self._body(request))
                check_type_meta(rt, wanted, kind="Scale", api_version="autoscaling/v1")
            else:
                wanted = apply_patch(rt, request.name, scale, request.headers.get("Content-Type", ""), request.data)
            stored = await self._apply_scale(rt, current, wanted)
        return _json_response(self._scale_of(stored))

    async def _apply_scale(self, rt: ResourceType, current: JSON, scale: JSON) -> JSON:
        name = current["metadata"]["name"]
        if _meta(scale).get("name") not in (None, name):
            raise bad_request(f"the name of the object ({_meta(scale).get('name')}) does not match the name on the "
                              f"URL ({name})")
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise invalid(RESOURCE_TYPES["apps", "v1", "deployments"], name, [FieldError(
                "spec.replicas", f"Invalid value: {json.dumps(replicas)}: must be greater than or equal to 0")])
        wanted_rv = _meta(scale).get("resourceVersion")
        if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
            raise conflict(rt, name)
        new = copy.deepcopy(current)
        new["spec"]["replicas"] = replicas
        return await self._update(rt, current, new)

    # ---- delete ----------------------------------------------------------------------------------------------------

    @staticmethod
    def _delete_options(request: kmock.Request) -> JSON:
        options = dict(request.data) if isinstance(request.data, dict) else {}
        grace = _int_param(request.params, "gracePeriodSeconds")
        if grace is not None:
            options["gracePeriodSeconds"] = grace
        if "propagationPolicy" in request.params:
            options["propagationPolicy"] = request.params["propagationPolicy"]
        return options

    async def _delete(self, rt: ResourceType, obj: JSON, grace: int | None,
                      preconditions: Mapping[str, Any] | None = None, orphan: bool = False) -> tuple[JSON, bool]:
        """Delete (or start deleting) one object; return what to answer and whether it is gone already."""
        meta = obj["metadata"]
        for field, wanted in (preconditions or {}).items():
            if field in ("uid", "resourceVersion") and wanted not in (None, meta.get(field)):
                raise conflict(rt, meta["name"], f"Precondition failed: {field}: {wanted}, "
                                                 f"{field} in object meta: {meta.get(field)}")
        graceful = rt.plural == "pods" and bool((obj.get("spec") or {}).get("nodeName")) and grace != 0
        deleting = bool(meta.get("deletionTimestamp"))
        if graceful and deleting:
            return obj, False  # already terminating; the kubelet finalises it
        if not graceful and not meta.get("finalizers"):
            return await self._remove(rt, obj, orphan=orphan), True
        seconds = self._grace_seconds(rt, obj, grace)
        if deleting and meta.get("deletionGracePeriodSeconds") == seconds:
            return obj, False  # waiting for its finalizers
        new = copy.deepcopy(obj)
        new["metadata"].setdefault("deletionTimestamp", _now())
        new["metadata"]["deletionGracePeriodSeconds"] = seconds
        stored = await self._store(rt, new, previous=obj)
        return stored, self._get(rt, meta.get("namespace"), meta["name"]) is None

    @staticmethod
    def _grace_seconds(rt: ResourceType, obj: JSON, grace: int | None) -> int:
        if rt.plural != "pods":
            return 0
        if grace is not None:
            return max(grace, 0)
        default = (obj.get("spec") or {}).get("terminationGracePeriodSeconds")
        return default if isinstance(default, int) else 30

    async def _delete_one(self, rt: ResourceType, request: kmock.Request) -> aiohttp.web.StreamResponse:
        options = self._delete_options(request)
        if rt.plural == "namespaces" and request.name in UNDELETABLE_NAMESPACES:
            raise kmock.KubernetesError(status=403, reason="Forbidden",
                                        message=f'namespaces "{request.name}" is forbidden: this namespace may not be '
                                                f'deleted', details=_details(rt, request.name))
        async with self._lock:
            obj = self._require(rt, request)
            result, gone = await self._delete(rt, obj, options.get("gracePeriodSeconds"), options.get("preconditions"),
                                              orphan=options.get("propagationPolicy") == "Orphan")
        if rt.plural not in RETURNS_DELETED_OBJECT:
            return _json_response(_status_success(rt, result))
        return _json_response(result, 200 if gone else 202)

    async def _delete_collection(self, rt: ResourceType, request: kmock.Request) -> aiohttp.web.StreamResponse:
        options = self._delete_options(request)
        selection = selection_of(rt, request)
        async with self._lock:
            orphan = options.get("propagationPolicy") == "Orphan"
            items = [(await self._delete(rt, obj, options.get("gracePeriodSeconds"), orphan=orphan))[0]
                     for obj in self._all(rt) if selection.matches(obj)]
        return _json_response(self._list_body(rt, items))

    # ---- list / watch ----------------------------------------------------------------------------------------------

    def _list_body(self, rt: ResourceType, items: list[JSON]) -> JSON:
        return {"apiVersion": rt.api_version, "kind": f"{rt.kind}List",
                "metadata": {"resourceVersion": str(self._rv)}, "items": items}

    def _list(self, rt: ResourceType, selection: Selection) -> JSON:
        return self._list_body(rt, [obj for obj in self._all(rt) if selection.matches(obj)])

    @staticmethod
    def _watch_event(event: JSON, selection: Selection) -> JSON | None:
        """Translate a stored event for one watcher: objects entering/leaving the selection are ADDED/DELETED."""
        now = selection.matches(event["object"])
        before = event["previous"] is not None and selection.matches(event["previous"])
        if event["type"] == "MODIFIED" and now != before:
            return {"type": "ADDED" if now else "DELETED", "object": event["object"]}
        if event["type"] == "DELETED":
            return {"type": "DELETED", "object": event["object"]} if before else None
        return {"type": event["type"], "object": event["object"]} if now else None

    def _replay(self, rt: ResourceType, since: str | None, selection: Selection) -> list[JSON]:
        if not since or since == "0":
            return [{"type": "ADDED", "object": copy.deepcopy(obj)} for obj in self._all(rt) if selection.matches(obj)]
        try:
            since_rv = int(since)
        except ValueError:
            raise bad_request(f'invalid resource version "{since}"') from None
        history = self._history.get(rt.plural, collections.deque())
        if len(history) == history.maxlen and history[0][0] > since_rv + 1:
            return [{"type": "ERROR", "object": {"apiVersion": "v1", "kind": "Status", "metadata": {},
                                                 "status": "Failure", "reason": "Expired", "code": 410,
                                                 "message": f"too old resource version: {since_rv}"}}]
        translated = (self._watch_event(event, selection) for rv, event in history if rv > since_rv)
        return [event for event in translated if event is not None]

    async def _watch(self, rt: ResourceType, request: kmock.Request) -> aiohttp.web.StreamResponse:
        selection = selection_of(rt, request)
        timeout = _int_param(request.params, "timeoutSeconds")
        async with self._lock:  # no write can slip between the snapshot and the bus mark
            bus = self._buses[rt.ref]
            marker = await bus.mark()
            initial = self._replay(rt, request.params.get("resourceVersion"), selection)
        assert request._raw_request is not None
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request._raw_request)
        try:
            with contextlib.suppress(ConnectionError):
                await self._stream_events(response, bus, marker, initial, selection, timeout)
                await response.write_eof()
        finally:
            await bus.unmark(marker)
        return response

    async def _stream_events(self, response: aiohttp.web.StreamResponse, bus: Bus[JSON],
                             marker: BusMark[JSON], initial: list[JSON], selection: Selection,
                             timeout: int | None) -> None:
        for event in initial:
            await response.write(json.dumps(event).encode() + b"\n")
            if event["type"] == "ERROR":
                return
        loop = asyncio.get_running_loop()
        deadline = math.inf if not timeout else loop.time() + timeout
        while not self._closing.is_set():
            received = await self._next_event(bus, marker, deadline - loop.time())
            if received is None:
                return
            translated = self._watch_event(received, selection)
            if translated is not None:
                await response.write(json.dumps(translated).encode() + b"\n")

    async def _next_event(self, bus: Bus[JSON], marker: BusMark[JSON], remaining: float) -> JSON | None:
        if remaining <= 0:
            return None
        getter = asyncio.ensure_future(bus.get(since=marker))
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            done, _ = await asyncio.wait({getter, closing}, timeout=None if math.isinf(remaining) else remaining,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (getter, closing):
                task.cancel()
        return getter.result() if getter in done else None

    # ---- pod logs --------------------------------------------------------------------------------------------------

    async def _pod_log(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        rt = RESOURCE_TYPES["", "v1", "pods"]
        pod = self._require(rt, request)
        container = self._log_container(pod, request.params.get("container") or None)
        source, namespace, name = self.log_source, pod["metadata"]["namespace"], pod["metadata"]["name"]
        tail, timestamps = _int_param(request.params, "tailLines"), request.params.get("timestamps") in ("true", "1")
        limit = _int_param(request.params, "limitBytes")
        text: str | None = None
        if source is not None:
            text = await asyncio.get_running_loop().run_in_executor(
                self._executor, lambda: source(namespace, name, container, tail, timestamps))
        body = (text or "").encode()
        return aiohttp.web.Response(body=body[:limit] if limit else body, content_type="text/plain", charset="utf-8")

    @staticmethod
    def _log_container(pod: JSON, container: str | None) -> str | None:
        spec = pod.get("spec") or {}
        names = [c.get("name") for key in ("containers", "initContainers", "ephemeralContainers")
                 for c in spec.get(key) or []]
        pod_name = pod["metadata"]["name"]
        if container is None:
            main = [c.get("name") for c in spec.get("containers") or []]
            if len(main) > 1:
                raise bad_request(f"a container name must be specified for pod {pod_name}, choose one of: "
                                  f"[{' '.join(main)}]")
            return main[0] if main else None
        if container not in names:
            raise bad_request(f"container {container} is not valid for pod {pod_name}")
        return container

    # ---- service proxy ---------------------------------------------------------------------------------------------

    async def _proxy(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        assert request.name is not None and request.namespace is not None and request._raw_request is not None
        service_name, port_ref = split_proxy_name(request.name)
        service = self._get(self._services, request.namespace, service_name)
        if service is None:
            raise not_found(self._services, service_name)
        target = self._proxy_target(service, port_ref)
        if target is None:
            raise kmock.KubernetesError(status=503, reason="ServiceUnavailable",
                                        message=f'no endpoints available for service "{service_name}"')
        match = PROXY_TAIL.search(request.url.path)  # decoded, like the real server: a%2Fb is forwarded as a/b
        tail = (match["tail"] if match else None) or "/"
        url = yarl.URL.build(scheme="http", host=target[0], port=target[1], encoded=True,
                             path=urllib.parse.quote(tail, safe="/:@!$&'()*+,;=-._~"),
                             query_string=request.url.raw_query_string)
        return await self._forward(request, url, service_name)

    def _proxy_target(self, service: JSON, port_ref: str) -> tuple[str, int] | None:
        spec = service.get("spec") or {}
        ports = spec.get("ports") or []
        port = next((p for p in ports if port_ref and (p.get("name") == port_ref or str(p.get("port")) == port_ref)),
                    None if port_ref else (ports[0] if ports else None))
        selector = spec.get("selector") or {}
        if port is None or not selector:
            return None
        for pod in self._all(RESOURCE_TYPES["", "v1", "pods"]):
            if _meta(pod).get("namespace") != _meta(service).get("namespace") or not _is_ready_endpoint(pod, selector):
                continue
            number = _resolve_target_port(pod, port.get("targetPort", port.get("port")))
            if number is not None:
                return pod["status"]["podIP"], number
        return None

    async def _forward(self, request: kmock.Request, url: yarl.URL, service_name: str) -> aiohttp.web.StreamResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.proxy_timeout),
                                                  auto_decompress=False)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        method = str(request.method.value)
        try:
            async with self._session.request(method, url, headers=headers, data=request.body or None,
                                             allow_redirects=False) as upstream:
                body = await upstream.read()
                answer_headers = [(k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP]
                return aiohttp.web.Response(status=upstream.status, body=body,
                                            headers=multidict.CIMultiDict(answer_headers))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise kmock.KubernetesError(status=503, reason="ServiceUnavailable",
                                        message=f'error trying to reach service "{service_name}": {exc!r}') from None

    # ---- discovery and version -------------------------------------------------------------------------------------

    async def _serve_version(self, request: kmock.Request) -> kmock.Payload:
        assert request.resource is not None
        group, version = request.resource.group or "", request.resource.version or ""
        if (group, version) not in GROUP_VERSIONS:
            raise no_such_resource()
        return {"apiVersion": "v1", "kind": "APIResourceList", "groupVersion": f"{group}/{version}".lstrip("/"),
                "resources": [entry for rt in RESOURCES if (rt.group, rt.version) == (group, version)
                              for entry in _discovery_entries(rt)]}

    async def _serve_group(self, request: kmock.Request) -> kmock.Payload:
        assert request.resource is not None
        versions = sorted(version for group, version in GROUP_VERSIONS if group == request.resource.group and group)
        if not versions:
            raise no_such_resource()
        entries = [{"groupVersion": f"{request.resource.group}/{v}", "version": v} for v in versions]
        return {"apiVersion": "v1", "kind": "APIGroup", "name": request.resource.group, "versions": entries,
                "preferredVersion": entries[0]}

    async def _serve_server_version(self, request: kmock.Request) -> kmock.Payload:
        major, minor, _ = KUBE_VERSION.split(".")
        return {"major": major, "minor": minor, "emulationMajor": major, "emulationMinor": minor,
                "minCompatibilityMajor": major, "minCompatibilityMinor": str(int(minor) - 1),
                "gitVersion": f"v{KUBE_VERSION}", "gitCommit": "0" * 40, "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25.0", "compiler": "gc",
                "platform": "linux/amd64"}


def _discovery_entries(rt: ResourceType) -> list[JSON]:
    entries = [{"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced, "kind": rt.kind,
                "verbs": list(rt.verbs), "shortNames": list(rt.short_names)}]
    for sub in rt.subresources:
        kind, group, version, verbs = rt.kind, None, None, list(STATUS_VERBS)
        if sub == "scale":
            kind, group, version = "Scale", "autoscaling", "v1"
        elif sub == "log":
            verbs = ["get"]
        elif sub == "proxy":
            kind, verbs = "ServiceProxyOptions", ["create", "delete", "get", "patch", "update"]
        entry: JSON = {"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced, "kind": kind,
                       "verbs": verbs}
        if group:
            entry.update(group=group, version=version)
        entries.append(entry)
    return entries


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


# --------------------------------------------------------------------------------------------------------------------
# The threaded runner
# --------------------------------------------------------------------------------------------------------------------


def write_kubeconfig(path: Path, url: str, token: str | None) -> Path:
    """Write a kubeconfig with one cluster/user/context named ``emulated`` (current-context)."""
    user: JSON = {"token": token} if token is not None else {}
    config = {
        "apiVersion": "v1", "kind": "Config", "preferences": {}, "current-context": "emulated",
        "clusters": [{"name": "emulated", "cluster": {"server": url}}],
        "users": [{"name": "emulated", "user": user}],
        "contexts": [{"name": "emulated", "context": {"cluster": "emulated", "user": "emulated",
                                                      "namespace": "default"}}],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class _ServerThread:
    """Runs the emulator and a kmock.Server in a daemon thread with its own event loop."""

    def __init__(self, emulator_kwargs: Mapping[str, Any]) -> None:
        self._kwargs = dict(emulator_kwargs)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="kube-api-emulator", daemon=True)
        self._failure: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.emulator: KubeApiEmulator | None = None
        self.port: int | None = None
        self._stop: asyncio.Event | None = None

    def start(self, timeout: float) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"the emulated kube-apiserver did not start within {timeout} s")
        if self._failure is not None or self.emulator is None:
            raise RuntimeError(f"the emulated kube-apiserver failed to start: {self._failure!r}") from self._failure

    def stop(self, timeout: float, *, check: bool = True) -> None:
        """Stop the server and the loop, join the thread (bounded); with ``check``, report a crash or a hang."""
        if self.loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed already
                self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if check and self._thread.is_alive():
            raise RuntimeError(f"the emulated kube-apiserver did not stop within {timeout} s")
        if check and self._failure is not None:
            raise RuntimeError(f"the emulated kube-apiserver crashed: {self._failure!r}") from self._failure

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._failure = exc
        finally:
            self._ready.set()
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with KubeApiEmulator(**self._kwargs) as emulator, kmock.Server(emulator, host="127.0.0.1") as server:
            self.loop, self.emulator, self.port = asyncio.get_running_loop(), emulator, server.port
            self._ready.set()
            await self._stop.wait()
            await emulator.close()  # end watches before the HTTP server waits for its handlers


@dataclasses.dataclass
class ApiServerHandle:
    """What a test gets from :func:`running_api_server`."""

    url: str
    kubeconfig: str
    token: str | None
    server: KubeApiEmulator
    loop: asyncio.AbstractEventLoop
    timeout: float = 10.0

    def call(self, fn: Callable[[], T]) -> T:
        """Run a sync callable on the server's loop thread and return its result (or raise its error)."""

        async def invoke() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(invoke(), self.loop).result(self.timeout)

    def call_async(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run a coroutine function on the server's loop and return its result."""

        async def invoke() -> T:
            result = fn()
            return await result if inspect.isawaitable(result) else result

        return asyncio.run_coroutine_threadsafe(invoke(), self.loop).result(self.timeout)

    def objects(self, plural: str, namespace: str | None = None) -> list[JSON]:
        """A snapshot (deep copies) of the stored objects of one resource, e.g. ``objects("pods", "default")``."""
        return self.call(lambda: self.server.list_objects(plural, namespace))

    def get_object(self, plural: str, namespace: str | None, name: str) -> JSON | None:
        return self.call(lambda: self.server.get_object(plural, namespace, name))

    def deny(self, verb: str, resource: str, namespace: str | None = None, group: str = "") -> None:
        self.server.deny(verb, resource, namespace=namespace, group=group)

    def allow_all(self) -> None:
        self.server.allow_all()

    def fail_next(self, verb: str, resource: str, **kwargs: Any) -> None:
        self.server.fail_next(verb, resource, **kwargs)

    def set_log_source(self, fn: LogSource | None) -> None:
        def assign() -> None:
            self.server.log_source = fn

        self.call(assign)

    def requests(self) -> list[kmock.Request]:
        """The requests served so far (kmock's records: method, url, params, headers, data, resource, ...)."""
        return self.call(lambda: list(self.server))

    def errors(self) -> list[str]:
        """Unexpected exceptions inside the emulator (its bugs), formatted; API errors are not counted."""
        return self.call(lambda: ["".join(traceback.format_exception(e)) for e in self.server.errors])


@contextlib.contextmanager
def running_api_server(token: str | None = "test-token", *, startup_timeout: float = 10.0,
                       stop_timeout: float = 10.0, **emulator_kwargs: Any) -> Iterator[ApiServerHandle]:
    """Serve a fresh :class:`KubeApiEmulator` on http://127.0.0.1:<free port> for the duration of the block."""
    runner = _ServerThread({"token": token, **emulator_kwargs})
    try:
        runner.start(startup_timeout)
    except BaseException:
        runner.stop(stop_timeout, check=False)
        raise
    assert runner.emulator is not None and runner.loop is not None
    tmpdir = Path(tempfile.mkdtemp(prefix="kube-api-"))
    try:
        url = f"http://127.0.0.1:{runner.port}"
        kubeconfig = write_kubeconfig(tmpdir / "kubeconfig.yaml", url, token)
        yield ApiServerHandle(url=url, kubeconfig=str(kubeconfig), token=token, server=runner.emulator,
                              loop=runner.loop)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
        runner.stop(stop_timeout)
