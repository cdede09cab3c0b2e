"""Pods talking to the API server from inside, with the stand-in kubelet (``kubelet/``) on the real Docker engine and
the emulated API server (``kube_api/``): the in-cluster HTTPS endpoint on the pod network's gateway, the kubernetes
Service's environment, the mounted service-account token, ServiceAccount admission seen by the Deployment
controller, and RBAC deciding what a pod's requests may do.

The pods run ``clipper/frontend`` (it has Python); what they find out they print, and the test reads it back from
the pod's log. Every wait is bounded.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import re
import socket
import ssl
import string
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors
import pytest
from kube_api import ApiServerHandle, running_api_server
from kubelet import Kubelet
from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes.client.exceptions import ApiException

T = TypeVar("T")
FRONTEND = "clipper/frontend:0.1.0"
RT = 10  # _request_timeout of every API call here
RBAC = "rbac.authorization.k8s.io"
TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

# What a pod runs to reach the API server with the standard library only: its mounted token and CA, the address
# from its environment; one line per request ("name=status"), then DONE. The official client, where the image has
# it, through its in-cluster configuration.
PROBE = r"""
import http.client, json, os, ssl, sys
d = "/var/run/secrets/kubernetes.io/serviceaccount"
token, ns = open(d + "/token").read(), open(d + "/namespace").read()
ctx = ssl.create_default_context(cafile=d + "/ca.crt")
host, port = os.environ["KUBERNETES_SERVICE_HOST"], int(os.environ["KUBERNETES_SERVICE_PORT"])
def get(path, server=host):
    conn = http.client.HTTPSConnection(server, port, context=ctx, timeout=10)
    conn.request("GET", path, headers={"Authorization": "Bearer " + token})
    answer = conn.getresponse()
    body = json.loads(answer.read())
    conn.close()
    return answer.status, body
status, body = get("/api/v1/namespaces/%s/pods" % ns)
print("pods=%d names=%s" % (status, ",".join(sorted(p["metadata"]["name"] for p in body.get("items", [])))))
status, body = get("/api/v1/namespaces/%s/secrets" % ns)
print("secrets=%d message=%s" % (status, body.get("message")))
print("other=%d" % get("/api/v1/namespaces/%s/pods" % os.environ["OTHER_NAMESPACE"])[0])
print("by-name=%d" % get("/api/v1/namespaces/%s/pods" % ns, "kubernetes.default.svc")[0])
try:
    import kubernetes
except ImportError:
    print("official=absent")
else:
    kubernetes.config.load_incluster_config()
    pods = kubernetes.client.CoreV1Api().list_namespaced_pod(ns).items
    print("official=" + ",".join(sorted(p.metadata.name for p in pods)))
try:
    open(d + "/written", "w")
    print("read-only=no")
except OSError:
    print("read-only=yes")
print("uid=%d token-mode=%o" % (os.getuid(), os.stat(d + "/token").st_mode & 0o777))
print("DONE")
"""


def wait_for(fn: Callable[[], T | None], timeout: float = 30.0, what: str = "condition", poll: float = 0.1) -> T:
    """Poll ``fn`` until it returns a truthy value (exceptions count as not yet), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = fn()
            if value:
                return value
            last = value
        except (ApiException, docker.errors.APIError, OSError, KeyError, IndexError, TypeError) as exc:
            last = exc
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")
        time.sleep(poll)


@pytest.fixture
def admin(kube_api: ApiServerHandle) -> Iterator[kclient.ApiClient]:
    api = kconfig.new_client_from_config(config_file=kube_api.kubeconfig)
    yield api
    api.close()


@pytest.fixture
def core(admin: kclient.ApiClient) -> kclient.CoreV1Api:
    return kclient.CoreV1Api(admin)


@pytest.fixture
def apps(admin: kclient.ApiClient) -> kclient.AppsV1Api:
    return kclient.AppsV1Api(admin)


@pytest.fixture
def rbac(admin: kclient.ApiClient) -> kclient.RbacAuthorizationV1Api:
    return kclient.RbacAuthorizationV1Api(admin)


def _random_name(prefix: str) -> str:
    return prefix + "".join(random.choices(string.ascii_lowercase + string.digits, k=6))


