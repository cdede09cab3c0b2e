"""RBAC: the attributes of a request (:class:`RequestAttributes`, as the apiserver's RequestInfo makes them), the
authorizer over the stored Roles, ClusterRoles, RoleBindings and ClusterRoleBindings (:func:`rbac_allows`, with
Kubernetes' rule semantics), the Forbidden answer (:func:`forbidden`), the default cluster policy present at startup
(:data:`BOOTSTRAP_POLICY`) and the semantic validation of RBAC objects.

Rule semantics (k8s.io/kubernetes plugin/pkg/auth/authorizer/rbac): a rule allows a resource request when its
``verbs`` hold the verb or ``*``, its ``apiGroups`` the group or ``*``, its ``resources`` ``*``, the resource
(``plural`` or ``plural/subresource``) or ``*/subresource``, and its ``resourceNames`` are empty or hold the
request's name (so they never allow create, nor list/watch without a ``metadata.name`` field selector). A
non-resource request (``/version``, ``/api``, ``/apis/apps/v1``, ...) is allowed by a ClusterRole's
``nonResourceURLs`` (exact, ``*``, or a ``prefix*``) with its lower-case HTTP method as the verb. A request in
namespace N is allowed by a ClusterRoleBinding, or by a RoleBinding in N whose roleRef names a Role in N or a
ClusterRole. Subjects: ServiceAccount (name; namespace, else the RoleBinding's), User (name), Group (name).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterable
from typing import Any

import kmock

from .auth import UserInfo
from .errors import FieldError
from .proxy import split_proxy_name
from .resources import JSON, RBAC_GROUP
from .selectors import FIELD_TERM, _split_terms
from .urls import request_verb
from .util import _meta

Getter = Callable[[str, "str | None", str], "JSON | None"]
"""``get(plural, namespace, name) -> stored object or None``."""
Lister = Callable[[str], "list[JSON]"]
"""``items(plural) -> every stored object of that resource``."""

DISCOVERY_URLS = ("/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz",
                  "/version", "/version/")
PUBLIC_INFO_URLS = ("/healthz", "/livez", "/readyz", "/version", "/version/")


@dataclasses.dataclass(frozen=True)
class RequestAttributes:
    """What the authorizer decides on. ``resource`` is the plural; ``subresource`` its first path segment."""

    verb: str
    path: str
    resource_request: bool
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str | None = None
    name: str | None = None

    @property
    def combined_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    @classmethod
    def of(cls, request: kmock.Request) -> RequestAttributes:
        path = str(request.url.path)
        if request.resource is None or request.resource.plural is None:
            return cls(verb=str(request.method.value).lower(), path=path, resource_request=False)
        plural = request.resource.plural
        verb = request_verb(request)
        name = request.name
        namespace = request.namespace
        if plural == "namespaces" and name:
            namespace = name  # the apiserver's RequestInfo: /api/v1/namespaces/foo is in the namespace foo
        if name is None and verb in ("list", "watch"):
            name = _selected_name(request.params.get("fieldSelector"))
        sub = (request.subresource or "").split("/")[0]
        return cls(verb=verb, path=path, resource_request=True, group=request.resource.group or "",
                   resource=plural, subresource=sub, namespace=namespace, name=name)


def _selected_name(selector: str | None) -> str | None:
    """``metadata.name=x`` in a list/watch's field selector is the request's name, as the real RequestInfo has it."""
    for term in _split_terms(selector or ""):
        match = FIELD_TERM.fullmatch(term)
        if match and match["key"] == "metadata.name" and match["op"] in ("=", "=="):
            return match["value"]
    return None


# ---- rule matching ---------------------------------------------------------------------------------------------------


def _has(values: Any, wanted: str) -> bool:
    return isinstance(values, list) and any(v == "*" or v == wanted for v in values)


def _resource_matches(rule: JSON, combined: str, subresource: str) -> bool:
    for allowed in rule.get("resources") or []:
        if allowed in ("*", combined):
            return True
        if subresource and allowed == f"*/{subresource}":
            return True
    return False


def _url_matches(rule: JSON, path: str) -> bool:
    for allowed in rule.get("nonResourceURLs") or []:
        if allowed in ("*", path) or (allowed.endswith("*") and path.startswith(allowed.rstrip("*"))):
            return True
    return False


def rule_allows(attrs: RequestAttributes, rule: JSON) -> bool:
    """Whether one PolicyRule allows the request."""
    if not isinstance(rule, dict) or not _has(rule.get("verbs"), attrs.verb):
        return False
    if not attrs.resource_request:
        return _url_matches(rule, attrs.path)
    names = rule.get("resourceNames") or []
    return (_has(rule.get("apiGroups"), attrs.group)
            and _resource_matches(rule, attrs.combined_resource, attrs.subresource)
            and (not names or (attrs.name is not None and attrs.name in names)))


def _applies_to(subject: Any, user: UserInfo, binding_namespace: str | None) -> bool:
    if not isinstance(subject, dict):
        return False
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return bool(name == user.name)
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return bool(namespace) and user.name == f"system:serviceaccount:{namespace}:{name}"
    return False


def _bound_rules(binding: JSON, user: UserInfo, get: Getter) -> Iterable[JSON]:
    namespace = _meta(binding).get("namespace")
    if not any(_applies_to(s, user, namespace) for s in binding.get("subjects") or []):
        return []
    ref = binding.get("roleRef") or {}
    if ref.get("kind") == "Role" and namespace:
        role = get("roles", namespace, str(ref.get("name")))
    elif ref.get("kind") == "ClusterRole":
        role = get("clusterroles", None, str(ref.get("name")))
    else:
        role = None
    return list((role or {}).get("rules") or [])


def rbac_allows(attrs: RequestAttributes, user: UserInfo, get: Getter, items: Lister) -> bool:
    """Whether the stored RBAC objects allow the request (ClusterRoleBindings, then the namespace's RoleBindings)."""
    for binding in items("clusterrolebindings"):
        if (binding.get("roleRef") or {}).get("kind") == "ClusterRole" and \
                any(rule_allows(attrs, rule) for rule in _bound_rules(binding, user, get)):
            return True
    if not attrs.resource_request or not attrs.namespace:
        return False
    for binding in items("rolebindings"):
        if _meta(binding).get("namespace") == attrs.namespace and \
                any(rule_allows(attrs, rule) for rule in _bound_rules(binding, user, get)):
            return True
    return False


def forbidden(attrs: RequestAttributes, user: str) -> kmock.KubernetesError:
    """The apiserver's 403: ``<resource>[ "<name>"] is forbidden: User "<user>" cannot <verb> resource ...``."""
    if not attrs.resource_request:
        return kmock.KubernetesError(status=403, reason="Forbidden", details={},
                                     message=f'forbidden: User "{user}" cannot {attrs.verb} path "{attrs.path}"')
    group_resource = f"{attrs.resource}.{attrs.group}" if attrs.group else attrs.resource
    name = attrs.name
    if name and attrs.resource == "services" and attrs.subresource == "proxy":
        with contextlib.suppress(kmock.KubernetesError):
            name = split_proxy_name(name)[0]
    subject = f'{group_resource} "{name}"' if name else group_resource
    where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    details: JSON = {"name": name} if name else {}
    if attrs.group:
        details["group"] = attrs.group
    details["kind"] = attrs.resource
    return kmock.KubernetesError(
        status=403, reason="Forbidden", details=details,
        message=f'{subject} is forbidden: User "{user}" cannot {attrs.verb} resource "{attrs.combined_resource}" in '
                f'API group "{attrs.group}" {where}')


# ---- the default policy ----------------------------------------------------------------------------------------------

_BOOTSTRAP_META: JSON = {"labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                         "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}}


