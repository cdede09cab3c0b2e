"""Helpers of the Kubernetes tests: queries through a cluster's query address (127.0.0.1 only), bounded waits,
and what of a cluster the emulated API server still holds."""

from __future__ import annotations

import contextlib
import http.server
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import docker
from clipper_docker.testing import cluster_managers
from clipper_kubernetes import KubernetesContainerManager
from clipper_kubernetes.names import CLUSTER_LABEL

from clipper_core.testing import http_json

KINDS = ("deployments", "services", "secrets", "configmaps", "persistentvolumeclaims", "pods")


def predict(addr: str, app: str, body: Any, timeout: float = 10.0) -> tuple[int, Any]:
    """POST to ``app`` at ``addr`` (``host:port``, or a proxy path); a connection error is status 0."""
    try:
        return http_json(f"http://{addr}/{app}/predict", body, timeout=timeout)
    except OSError as exc:
        return 0, str(exc)


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def wait_for_app(addr: str, app: str, body: Any, timeout: float = 30.0) -> Any:
    """Query until ``app`` answers 200 (a new app reaches the query frontend through Redis a moment later)."""
    def served() -> Any:
        status, answer = predict(addr, app, body)
        return answer if status == 200 else None

    return wait_until(served, timeout, f"{app} to be served", interval=0.1)


def wait_for_output(addr: str, app: str, body: Any, expected: Any, timeout: float = 60.0) -> dict[str, Any]:
    last: list[Any] = [None]

    def answered() -> dict[str, Any] | None:
        status, answer = predict(addr, app, body)
        last[0] = (status, answer)
        good = isinstance(answer, dict) and not answer.get("default") and answer.get("output") == expected
        if status == 200 and good:
            return answer
        return None

    try:
        return dict(wait_until(answered, timeout, f"{app} to answer {expected!r}", interval=0.1))
    except AssertionError:
        raise AssertionError(f"{app} did not answer {expected!r} within {timeout} s; last: {last[0]!r}") from None


def cluster_objects(kube_api: Any, cluster: str, namespace: str = "default") -> dict[str, list[str]]:
    """Names of every object of ``cluster`` the API server holds, by resource."""
    found: dict[str, list[str]] = {}
    for plural in KINDS:
        names = [o["metadata"]["name"] for o in kube_api.objects(plural, namespace)
                 if (o["metadata"].get("labels") or {}).get(CLUSTER_LABEL) == cluster]
        if names:
            found[plural] = sorted(names)
    return found


def model_pods(kube_api: Any, cluster: str, namespace: str = "default") -> list[dict[str, Any]]:
    return [o for o in kube_api.objects("pods", namespace)
            if (o["metadata"].get("labels") or {}).get(CLUSTER_LABEL) == cluster
            and o["metadata"]["labels"].get("ai.clipper.role") == "model"]


@contextlib.contextmanager
def kubectl_proxy(api_url: str, token: str | None) -> Iterator[str]:
    """A stand-in for ``kubectl proxy`` on 127.0.0.1: forwards every request to the API server with the
    kubeconfig's bearer token; yields its ``host:port``."""

    class Forward(http.server.BaseHTTPRequestHandler):
        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "authorization",
                                                                                  "connection", "content-length")}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            request = urllib.request.Request(api_url + self.path, data=body, headers=headers, method=self.command)
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status, payload, reply_headers = response.status, response.read(), response.headers
            except urllib.error.HTTPError as exc:
                status, payload, reply_headers = exc.code, exc.read(), exc.headers
            self.send_response(status)
            for key, value in reply_headers.items():
                if key.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


MakeManager = Callable[..., KubernetesContainerManager]
"""The ``make_manager`` fixture: ``make_manager(suffix, **KubernetesContainerManager options)``."""


@contextlib.contextmanager
def managers(kube_api: Any, docker_client: docker.DockerClient) -> Iterator[MakeManager]:
    """``make(suffix, **kwargs)``: a KubernetesContainerManager of the cluster ``k<pid>-<suffix>`` on the emulated
    API server; on exit every cluster made is stopped, with its volume claim and model images."""
    def make(suffix: str, **kwargs: Any) -> KubernetesContainerManager:
        options: dict[str, Any] = {"kubeconfig": kube_api.kubeconfig, "docker_client": docker_client,
                                   "startup_timeout": 120, "deploy_timeout": 120, "drain_timeout": 3}
        return KubernetesContainerManager(f"k{os.getpid()}-{suffix}", **{**options, **kwargs})

    with cluster_managers(docker_client, make) as made:
        yield made