@contextlib.contextmanager
def _namespace(core: kclient.CoreV1Api, apps: kclient.AppsV1Api, kubelet: Kubelet) -> Iterator[str]:
    """A namespace of its own; afterwards its Deployments and pods are deleted, their containers gone, and it."""
    name = _random_name("sa-")
    core.create_namespace({"metadata": {"name": name}}, _request_timeout=RT)
    try:
        yield name
    finally:
        for dep in apps.list_namespaced_deployment(name, _request_timeout=RT).items:
            apps.delete_namespaced_deployment(dep.metadata.name, name, _request_timeout=RT)

        def pods_gone() -> bool:
            pods = core.list_namespaced_pod(name, _request_timeout=RT).items
            for pod in pods:
                with contextlib.suppress(ApiException):
                    core.delete_namespaced_pod(pod.metadata.name, name, grace_period_seconds=0, _request_timeout=RT)
            return not pods and not kubelet.docker.containers.list(
                all=True, filters={"label": [f"kubelet.clipper.test/prefix={kubelet.prefix}",
                                             f"kubelet.clipper.test/namespace={name}"]})

        wait_for(pods_gone, 60, f"the pods and containers of namespace {name} to go", poll=0.3)
        with contextlib.suppress(ApiException):
            core.delete_namespace(name, _request_timeout=RT)


@pytest.fixture
def ns(core: kclient.CoreV1Api, apps: kclient.AppsV1Api, kubelet: Kubelet) -> Iterator[str]:
    with _namespace(core, apps, kubelet) as name:
        yield name


@pytest.fixture
def other_ns(core: kclient.CoreV1Api, apps: kclient.AppsV1Api, kubelet: Kubelet) -> Iterator[str]:
    with _namespace(core, apps, kubelet) as name:
        yield name


def sleeper(script: str = "", name: str = "main", **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": FRONTEND, "command": ["sh", "-c", f"{script}\nsleep 600 & wait"], **extra}


def make_pod(core: kclient.CoreV1Api, ns: str, name: str, containers: list[dict[str, Any]], **spec: Any) -> None:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"containers": containers, "terminationGracePeriodSeconds": 0, **spec}}
    core.create_namespaced_pod(ns, body, _request_timeout=RT)


def make_deployment(apps: kclient.AppsV1Api, ns: str, name: str, containers: list[dict[str, Any]],
                    **spec: Any) -> None:
    labels = {"app": name}
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": containers, "terminationGracePeriodSeconds": 0, **spec}}}}
    apps.create_namespaced_deployment(ns, body, _request_timeout=RT)


def pod_log(core: kclient.CoreV1Api, ns: str, name: str, container: str | None = None) -> str:
    return str(core.read_namespaced_pod_log(name, ns, container=container, _request_timeout=RT))


def log_when(core: kclient.CoreV1Api, ns: str, name: str, marker: str, container: str | None = None) -> str:
    return str(wait_for(lambda: marker in (text := pod_log(core, ns, name, container)) and text, 60,
                        f"{marker!r} in the log of {ns}/{name}"))


def lines(text: str, end: str | None = None) -> dict[str, str]:
    """``key=value`` words of a log (up to the first ``end``), the last one of each key."""
    if end is not None:
        text = text.split(end)[0]
    return dict(word.split("=", 1) for word in text.split() if "=" in word)


def deployment_pods(core: kclient.CoreV1Api, ns: str, app: str) -> list[Any]:
    return [p for p in core.list_namespaced_pod(ns, label_selector=f"app={app}", _request_timeout=RT).items
            if p.metadata.deletion_timestamp is None]


def condition(apps: kclient.AppsV1Api, ns: str, name: str, kind: str) -> Any:
    dep = apps.read_namespaced_deployment(name, ns, _request_timeout=RT)
    return next((c for c in dep.status.conditions or [] if c.type == kind), None)


def token_source(kubelet: Kubelet, ns: str, pod: str) -> str | None:
    """The host directory bind-mounted at the token path of a pod's (first) container, if any."""
    ctr = kubelet.container_of(ns, pod)
    assert ctr is not None, f"no container for {ns}/{pod}"
    return next((m["Source"] for m in ctr.attrs["Mounts"] if m["Destination"] == TOKEN_DIR), None)