def _cluster_role(name: str, rules: list[JSON]) -> tuple[str, JSON]:
    return "clusterroles", {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRole",
                            "metadata": {"name": name, **json.loads(json.dumps(_BOOTSTRAP_META))}, "rules": rules}


def _cluster_binding(name: str, groups: list[str]) -> tuple[str, JSON]:
    return "clusterrolebindings", {
        "apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name, **json.loads(json.dumps(_BOOTSTRAP_META))},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
        "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": group} for group in groups]}


BOOTSTRAP_POLICY: tuple[tuple[str, JSON], ...] = (
    _cluster_role("cluster-admin", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                                    {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
    _cluster_binding("cluster-admin", ["system:masters"]),
    _cluster_role("system:discovery", [{"nonResourceURLs": list(DISCOVERY_URLS), "verbs": ["get"]}]),
    _cluster_binding("system:discovery", ["system:authenticated"]),
    _cluster_role("system:public-info-viewer", [{"nonResourceURLs": list(PUBLIC_INFO_URLS), "verbs": ["get"]}]),
    _cluster_binding("system:public-info-viewer", ["system:authenticated", "system:unauthenticated"]),
)
"""The default ClusterRoles and ClusterRoleBindings a real server reconciles at startup that this emulator has:
cluster-admin (for system:masters), system:discovery and system:public-info-viewer (for every authenticated user).
Not: admin/edit/view (aggregated roles), system:basic-user, the controllers' and nodes' roles."""


# ---- validation ------------------------------------------------------------------------------------------------------


def path_segment_name_errors(name: str) -> list[str]:
    """RBAC object names are path segments (``system:discovery`` is valid), as the real server validates them."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in "/%" if c in name]


def _unsupported(field: str, value: Any, supported: Iterable[str]) -> FieldError:
    choices = ", ".join(f'"{s}"' for s in supported)
    return FieldError(field, f"Unsupported value: {json.dumps(value)}: supported values: {choices}",
                      "FieldValueNotSupported")


def _rule_errors(rules: Any, namespaced: bool) -> list[FieldError]:
    errors: list[FieldError] = []
    for index, rule in enumerate(rules or []):
        here = f"rules[{index}]"
        if not rule.get("verbs"):
            errors.append(FieldError(f"{here}.verbs", "Required value: verbs must contain at least one value",
                                     "FieldValueRequired"))
        urls = rule.get("nonResourceURLs") or []
        if urls:
            if namespaced:
                errors.append(FieldError(f"{here}.nonResourceURLs", f"Invalid value: {json.dumps(urls)}: namespaced "
                                                                    f"rules cannot apply to non-resource URLs"))
            if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
                errors.append(FieldError(f"{here}.nonResourceURLs", f"Invalid value: {json.dumps(urls)}: rules cannot "
                                                                    f"apply to both regular resources and non-resource "
                                                                    f"URLs"))
            continue
        if not rule.get("apiGroups"):
            errors.append(FieldError(f"{here}.apiGroups", "Required value: resource rules must supply at least one "
                                                          "api group", "FieldValueRequired"))
        if not rule.get("resources"):
            errors.append(FieldError(f"{here}.resources", "Required value: resource rules must supply at least one "
                                                          "resource", "FieldValueRequired"))
    return errors


def role_errors(obj: JSON) -> list[FieldError]:
    return _rule_errors(obj.get("rules"), namespaced=True)


def cluster_role_errors(obj: JSON) -> list[FieldError]:
    return _rule_errors(obj.get("rules"), namespaced=False)


def _binding_errors(obj: JSON, namespaced: bool) -> list[FieldError]:
    errors: list[FieldError] = []
    ref = obj.get("roleRef") or {}
    kinds = ("Role", "ClusterRole") if namespaced else ("ClusterRole",)
    if ref.get("apiGroup") != RBAC_GROUP:
        errors.append(_unsupported("roleRef.apiGroup", ref.get("apiGroup", ""), [RBAC_GROUP]))
    if ref.get("kind") not in kinds:
        errors.append(_unsupported("roleRef.kind", ref.get("kind", ""), kinds))
    if not ref.get("name"):
        errors.append(FieldError("roleRef.name", "Required value", "FieldValueRequired"))
    for index, subject in enumerate(obj.get("subjects") or []):
        here = f"subjects[{index}]"
        kind = subject.get("kind")
        if kind not in ("ServiceAccount", "User", "Group"):
            errors.append(_unsupported(f"{here}.kind", kind, ("ServiceAccount", "User", "Group")))
        if not subject.get("name"):
            errors.append(FieldError(f"{here}.name", "Required value", "FieldValueRequired"))
        group = subject.get("apiGroup", "")
        if kind == "ServiceAccount":
            if group:
                errors.append(_unsupported(f"{here}.apiGroup", group, [""]))
            if not namespaced and not subject.get("namespace"):
                errors.append(FieldError(f"{here}.namespace", "Required value", "FieldValueRequired"))
        elif kind in ("User", "Group") and group != RBAC_GROUP:
            errors.append(_unsupported(f"{here}.apiGroup", group, [RBAC_GROUP]))
    return errors


def role_binding_errors(obj: JSON) -> list[FieldError]:
    return _binding_errors(obj, namespaced=True)


def cluster_role_binding_errors(obj: JSON) -> list[FieldError]:
    return _binding_errors(obj, namespaced=False)


def default_subjects(obj: JSON) -> None:
    """The v1 defaults: a User or Group subject without apiGroup gets ``rbac.authorization.k8s.io``."""
    for subject in obj.get("subjects") or []:
        if isinstance(subject, dict) and subject.get("kind") in ("User", "Group") and not subject.get("apiGroup"):
            subject["apiGroup"] = RBAC_GROUP
