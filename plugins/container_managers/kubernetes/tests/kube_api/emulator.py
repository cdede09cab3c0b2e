""":class:`KubeApiEmulator`, kmock's KubernetesEmulator made to behave like a kube-apiserver 1.37: the HTTP entry
point with its audit record, authentication (the admin token, service-account tokens), authorization (RBAC for
service accounts, the deny list for the admin) and error injection, routing, storage with resourceVersions and
watch events, garbage collection, the default ServiceAccount of every namespace and the ServiceAccount admission of
pods, server-side fields and defaults, clusterIP/nodePort allocation, create/replace/patch/delete, the status and
scale subresources, lists and watches, pod logs, the service proxy, and discovery.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import contextvars
import copy
import dataclasses
import ipaddress
import json
import math
import secrets
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import aiohttp.web
import attrs
import kmock
import multidict
import yarl
from kmock._internal import parsing as kmock_parsing
from kmock._internal.aiobus import Bus, BusMark
from kmock._internal.apps import KMockError

from .auth import AuditEvent, TokenIssuer, UserInfo
from .defaults import default_deployment, default_namespace, default_pod_spec, default_secret
from .errors import (
    FieldError,
    _details,
    already_exists,
    bad_request,
    conflict,
    invalid,
    method_not_allowed,
    namespace_not_found,
    no_such_resource,
    not_found,
)
from .patches import apply_patch
from .proxy import HOP_BY_HOP, PROXY_TAIL, _is_ready_endpoint, _resolve_target_port, split_proxy_name
from .rbac import BOOTSTRAP_POLICY, RequestAttributes, default_subjects, forbidden, rbac_allows
from .resources import (
    COLLECTION_DELETABLE,
    DEFAULT_USER,
    GENERATION_TRACKED,
    GROUP_VERSIONS,
    INITIAL_NAMESPACES,
    JSON,
    KUBE_VERSION,
    NODE_PORT_RANGE,
    PROTECTED_META,
    RESOURCE_TYPES,
    RESOURCES,
    RETURNS_DELETED_OBJECT,
    SERVICE_CIDR,
    UNDELETABLE_NAMESPACES,
    WATCH_HISTORY,
    ResourceType,
    _discovery_entries,
)
from .rules import InjectedFailure, Rule
from .selectors import Selection, selection_of
from .urls import _decode_body, parse_api_path, request_verb
from .util import _int_param, _json_response, _meta, _now, _random_suffix, _status_success
from .validation import check_type_meta, validate_object

LogSource = Callable[[str, str, "str | None", "int | None", bool], "str | None"]
"""``log_source(namespace, pod_name, container_or_None, tail_lines_or_None, timestamps) -> text or None``."""

_CURRENT_EVENT: contextvars.ContextVar[AuditEvent | None] = contextvars.ContextVar("kube_api_event", default=None)
"""The audit record of the request being handled (each request is handled in a context of its own)."""


def _default_service_account() -> JSON:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}


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
    _tokens: TokenIssuer = attrs.field(factory=TokenIssuer, init=False)
    _audit: list[AuditEvent] = attrs.field(factory=list, init=False)
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
            self._put(self._service_accounts, self._new_object(self._service_accounts, _default_service_account(),
                                                               name))
        for plural, body in BOOTSTRAP_POLICY:
            rt = self._type_by_plural(plural)
            self._put(rt, self._new_object(rt, body, None))

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
        """Answer the admin token's matching requests 403 Forbidden like an RBAC denial; ``resource`` is
        plural[/sub]. Service-account users are authorized by the stored RBAC objects instead. Thread-safe."""
        with self._rules_lock:
            self._denials.append(Rule(verb, resource, namespace, group))

    def allow_all(self) -> None:
        """Clear the admin token's deny list (RBAC objects are not touched). Thread-safe."""
        with self._rules_lock:
            self._denials.clear()

    def fail_next(self, verb: str, resource: str, *, status: int = 500, reason: str = "InternalError",
                  message: str = "injected failure", count: int = 1, namespace: str | None = None,
                  group: str = "", user: str | None = None) -> None:
        """Answer the next ``count`` matching requests (of ``user``, or of anyone) with a Status error (after
        authn/authz). Thread-safe."""
        error = kmock.KubernetesError(status=status, reason=reason, message=message)
        with self._rules_lock:
            self._failures.append(InjectedFailure(Rule(verb, resource, namespace, group), error, count, user))

    def issue_service_account_token(self, namespace: str, name: str) -> str:
        """A bearer token of the ServiceAccount ``namespace/name`` (404 KubernetesError if there is none): requests
        with it are the user ``system:serviceaccount:<namespace>:<name>``, authorized by RBAC, until that
        ServiceAccount is deleted (a new one of the same name has another uid: the token stays invalid). Call on
        the server loop (:meth:`ApiServerHandle.service_account_token` from any thread)."""
        sa = self._get(self._service_accounts, namespace, name)
        if sa is None:
            raise not_found(self._service_accounts, name)
        return self._tokens.issue(namespace, name, str(sa["metadata"]["uid"]))

    def audit_events(self, user: str | None = None) -> list[AuditEvent]:
        """Copies of the records of the requests served so far (of one user, if given), oldest first. Call on the
        server loop (:meth:`ApiServerHandle.requests_by`)."""
        return [dataclasses.replace(e) for e in self._audit if user is None or e.user == user]

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
        event: AuditEvent | None = None
        try:
            if self.limit is not None and len(self._requests) >= self.limit:
                raise KMockError("Too many requests have been served so far.")
            request = await self._parse(raw_request)
            self._requests.append(request)
            attributes = RequestAttributes.of(request)
            event = AuditEvent(user="", verb=attributes.verb, resource=attributes.combined_resource,
                               namespace=attributes.namespace, name=attributes.name, group=attributes.group,
                               path=attributes.path)
            self._audit.append(event)
            _CURRENT_EVENT.set(event)
            response = await self._handle(request)
            event.code = event.code or response.status
            return response
        except kmock.KubernetesError as exc:
            if event is not None:
                event.code = exc.status or 500
            return await self._render_error(exc)
        except Exception as exc:
            if event is not None:
                event.code = 500
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
        user = self._authenticate(request)
        event = _CURRENT_EVENT.get()
        if event is not None:
            event.user = user.name
        if not user.admin:
            self._authorize_rbac(user, RequestAttributes.of(request))
        if request.resource is None:
            return await kmock.RawHandler._handle(self, request)  # /api, /apis, /version, kmock DSL reactions
        if request.resource.plural is None:  # /api/v1, /apis/apps, /apis/apps/v1, with or without a trailing slash
            serve = self._serve_group if request.resource.version is None else self._serve_version
            return _json_response(await serve(request))
        rt = self._resolve_type(request)
        if user.admin:
            self._authorize(rt, request)
        self._inject_failure(rt, request, user)
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

    def _authenticate(self, request: kmock.Request) -> UserInfo:
        """The admin token (or, with ``token=None``, any request) is the admin; a service-account token this server
        issued is that account while it exists; anything else is 401."""
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        bearer = credentials.strip() if scheme.lower() == "bearer" else None
        unauthorized = kmock.KubernetesError(status=401, reason="Unauthorized", message="Unauthorized")
        claims = self._tokens.verify(bearer) if bearer else None
        if claims is not None:
            sa = self._get(self._service_accounts, claims.namespace, claims.name)
            if sa is None or _meta(sa).get("uid") != claims.uid:
                raise unauthorized  # its ServiceAccount is gone (or was made anew)
            return UserInfo.service_account(claims.namespace, claims.name)
        if self.token is not None and (bearer is None or not secrets.compare_digest(bearer, self.token)):
            raise unauthorized
        return UserInfo.administrator(self.user)

    def _authorize_rbac(self, user: UserInfo, attributes: RequestAttributes) -> None:
        """RBAC over the stored Roles/ClusterRoles and their bindings, for every user but the admin."""
        def get(plural: str, namespace: str | None, name: str) -> JSON | None:
            return self._get(self._type_by_plural(plural), namespace, name)

        def items(plural: str) -> list[JSON]:
            return self._all(self._type_by_plural(plural))

        if not rbac_allows(attributes, user, get, items):
            raise forbidden(attributes, user.name)

    @staticmethod
    def _rbac_resource(request: kmock.Request) -> str:
        plural = request.resource.plural if request.resource else ""
        if request.subresource:
            return f"{plural}/{request.subresource.split('/')[0]}"
        return plural or ""

    def _authorize(self, rt: ResourceType, request: kmock.Request) -> None:
        """The admin token's deny list."""
        verb, resource = request_verb(request), self._rbac_resource(request)
        with self._rules_lock:
            denied = any(rule.matches(verb, resource, request.namespace, rt.group) for rule in self._denials)
        if not denied:
            return
        where = f'in the namespace "{request.namespace}"' if request.namespace else "at the cluster scope"
        name = request.name
        if name and rt.plural == "services" and (request.subresource or "").split("/")[0] == "proxy":
            name = split_proxy_name(name)[0]  # services/<name>:<port>/proxy is the service <name>
        subject = f'{rt.group_resource} "{name}"' if name else rt.group_resource
        raise kmock.KubernetesError(
            status=403, reason="Forbidden",
            message=f'{subject} is forbidden: User "{self.user}" cannot {verb} resource "{resource}" in API group '
                    f'"{rt.group}" {where}',
            details=_details(rt, name))

    def _inject_failure(self, rt: ResourceType, request: kmock.Request, user: UserInfo) -> None:
        verb, resource = request_verb(request), self._rbac_resource(request)
        with self._rules_lock:
            for failure in self._failures:
                if failure.user not in (None, user.name):
                    continue
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

    @property
    def _service_accounts(self) -> ResourceType:
        return RESOURCE_TYPES["", "v1", "serviceaccounts"]

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
        elif rt.plural == "namespaces" and previous is None:
            await self._ensure_default_service_account(obj["metadata"]["name"])
        return obj

    async def _ensure_default_service_account(self, namespace: str) -> None:
        """The ServiceAccount controller's work: every active namespace has a ``default`` ServiceAccount (made at
        once here, and made again when deleted)."""
        ns = self._get(self._namespaces, None, namespace)
        if ns is None or _meta(ns).get("deletionTimestamp") or self._get(self._service_accounts, namespace, "default"):
            return
        await self._store(self._service_accounts,
                          self._new_object(self._service_accounts, _default_service_account(), namespace), None)

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
        if rt.plural == "serviceaccounts" and meta["name"] == "default":
            await self._ensure_default_service_account(meta["namespace"])
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
            case "rolebindings" | "clusterrolebindings":
                default_subjects(obj)

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
            if rt.plural == "pods" and request.namespace is not None:
                self._admit_pod_service_account(obj, request.namespace)
            validate_object(rt, obj)
            name = obj["metadata"]["name"]
            if self._get(rt, request.namespace, name) is not None:
                raise already_exists(rt, name)
            await self._store(rt, obj, previous=None)
        return _json_response(obj, 201)

    def _admit_pod_service_account(self, pod: JSON, namespace: str) -> None:
        """The ServiceAccount admission plugin on pod creation: ``spec.serviceAccountName`` defaults to ``default``
        (and the deprecated ``spec.serviceAccount`` follows it); the account must exist, else 403 Forbidden. (It
        does not add the projected token volume: the kubelet stand-in mounts the token itself.)"""
        spec = pod.get("spec")
        if not isinstance(spec, dict):
            return
        account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        if not isinstance(account, str):
            return  # schema validation answers it
        spec["serviceAccountName"] = spec["serviceAccount"] = account
        if self._get(self._service_accounts, namespace, account) is None:
            name = _meta(pod).get("name")
            raise kmock.KubernetesError(
                status=403, reason="Forbidden", details={"name": name, "kind": "pods"},
                message=f'pods "{name}" is forbidden: error looking up service account {namespace}/{account}: '
                        f'serviceaccount "{account}" not found')

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
        if rt.plural in ("rolebindings", "clusterrolebindings") and new.get("roleRef") != current.get("roleRef"):
            raise invalid(rt, name, [FieldError("roleRef", f"Invalid value: {json.dumps(new.get('roleRef'))}: cannot "
                                                           f"change roleRef")])
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
        if not since or since == "0":  # the objects there are, oldest write first (as their events came)
            current = sorted((obj for obj in self._all(rt) if selection.matches(obj)),
                             key=lambda obj: int(obj["metadata"]["resourceVersion"]))
            return [{"type": "ADDED", "object": copy.deepcopy(obj)} for obj in current]
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
        event = _CURRENT_EVENT.get()
        if event is not None:
            event.code = response.status
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

    async def _serve_apis(self, request: kmock.Request) -> kmock.Payload:
        groups: dict[str, list[str]] = {}
        for rt in RESOURCES:  # in the table's order (apps before rbac), as the real server orders them
            if rt.group and rt.version not in groups.setdefault(rt.group, []):
                groups[rt.group].append(rt.version)
        return {"apiVersion": "v1", "kind": "APIGroupList", "groups": [
            {"name": group, "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
             "preferredVersion": {"groupVersion": f"{group}/{versions[0]}", "version": versions[0]}}
            for group, versions in groups.items()]}

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