def grant_pod_reader(rbac: kclient.RbacAuthorizationV1Api, ns: str, account: str) -> None:
    rbac.create_namespaced_role(ns, {"metadata": {"name": "pod-reader"}, "rules": [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]}, _request_timeout=RT)
    rbac.create_namespaced_role_binding(ns, {"metadata": {"name": "pod-reader"},
                                             "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "pod-reader"},
                                             "subjects": [{"kind": "ServiceAccount", "name": account}]},
                                        _request_timeout=RT)


# ---------------------------------------------------------------------------------------------- tests


def test_the_endpoint_is_on_the_pod_network_gateway(kubelet: Kubelet) -> None:
    endpoint = kubelet.api_endpoint
    assert endpoint is not None and kubelet.gateway is not None
    assert endpoint.host == kubelet.gateway and endpoint.url == f"https://{kubelet.gateway}:{endpoint.port}"
    context = ssl.create_default_context(cadata=endpoint.ca_pem)
    with socket.create_connection((endpoint.host, endpoint.port), timeout=RT) as sock, \
            context.wrap_socket(sock, server_hostname="kubernetes.default.svc") as tls:
        assert tls.version() is not None
    with pytest.raises(OSError):  # that address only
        socket.create_connection(("127.0.0.1", endpoint.port), timeout=RT).close()


def test_a_pod_reaches_the_api_over_tls_as_its_service_account(kube_api: ApiServerHandle, core: kclient.CoreV1Api,
                                                               apps: kclient.AppsV1Api,
                                                               rbac: kclient.RbacAuthorizationV1Api, kubelet: Kubelet,
                                                               ns: str, other_ns: str) -> None:
    core.create_namespaced_service_account(ns, {"metadata": {"name": "watcher"}}, _request_timeout=RT)
    grant_pod_reader(rbac, ns, "watcher")
    env = [{"name": "PROBE", "value": PROBE}, {"name": "OTHER_NAMESPACE", "value": other_ns}]
    make_deployment(apps, ns, "probe", [sleeper('python3 -c "$PROBE"; echo EXIT=$?; env | sort', env=env)],
                    serviceAccountName="watcher")
    (pod,) = wait_for(lambda: deployment_pods(core, ns, "probe"), 30, "the probe pod")
    name = pod.metadata.name
    assert (pod.spec.service_account_name, pod.spec.automount_service_account_token) == ("watcher", None)
    out = log_when(core, ns, name, "EXIT=")
    found = lines(out, "DONE")
    assert "DONE\nEXIT=0\n" in out, out
    assert (found["pods"], found["names"]) == ("200", name), out  # authorised by its Role...
    assert found["secrets"] == "403" and found["other"] == "403", out  # ...and denied beyond it
    user = f"system:serviceaccount:{ns}:watcher"
    assert f'secrets is forbidden: User "{user}" cannot list resource "secrets" in API group "" in the namespace ' \
           f'"{ns}"' in out
    assert found["by-name"] == "200", out  # /etc/hosts: kubernetes.default.svc, and the certificate is for it
    assert found["official"] in ("absent", name), out  # the image's kubernetes client, where it has one
    assert (found["read-only"], found["uid"], found["token-mode"]) == ("yes", "1000", "644"), out
    endpoint = kubelet.api_endpoint
    assert f"KUBERNETES_SERVICE_HOST={kubelet.gateway}" in out and f"KUBERNETES_SERVICE_PORT={endpoint.port}" in out
    assert f"KUBERNETES_SERVICE_PORT_HTTPS={endpoint.port}" in out
    assert f"KUBERNETES_PORT=tcp://{kubelet.gateway}:{endpoint.port}" in out
    assert f"KUBERNETES_PORT_{endpoint.port}_TCP_ADDR={kubelet.gateway}" in out
    pod_lists = [e for e in kube_api.requests_by(user) if e.resource == "pods"]
    expected = [("list", ns, 200), ("list", other_ns, 403), ("list", ns, 200)]
    if found["official"] != "absent":
        expected.append(("list", ns, 200))
    assert [(e.verb, e.namespace, e.code) for e in pod_lists] == expected
    denied = kube_api.denied_requests(user)
    assert [(e.verb, e.resource, e.namespace) for e in denied] == [("list", "secrets", ns), ("list", "pods", other_ns)]


