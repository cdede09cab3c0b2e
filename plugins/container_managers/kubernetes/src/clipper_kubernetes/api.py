"""The Kubernetes API as the manager uses it: the official client, configured from a kubeconfig file (or from
the pod's service account inside a cluster), every call bounded by a timeout and every failure turned into a
:class:`~clipper_core.errors.ClipperException` a user can act on (an unreachable server, a 401, an RBAC 403, a
namespace that does not exist, an object the server rejected as invalid).

Objects travel as plain dictionaries (``_preload_content=False``; JSON in and out), the same dictionaries
:mod:`clipper_kubernetes.manifests` makes and ``clipper kubernetes render`` prints.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import InClusterConfigLoader

from clipper_core.errors import ClipperException

__all__ = ["KubeApi", "KubeConflict", "KubeNotFound"]


SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
"""Where a pod finds its service account's token and the cluster's CA (the in-cluster configuration)."""


class KubeNotFound(ClipperException):
    """The object (not the namespace) does not exist."""


class KubeConflict(ClipperException):
    """The object exists already, or changed since it was read."""


# kind -> (API attribute, the client's method suffix)
_KINDS = {"Deployment": ("apps", "namespaced_deployment"), "Service": ("core", "namespaced_service"),
          "Secret": ("core", "namespaced_secret"), "ConfigMap": ("core", "namespaced_config_map"),
          "PersistentVolumeClaim": ("core", "namespaced_persistent_volume_claim"), "Pod": ("core", "namespaced_pod"),
          "ServiceAccount": ("core", "namespaced_service_account"), "Role": ("rbac", "namespaced_role"),
          "RoleBinding": ("rbac", "namespaced_role_binding")}
KINDS = tuple(_KINDS)


def _status_message(exc: ApiException) -> tuple[str, dict[str, Any]]:
    try:
        body = json.loads(exc.body or b"{}")
    except ValueError:
        return (exc.body or exc.reason or "").strip() if isinstance(exc.body, str) else str(exc.reason), {}
    if not isinstance(body, dict):
        return str(body), {}
    return str(body.get("message") or exc.reason), dict(body.get("details") or {})


class KubeApi:
    """One API server, as one kubeconfig context (or the in-cluster service account) reaches it.

    :param kubeconfig: a kubeconfig file (default ``$KUBECONFIG``, else ``~/.kube/config``); inside a pod with
        neither given, the pod's service account
    :param context: a context of that file (default its current-context)
    :param timeout: seconds for one API call (connect and read)
    """

    def __init__(self, kubeconfig: str | None = None, context: str | None = None, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.in_cluster = False
        configuration = k8s.Configuration()
        # Set before the client makes its connection pool (which copies it): a refused connection is retried
        # twice, a read that timed out never (so one call takes at most about one timeout).
        configuration.retries = urllib3.Retry(total=2, connect=2, read=0, status=0, backoff_factor=0.2)
        try:
            if kubeconfig is None and context is None and "KUBERNETES_SERVICE_HOST" in os.environ \
                    and not os.environ.get("KUBECONFIG") and not os.path.exists(os.path.expanduser("~/.kube/config")):
                InClusterConfigLoader(token_filename=os.path.join(SERVICE_ACCOUNT_DIR, "token"),
                                      cert_filename=os.path.join(SERVICE_ACCOUNT_DIR, "ca.crt")).load_and_set(
                    configuration)
                self.client = k8s.ApiClient(configuration)
                self.in_cluster = True
            else:
                self.client = k8s_config.new_client_from_config(config_file=kubeconfig, context=context,
                                                                client_configuration=configuration)
        except (ConfigException, OSError, ValueError, TypeError) as exc:
            raise ClipperException(f"no usable Kubernetes configuration (kubeconfig={kubeconfig or 'default'}, "
                                   f"context={context or 'current'}): {exc}") from None
        self.host = str(self.client.configuration.host)
        self.core = k8s.CoreV1Api(self.client)
        self.apps = k8s.AppsV1Api(self.client)
        self.rbac = k8s.RbacAuthorizationV1Api(self.client)
        self.version_api = k8s.VersionApi(self.client)

    def close(self) -> None:
        self.client.close()

    # -- calls ------------------------------------------------------------------------------------------
    def call(self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``method(*args, **kwargs)`` with a timeout, its JSON answer decoded; errors explained (``what``: the
        action, as in "create Deployment x in namespace y")."""
        kwargs.setdefault("_request_timeout", (min(self.timeout, 10.0), self.timeout))
        kwargs["_preload_content"] = False
        try:
            response = method(*args, **kwargs)
        except ApiException as exc:
            raise self._explain(exc, what) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClipperException(f"cannot reach the Kubernetes API server at {self.host} (to {what}): "
                                   f"{exc}") from None
        data = response.data
        content_type = response.headers.get("Content-Type", "") if response.headers else ""
        if not data:
            return None
        if "json" in content_type or data[:1] in (b"{", b"["):
            return json.loads(data)
        return data.decode(errors="replace")

    def _explain(self, exc: ApiException, what: str) -> ClipperException:
        message, details = _status_message(exc)
        status = exc.status or 0
        if status == 401:
            return ClipperException(f"the Kubernetes API server at {self.host} did not accept this kubeconfig's "
                                    f"credentials (to {what}): {message}", status=401)
        if status == 403:
            return ClipperException(f"Kubernetes RBAC forbids this: cannot {what}: {message}. Grant the account "
                                    "in use the Role in clipper-kubernetes' README ('RBAC').", status=403)
        if status == 404 and details.get("kind") == "namespaces":
            return ClipperException(f"namespace {details.get('name')!r} does not exist (to {what}); create it, or "
                                    "pass create_namespace_if_not_exists=True", status=404)
        if status == 404:
            return KubeNotFound(f"not found (to {what}): {message}", status=404)
        if status == 409:
            return KubeConflict(f"conflict (to {what}): {message}", status=409)
        if status == 422:
            return ClipperException(f"Kubernetes rejected an invalid object (to {what}): {message}", status=422)
        return ClipperException(f"the Kubernetes API answered {status} {exc.reason} (to {what}): {message}",
                                status=status or None)

    def check_reachable(self) -> str:
        """The server's version (``v1.37.0``); a clear error when it cannot be reached."""
        version = self.call("read the server version", self.version_api.get_code)
        return str(version.get("gitVersion", "?")) if isinstance(version, dict) else "?"

    # -- objects by kind --------------------------------------------------------------------------------
    def _op(self, verb: str, kind: str) -> Callable[..., Any]:
        api, suffix = _KINDS[kind]
        return getattr(getattr(self, api), f"{verb}_{suffix}")

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return dict(self.call(f"create {obj['kind']} {meta['name']} in namespace {meta['namespace']}",
                              self._op("create", obj["kind"]), meta["namespace"], obj))

    def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.call(f"read {kind} {name} in namespace {namespace}", self._op("read", kind), name,
                                  namespace))
        except KubeNotFound:
            return None

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return dict(self.call(f"replace {obj['kind']} {meta['name']} in namespace {meta['namespace']}",
                              self._op("replace", obj["kind"]), meta["name"], meta["namespace"], obj))

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create ``obj``, or replace the object of that name (keeping what the server assigned and may not be
        changed: a Service's clusterIP and node ports; a volume claim is left as it is)."""
        try:
            return self.create(obj)
        except KubeConflict:
            current = self.read(obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])
            if current is None:
                return self.create(obj)
            if obj["kind"] == "PersistentVolumeClaim":
                return current
            new = json.loads(json.dumps(obj))
            new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            if obj["kind"] == "Service":
                _keep_service_allocations(new, current)
            return self.replace(new)

    def select(self, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        answer = self.call(f"list {kind}s ({selector}) in namespace {namespace}", self._op("list", kind), namespace,
                           label_selector=selector)
        return list(answer.get("items") or [])

    def delete(self, kind: str, namespace: str, name: str, grace_seconds: int | None = None) -> None:
        options: dict[str, Any] = {"propagation_policy": "Background"}
        if grace_seconds is not None:
            options["grace_period_seconds"] = grace_seconds
        with contextlib.suppress(KubeNotFound):
            self.call(f"delete {kind} {name} in namespace {namespace}", self._op("delete", kind), name, namespace,
                      **options)

    def scale(self, namespace: str, name: str, replicas: int) -> dict[str, Any]:
        """Set a Deployment's replicas through its scale subresource."""
        return dict(self.call(f"scale Deployment {name} in namespace {namespace} to {replicas}",
                              self.apps.patch_namespaced_deployment_scale, name, namespace,
                              {"spec": {"replicas": replicas}}))

    def pod_log(self, namespace: str, pod: str, container: str, tail_lines: int | None = None,
                previous: bool = False) -> str:
        """A container's log (``previous``: its run before the last restart), timestamped."""
        kwargs: dict[str, Any] = {"container": container, "timestamps": True}
        if tail_lines is not None:
            kwargs["tail_lines"] = tail_lines
        if previous:
            kwargs["previous"] = True
        text = self.call(f"read the log of pod {pod} in namespace {namespace}", self.core.read_namespaced_pod_log,
                         pod, namespace, **kwargs)
        if text is None:
            return ""
        return text if isinstance(text, str) else json.dumps(text)

    def namespace_exists(self, namespace: str) -> bool:
        """Whether ``namespace`` exists; an account that may not read namespaces (403) is taken at its word
        that it works in one (a missing one shows as a 404 on the first object)."""
        try:
            self.call(f"read namespace {namespace}", self.core.read_namespace, namespace)
            return True
        except KubeNotFound:
            return False
        except ClipperException as exc:
            if exc.status == 403:
                return True
            if exc.status == 404:  # the "namespace ... not found" answer _explain words for users
                return False
            raise

    def create_namespace(self, namespace: dict[str, Any]) -> None:
        with contextlib.suppress(KubeConflict):
            self.call(f"create namespace {namespace['metadata']['name']}", self.core.create_namespace, namespace)

    def nodes(self) -> list[dict[str, Any]]:
        return list((self.call("list nodes", self.core.list_node) or {}).get("items") or [])


def _keep_service_allocations(new: dict[str, Any], current: dict[str, Any]) -> None:
    spec, old = new["spec"], current.get("spec") or {}
    for key in ("clusterIP", "clusterIPs"):
        if key in old:
            spec[key] = old[key]
    old_ports = {p.get("name"): p for p in old.get("ports") or []}
    for port in spec.get("ports") or []:
        previous = old_ports.get(port.get("name"))
        if previous and previous.get("nodePort") and spec.get("type") in ("NodePort", "LoadBalancer"):
            port.setdefault("nodePort", previous["nodePort"])
