"""An emulated Kubernetes API server for the clipper_kubernetes tests.

What it is: a subclass of ``kmock.KubernetesEmulator`` that answers the official ``kubernetes`` Python client like a
kube-apiserver 1.37 would, for the resources the plugin uses:

* core/v1: namespaces, pods (+log, +status), services (+status, +proxy), secrets, configmaps,
  persistentvolumeclaims (+status), nodes (+status), events, serviceaccounts;
* apps/v1: deployments (+scale, +status);
* rbac.authorization.k8s.io/v1: roles, rolebindings, clusterroles, clusterrolebindings.

It keeps kmock's object store (``self._objects``, keyed ``(resource, namespace, name)``, with history),
its watch buses, request recording (``list(server)``, ``server[-1]``, kmock's DSL views), discovery and
Status rendering (raise ``kmock.KubernetesError``), and adds:
create/replace/patch (merge, strategic-merge, json-patch)/delete/deletecollection with server-side
fields (uid, one global resourceVersion counter, creationTimestamp, generation, generateName),
defaulting (Deployment replicas/strategy, Service type/clusterIP/ports/nodePorts, Pod/PVC phase, RBAC subjects'
apiGroup), validation (the 1.37 JSON schemas via ``kubernetes_validate`` in strict mode, plus names, labels,
annotations, Deployment selectors, RBAC rules and roleRefs), status and scale subresources, label and field
selectors on lists and watches (watches honour ``timeoutSeconds`` and ``resourceVersion``), graceful pod deletion,
finalizers, garbage collection of dependents by ownerReferences, pod logs from a pluggable source,
a service proxy to "ready" pods, and one-shot error injection (of one user's requests, or anyone's).

Who may do what:

* **the admin token** (``token``, the kubeconfig's; user ``user``, in ``system:masters``) may do everything, but
  for the deny list (:meth:`KubeApiEmulator.deny`), which applies to it alone;
* **service-account tokens** (:meth:`ApiServerHandle.service_account_token`; JWT-shaped, HS256 with a per-server
  key) are the user ``system:serviceaccount:<ns>:<name>`` (groups ``system:serviceaccounts``,
  ``system:serviceaccounts:<ns>``, ``system:authenticated``) while that ServiceAccount (that uid) exists, and are
  **authorized by real RBAC** over the stored Roles, ClusterRoles and bindings (``rbac.py``: apiGroups, resources
  with ``plural/sub``, ``*`` and ``*/sub``, verbs, resourceNames, nonResourceURLs; User, Group and ServiceAccount
  subjects). The default policy present at startup: ``cluster-admin``, ``system:discovery`` and
  ``system:public-info-viewer`` (discovery, /version and the health paths for every authenticated user). A denial
  is the real 403 Forbidden Status (``deployments.apps "web" is forbidden: User "..." cannot patch resource
  "deployments/scale" in API group "apps" in the namespace "ns"``);
* anything else is 401 (``token=None``: every request without a service-account token is the admin).

Every request is recorded with its user, RBAC verb, resource, namespace and answer's code
(:meth:`ApiServerHandle.requests_by`, :class:`AuditEvent`). Every namespace gets a ``default`` ServiceAccount at
once (made again if deleted), as the ServiceAccount controller does, and pod creation goes through the
ServiceAccount admission plugin (``spec.serviceAccountName`` defaults to ``default``; a missing account is 403).

What it is NOT: there is no scheduler, no controllers (no ReplicaSets, no Endpoints, no pods are made
for a Deployment, no status is ever computed — the kubelet stand-in in ``tests/kubelet/`` plays those
parts; only the garbage collector's and the ServiceAccount controller's work is emulated), no admission webhooks or
quotas, no RBAC escalation checks (a service account allowed to write Roles may grant what it lacks), no aggregated
ClusterRoles (no admin/edit/view), no TokenRequest API (``serviceaccounts/token``), no token expiry, audiences or
bound-pod checks, no legacy token Secrets, no ``kube-root-ca.crt`` ConfigMaps, no projected volumes added by
admission, no anonymous user (no token is 401), no server-side apply, no YAML/protobuf/CBOR bodies (JSON only), no
pagination (``limit``/``continue`` are ignored), no watch bookmarks, no ``follow`` for logs (the log is answered
once), no ``kubernetes`` Service object in ``default``, and strategic merge is approximated (see
:func:`strategic_merge_patch`). TLS exists only on the in-cluster endpoints made with
:meth:`ApiServerHandle.serve_https` (``tls.py``: the same server over HTTPS on a given IP address, a ``trustme`` CA,
a certificate for that address and ``kubernetes.default.svc[.cluster.local]``; no client certificates); the
kubeconfig's URL is plain http on loopback. kmock DSL reactions (``server['get /x'] << ...``) still work for paths
that are not Kubernetes resources; for resources use :meth:`KubeApiEmulator.fail_next` instead.

The runner :func:`running_api_server` serves it on 127.0.0.1 in a daemon thread with its own event loop and writes a
kubeconfig file, so tests configure the client exactly as production code does::

    with running_api_server() as api:
        client = kubernetes.config.new_client_from_config(config_file=api.kubeconfig)
        endpoint = api.serve_https("10.244.7.1")          # HttpsEndpoint(host, port, ca_pem), for pods
        token = api.service_account_token("ns", "autoscaler")
        api.requests_by("system:serviceaccount:ns:autoscaler")  # [AuditEvent(verb, resource, ..., code)]
"""

from __future__ import annotations

from .auth import AuditEvent, UserInfo, service_account_user
from .emulator import KubeApiEmulator, LogSource
from .patches import merge_patch, strategic_merge_patch
from .resources import ResourceType
from .runner import ApiServerHandle, running_api_server, write_kubeconfig
from .selectors import label_selector_matches, parse_field_selector, parse_label_selector
from .tls import HttpsEndpoint

__all__ = [
    "ApiServerHandle",
    "AuditEvent",
    "HttpsEndpoint",
    "KubeApiEmulator",
    "LogSource",
    "ResourceType",
    "UserInfo",
    "label_selector_matches",
    "merge_patch",
    "parse_field_selector",
    "parse_label_selector",
    "running_api_server",
    "service_account_user",
    "strategic_merge_patch",
    "write_kubeconfig",
]