def test_the_mounted_token_serves_the_official_in_cluster_configuration(kube_api: ApiServerHandle,
                                                                        core: kclient.CoreV1Api,
                                                                        rbac: kclient.RbacAuthorizationV1Api,
                                                                        kubelet: Kubelet, ns: str) -> None:
    grant_pod_reader(rbac, ns, "default")
    make_pod(core, ns, "plain", [sleeper('echo "ns=$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace)"; '
                                         'env; echo env-done')])
    out = log_when(core, ns, "plain", "env-done")  # (all of env's lines: the log read at "ns=" may end before them)
    assert f"ns={ns}" in out
    source = token_source(kubelet, ns, "plain")
    assert source is not None
    assert sorted(os.listdir(source)) == ["ca.crt", "namespace", "token"]
    assert Path(source, "ca.crt").read_text() == kubelet.api_endpoint.ca_pem
    environ = dict(line.split("=", 1) for line in out.splitlines() if line.startswith("KUBERNETES_SERVICE_"))
    configuration = kclient.Configuration()
    kconfig.incluster_config.InClusterConfigLoader(token_filename=os.path.join(source, "token"),
                                                   cert_filename=os.path.join(source, "ca.crt"),
                                                   environ=environ).load_and_set(configuration)
    with kclient.ApiClient(configuration) as client:
        assert [p.metadata.name for p in kclient.CoreV1Api(client).list_namespaced_pod(ns, _request_timeout=RT)
                .items] == ["plain"]
    assert kube_api.requests_by(f"system:serviceaccount:{ns}:default")[-1].code == 200
    core.delete_namespaced_pod("plain", ns, grace_period_seconds=0, _request_timeout=RT)
    wait_for(lambda: not os.path.exists(source), 30, "the token directory to be removed with the pod")


def test_automount_false_on_the_pod_or_on_its_service_account(core: kclient.CoreV1Api, kubelet: Kubelet,
                                                              ns: str) -> None:
    core.create_namespaced_service_account(ns, {"metadata": {"name": "quiet"}, "automountServiceAccountToken": False},
                                           _request_timeout=RT)
    script = ('test -e /var/run/secrets/kubernetes.io/serviceaccount/token && echo token=yes || echo token=no; '
              'echo "host=$KUBERNETES_SERVICE_HOST own=$KUBERNETES_SERVICE_PORT_HTTPS api=$API"')
    env = [{"name": "API", "value": "$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)"},
           {"name": "KUBERNETES_SERVICE_PORT_HTTPS", "value": "mine"}]
    cases: dict[str, dict[str, Any]] = {
        "pod-false": {"automountServiceAccountToken": False},
        "sa-false": {"serviceAccountName": "quiet"},
        "pod-true-sa-false": {"serviceAccountName": "quiet", "automountServiceAccountToken": True},
        "default": {}}
    for name, spec in cases.items():
        make_pod(core, ns, name, [sleeper(script, env=env)], **spec)
    endpoint = kubelet.api_endpoint
    found = {name: lines(log_when(core, ns, name, "host=")) for name in cases}
    assert {name: f["token"] for name, f in found.items()} == {
        "pod-false": "no", "sa-false": "no", "pod-true-sa-false": "yes", "default": "yes"}
    for name, f in found.items():  # the kubernetes Service's variables always; a container's own wins
        assert (f["host"], f["own"], f["api"]) == (kubelet.gateway, "mine", f"{kubelet.gateway}:{endpoint.port}"), name
    assert token_source(kubelet, ns, "pod-false") is None and token_source(kubelet, ns, "default") is not None


def test_a_container_that_mounts_the_token_path_itself_keeps_its_own(core: kclient.CoreV1Api, ns: str) -> None:
    core.create_namespaced_config_map(ns, {"metadata": {"name": "fake"}, "data": {"token": "mine"}},
                                      _request_timeout=RT)
    make_pod(core, ns, "own", [sleeper(f'echo "token=$(cat {TOKEN_DIR}/token)"',
                                       volumeMounts=[{"name": "t", "mountPath": TOKEN_DIR}])],
             volumes=[{"name": "t", "configMap": {"name": "fake"}}])
    assert lines(log_when(core, ns, "own", "token="))["token"] == "mine"


