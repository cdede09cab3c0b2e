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
for a Deployment, no status is ever computed — the kubelet stand-in in ``tests/kubelet/`` plays those
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

from .emulator import KubeApiEmulator, LogSource
from .patches import merge_patch, strategic_merge_patch
from .resources import ResourceType
from .runner import ApiServerHandle, running_api_server, write_kubeconfig
from .selectors import label_selector_matches, parse_field_selector, parse_label_selector

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
