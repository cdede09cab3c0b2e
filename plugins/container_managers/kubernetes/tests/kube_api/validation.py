"""Validation of written objects: the 1.37 JSON schemas via ``kubernetes_validate`` in strict mode, names, labels
and annotations, and the per-kind rules (Deployment selectors and templates, Service ports, Secret data, pod
containers, RBAC rules and bindings), raising 422 Invalid; plus the apiVersion/kind check of request bodies.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import kubernetes_validate

from .errors import FieldError, bad_request, invalid
from .names import annotation_errors, dns1035_label_errors, dns_label_errors, dns_subdomain_errors, label_map_errors
from .rbac import (
    cluster_role_binding_errors,
    cluster_role_errors,
    path_segment_name_errors,
    role_binding_errors,
    role_errors,
)
from .resources import JSON, KUBE_VERSION, RBAC_PLURALS, ResourceType
from .selectors import Requirement
from .util import _json_path, _labels, _meta


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
    elif rt.plural in RBAC_PLURALS:
        messages = path_segment_name_errors(name)
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
    "roles": role_errors,
    "clusterroles": cluster_role_errors,
    "rolebindings": role_binding_errors,
    "clusterrolebindings": cluster_role_binding_errors,
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
