"""What pods get for talking to the API server from inside, as a real kubelet (with the ServiceAccount admission
plugin and the kubernetes Service) gives them:

* the **in-cluster endpoint**: the emulator served over HTTPS on this node's pod-network gateway (an address of
  this host, ``Kubelet.gateway``) and an ephemeral port, through ``api_handle.serve_https`` (the emulator's own
  handler on a second, TLS listener; see ``kube_api/tls.py``), listening on that one address only, stopped with
  the kubelet;
* the **kubernetes Service's environment** in every container: ``KUBERNETES_SERVICE_HOST`` (the gateway),
  ``KUBERNETES_SERVICE_PORT``, ``KUBERNETES_SERVICE_PORT_HTTPS``, ``KUBERNETES_PORT=tcp://host:port`` and
  ``KUBERNETES_PORT_<port>_TCP[_PROTO|_PORT|_ADDR]``, always (independent of ``enableServiceLinks``), usable in
  ``$(VAR)`` expansion, a container's own variable of the same name winning; and ``/etc/hosts`` entries for
  ``kubernetes[.default[.svc[.cluster.local]]]`` → the gateway (the port is the ephemeral one, not 443);
* the **service-account token**: unless ``automountServiceAccountToken`` is false (on the pod, else on its
  ServiceAccount), ``/var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}`` in every container
  that does not mount something there itself: a read-only bind mount of a per-pod host directory (files 0644, so
  any container user reads them), the token minted once per pod by ``api_handle.service_account_token`` for
  ``spec.serviceAccountName``, removed with the pod. A ServiceAccount gone before the pod's containers are made
  keeps them in ContainerCreating (``failed to fetch token``).

Without an ``api_handle`` (or one without ``serve_https``) there is no endpoint, no such environment and no token.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from typing import Any

import docker.types
from kubernetes.client.exceptions import ApiException

from .state import _Pod
from .util import ConfigError, Json, log

TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
API_SERVICE_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                     "kubernetes.default.svc.cluster.local")


def pod_service_account(pod: Json) -> str:
    spec = pod.get("spec") or {}
    return str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")


class ServiceAccountsMixin:
    """Kubelet's in-cluster API endpoint, its environment variables and the service-account token mount."""

    api_handle: Any
    api_endpoint: Any
    gateway: str | None
    prefix: str
    core: Any
    _call: Callable[..., Any]

    # ------------------------------------------------------------------ the endpoint

    def _start_api_endpoint(self) -> None:
        if self.api_handle is None or not hasattr(self.api_handle, "serve_https") or self.gateway is None:
            return
        self.api_endpoint = self.api_handle.serve_https(self.gateway)
        log.info("in-cluster API endpoint: %s", self.api_endpoint.url)

    def _stop_api_endpoint(self) -> None:
        endpoint, self.api_endpoint = self.api_endpoint, None
        if endpoint is not None:
            with contextlib.suppress(Exception):  # the API server may have stopped first
                self.api_handle.stop_https(endpoint)

    # ------------------------------------------------------------------ environment and /etc/hosts

    def _service_env(self) -> dict[str, str]:
        """The kubernetes Service's variables, as every container gets them."""
        endpoint = self.api_endpoint
        if endpoint is None:
            return {}
        host, port = str(endpoint.host), str(endpoint.port)
        url = f"tcp://{host}:{port}"
        return {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port,
                "KUBERNETES_SERVICE_PORT_HTTPS": port, "KUBERNETES_PORT": url, f"KUBERNETES_PORT_{port}_TCP": url,
                f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp", f"KUBERNETES_PORT_{port}_TCP_PORT": port,
                f"KUBERNETES_PORT_{port}_TCP_ADDR": host}

    def _api_hosts(self) -> dict[str, str]:
        """``/etc/hosts`` entries of a pod's first container (the others share its network namespace)."""
        endpoint = self.api_endpoint
        return {} if endpoint is None else dict.fromkeys(API_SERVICE_NAMES, str(endpoint.host))

    # ------------------------------------------------------------------ the token

    def _service_account_mounts(self, pod: Json, state: _Pod, cs: Json) -> list[docker.types.Mount]:
        if any(str(vm.get("mountPath", "")).rstrip("/") == TOKEN_DIR for vm in cs.get("volumeMounts") or []):
            return []  # as the admission plugin: a container mounting something there itself keeps it
        path = self._service_account_dir(pod, state)
        return [] if path is None else [docker.types.Mount(TOKEN_DIR, path, type="bind", read_only=True)]

    def _service_account_dir(self, pod: Json, state: _Pod) -> str | None:
        """The pod's token directory (made once per pod), or None when the token is not mounted."""
        if state.sa_checked:
            return state.sa_dir
        spec, namespace = pod.get("spec") or {}, pod["metadata"]["namespace"]
        account, automount = pod_service_account(pod), spec.get("automountServiceAccountToken")
        if self.api_endpoint is None or automount is False:
            state.sa_checked = True
            return None
        missing = ConfigError(f'failed to fetch token: serviceaccounts "{account}" not found',
                              reason="ContainerCreating")
        try:
            sa = self._call(self.core.read_namespaced_service_account, account, namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            raise missing from exc
        if automount is None and (sa or {}).get("automountServiceAccountToken") is False:
            state.sa_checked = True
            return None
        try:
            token = self.api_handle.service_account_token(namespace, account)
        except Exception as exc:  # the emulator's 404 (a kmock.KubernetesError): deleted since the read
            if getattr(exc, "status", None) != 404:
                raise
            raise missing from exc
        path = tempfile.mkdtemp(prefix=f"{self.prefix}-sa-")
        state.tmpdirs.append(path)
        os.chmod(path, 0o755)
        for name, text in (("token", token), ("ca.crt", self.api_endpoint.ca_pem), ("namespace", namespace)):
            file = os.path.join(path, name)
            with open(file, "w", encoding="utf-8") as fh:
                fh.write(str(text))
            os.chmod(file, 0o644)
        state.sa_dir, state.sa_checked = path, True
        return path