def test_a_missing_service_account_is_a_replica_failure_until_it_exists(core: kclient.CoreV1Api,
                                                                        apps: kclient.AppsV1Api, ns: str) -> None:
    make_deployment(apps, ns, "lonely", [sleeper("echo started")], serviceAccountName="ghost")
    failure = wait_for(lambda: condition(apps, ns, "lonely", "ReplicaFailure"), 30, "the ReplicaFailure condition")
    assert (failure.status, failure.reason) == ("True", "FailedCreate")
    assert re.fullmatch(rf'pods "lonely-[a-z0-9]{{10}}-[a-z0-9]{{5}}" is forbidden: error looking up service account '
                        rf'{ns}/ghost: serviceaccount "ghost" not found', failure.message), failure.message
    assert deployment_pods(core, ns, "lonely") == []
    core.create_namespaced_service_account(ns, {"metadata": {"name": "ghost"}}, _request_timeout=RT)
    (pod,) = wait_for(lambda: deployment_pods(core, ns, "lonely"), 30, "the pod, once its ServiceAccount exists")
    log_when(core, ns, pod.metadata.name, "started")
    wait_for(lambda: condition(apps, ns, "lonely", "ReplicaFailure") is None, 30, "ReplicaFailure to be removed")


def test_a_service_account_deleted_before_the_pod_starts_keeps_it_creating(core: kclient.CoreV1Api,
                                                                           kubelet: Kubelet, ns: str) -> None:
    core.create_namespaced_service_account(ns, {"metadata": {"name": "brief"}}, _request_timeout=RT)
    # admitted (the account exists), then the account goes before the kubelet makes the container
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "late", "namespace": ns},
            "spec": {"containers": [sleeper()], "serviceAccountName": "brief", "schedulerName": "none"}}
    core.create_namespaced_pod(ns, body, _request_timeout=RT)
    core.delete_namespaced_service_account("brief", ns, _request_timeout=RT)
    core.patch_namespaced_pod("late", ns, {"spec": {"nodeName": kubelet.node_name}}, _request_timeout=RT)
    waiting = wait_for(lambda: (s := core.read_namespaced_pod("late", ns, _request_timeout=RT).status
                                .container_statuses) and s[0].state.waiting and "token" in
                       (s[0].state.waiting.message or "") and s[0].state.waiting, 30, "ContainerCreating")
    assert waiting.reason == "ContainerCreating"
    assert waiting.message == 'failed to fetch token: serviceaccounts "brief" not found'
    assert kubelet.container_of(ns, "late") is None


def test_the_endpoint_stops_with_its_kubelet(docker_client: docker.DockerClient) -> None:
    with running_api_server() as server:
        node = Kubelet(server.kubeconfig, docker_client, name_prefix=_random_name("kq"), node_name="quiet-node",
                       api_handle=server)
        with node:
            endpoint = node.api_endpoint
            assert endpoint is not None and endpoint.host == node.gateway
            socket.create_connection((endpoint.host, endpoint.port), timeout=RT).close()
        assert node.api_endpoint is None
        with pytest.raises(OSError):
            socket.create_connection((endpoint.host, endpoint.port), timeout=RT).close()
        assert list(node.docker_objects()) == []
        without = Kubelet(server.kubeconfig, docker_client, name_prefix=_random_name("kq"), node_name="other-node")
        assert without.api_endpoint is None and without._service_env() == {}  # no api_handle: no endpoint
        without.stop()


def test_token_claims_name_the_pod_service_account(kube_api: ApiServerHandle, core: kclient.CoreV1Api,
                                                   kubelet: Kubelet, ns: str) -> None:
    make_pod(core, ns, "who", [sleeper("echo ready")])
    log_when(core, ns, "who", "ready")
    source = token_source(kubelet, ns, "who")
    assert source is not None
    payload = Path(source, "token").read_text().split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == f"system:serviceaccount:{ns}:default"
    assert claims["kubernetes.io"]["serviceaccount"]["uid"] == core.read_namespaced_service_account(
        "default", ns, _request_timeout=RT).metadata.uid
