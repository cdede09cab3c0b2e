"""Tests of the emulated kube-apiserver (``kube_api/``), driven through the official ``kubernetes`` client.

The client is configured from the kubeconfig the runner writes, exactly as the plugin configures it in production.
Everything listens on 127.0.0.1 only; every wait is bounded; nothing sleeps to order events.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp.web
import kubernetes
import pytest
from kube_api import (
    ApiServerHandle,
    label_selector_matches,
    merge_patch,
    parse_field_selector,
    parse_label_selector,
    running_api_server,
    strategic_merge_patch,
    write_kubeconfig,
)
from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api
from kubernetes.client.exceptions import ApiException

NS = "default"
WAIT = 10.0  # seconds: the bound of every wait in this module
MERGE = "application/merge-patch+json"
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


# --------------------------------------------------------------------------------------------------------------------
# Fixtures and builders
# --------------------------------------------------------------------------------------------------------------------


@pytest.fixture
def api() -> Iterator[ApiServerHandle]:
    with running_api_server() as handle:
        yield handle
        assert handle.errors() == [], "the emulator raised unexpected exceptions"


@pytest.fixture
def client(api: ApiServerHandle) -> Iterator[ApiClient]:
    api_client = kubernetes.config.new_client_from_config(config_file=api.kubeconfig)
    yield api_client
    api_client.close()


@pytest.fixture
def core(client: ApiClient) -> CoreV1Api:
    return CoreV1Api(client)


@pytest.fixture
def apps(client: ApiClient) -> AppsV1Api:
    return AppsV1Api(client)


def deployment(name: str = "web", labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    labels = labels or {"app": name}
    return {
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "selector": {"matchLabels": dict(labels)},
            "template": {"metadata": {"labels": dict(labels)},
                         "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]}},
            **spec,
        },
    }


def pod(name: str, labels: dict[str, str] | None = None, node: str | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": name, "labels": labels or {}},
                            "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}], **spec}}
    if node:
        body["spec"]["nodeName"] = node
    return body


def service(name: str = "svc", ports: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": ports or [{"port": 80}], **spec}}


def configmap(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}, "data": {"k": "v"}}


def api_error(call: Callable[[], Any], status: int) -> dict[str, Any]:
    """Run a client call that must fail with ``status``; return the decoded Status body."""
    with pytest.raises(ApiException) as caught:
        call()
    assert caught.value.status == status, caught.value.body
    body: dict[str, Any] = json.loads(caught.value.body)
    assert body["kind"] == "Status" and body["code"] == status
    return body


def raw(api: ApiServerHandle, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
        token: str | None = "default") -> tuple[int, dict[str, str], bytes]:
    """A plain HTTP request to the emulator (for what the official client has no method for)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(api.url + path, data=data, method=method, headers=headers or {})
    if token is not None:
        request.add_header("Authorization", f"Bearer {api.token if token == 'default' else token}")
    if data is not None and not request.has_header("Content-type"):
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


class WatchCollector:
    """Runs a kubernetes.watch.Watch in a thread and hands its events over through a queue (bounded waits)."""

    def __init__(self, func: Callable[..., Any], **kwargs: Any) -> None:
        self.watch = kubernetes.watch.Watch()
        self.events: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(func, kwargs), daemon=True)

    def _run(self, func: Callable[..., Any], kwargs: dict[str, Any]) -> None:
        try:
            for event in self.watch.stream(func, timeout_seconds=int(WAIT), **kwargs):
                self.events.put((event["type"], event["raw_object"]))
        except Exception:
            if not self.stopping.is_set():  # Watch.stop() shuts the socket down: the read then fails, expectedly
                raise
        finally:
            self.events.put(None)

    def __enter__(self) -> WatchCollector:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stopping.set()
        self.watch.stop()
        self._thread.join(WAIT + 5)

    def next(self) -> tuple[str, str]:
        item = self.events.get(timeout=WAIT)
        assert item is not None, "the watch ended early"
        return item[0], item[1]["metadata"]["name"]

    def take(self, count: int) -> list[tuple[str, str]]:
        return [self.next() for _ in range(count)]


def names(items: list[Any]) -> list[str]:
    return [item.metadata.name for item in items]


# --------------------------------------------------------------------------------------------------------------------
# Version, discovery, runner
# --------------------------------------------------------------------------------------------------------------------


def test_version(client: ApiClient) -> None:
    info = kubernetes.client.VersionApi(client).get_code()
    assert (info.major, info.minor, info.git_version, info.platform) == ("1", "37", "v1.37.0", "linux/amd64")


def test_core_discovery_lists_resources_with_kind_scope_verbs_and_subresources(core: CoreV1Api) -> None:
    resources = {r.name: r for r in core.get_api_resources().resources}
    assert {"namespaces", "pods", "pods/log", "pods/status", "services", "services/proxy", "secrets", "configmaps",
            "persistentvolumeclaims", "persistentvolumeclaims/status", "nodes", "nodes/status",
            "events"} <= set(resources)
    assert resources["pods"].kind == "Pod" and resources["pods"].namespaced
    assert not resources["namespaces"].namespaced and not resources["nodes"].namespaced
    assert "deletecollection" in resources["pods"].verbs and resources["pods/log"].verbs == ["get"]


def test_apps_discovery_and_groups(client: ApiClient) -> None:
    resources = {r.name: r for r in AppsV1Api(client).get_api_resources().resources}
    assert resources["deployments"].kind == "Deployment"
    assert (resources["deployments/scale"].kind, resources["deployments/scale"].group) == ("Scale", "autoscaling")
    groups = kubernetes.client.ApisApi(client).get_api_versions().groups
    assert [g.name for g in groups] == ["apps", "rbac.authorization.k8s.io"]


@pytest.mark.parametrize("path", ["/apis/extensions/v1beta1/namespaces/default/deployments",
                                  "/apis/rbac.authorization.k8s.io/v1beta1/clusterroles",
                                  "/apis/extensions/v1beta1", "/apis/batch", "/api/v1/widgets"])
def test_unknown_group_version_or_resource_is_404(api: ApiServerHandle, path: str) -> None:
    status, _, body = raw(api, "GET", path)
    assert status == 404 and json.loads(body)["reason"] == "NotFound"


def test_runner_writes_a_kubeconfig_and_stops_cleanly() -> None:
    with running_api_server() as handle:
        config = Path(handle.kubeconfig).read_text()
        assert f"server: {handle.url}" in config and "token: test-token" in config
        assert "current-context: emulated" in config
        assert handle.url.startswith("http://127.0.0.1:")
        port_url = handle.url
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(port_url + "/version", timeout=2)
    assert not Path(handle.kubeconfig).exists()


def test_call_and_objects_run_on_the_server_loop(api: ApiServerHandle, core: CoreV1Api) -> None:
    core.create_namespaced_config_map(NS, configmap("seen"))
    assert [o["metadata"]["name"] for o in api.objects("configmaps", NS)] == ["seen"]
    assert api.objects("configmaps", "kube-system") == []
    assert api.call(lambda: threading.current_thread().name) == "kube-api-emulator"
    assert api.get_object("configmaps", NS, "seen")["data"] == {"k": "v"}  # type: ignore[index]


def test_requests_are_recorded_by_kmock(api: ApiServerHandle, core: CoreV1Api) -> None:
    core.list_namespaced_pod(NS)
    paths = api.call(lambda: [str(r.url.path) for r in api.server])
    assert "/api/v1/namespaces/default/pods" in paths


def test_objects_are_snapshots(api: ApiServerHandle, core: CoreV1Api) -> None:
    core.create_namespaced_config_map(NS, configmap("a"))
    api.objects("configmaps")[0]["data"]["k"] = "changed"
    assert core.read_namespaced_config_map("a", NS).data == {"k": "v"}


def test_health_endpoints_and_dynamic_client(api: ApiServerHandle, client: ApiClient) -> None:
    assert raw(api, "GET", "/healthz")[0] == 200
    dynamic = kubernetes.dynamic.DynamicClient(client)
    deployments = dynamic.resources.get(api_version="apps/v1", kind="Deployment")
    deployments.create(body=deployment(), namespace=NS)
    assert [d.metadata.name for d in deployments.get(namespace=NS).items] == ["web"]


def test_post_to_a_named_url_is_405(api: ApiServerHandle, core: CoreV1Api) -> None:
    core.create_namespaced_config_map(NS, configmap("a"))
    assert raw(api, "POST", "/api/v1/namespaces/default/configmaps/a", configmap("a"))[0] == 405


# --------------------------------------------------------------------------------------------------------------------
# Authentication and RBAC
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_a_missing_or_wrong_token_is_401(api: ApiServerHandle, tmp_path: Path, token: str | None) -> None:
    config = write_kubeconfig(tmp_path / "kubeconfig", api.url, token)
    with kubernetes.config.new_client_from_config(config_file=str(config)) as other:
        body = api_error(lambda: CoreV1Api(other).list_namespace(), 401)
    assert body["reason"] == "Unauthorized"


def test_a_server_without_a_token_needs_no_authentication() -> None:
    with running_api_server(token=None) as handle:
        status, _, _ = raw(handle, "GET", "/api/v1/namespaces", token=None)
        assert status == 200


def test_deny_answers_403_like_rbac(api: ApiServerHandle, apps: AppsV1Api) -> None:
    api.deny("create", "deployments", NS, group="apps")
    body = api_error(lambda: apps.create_namespaced_deployment(NS, deployment()), 403)
    assert body["reason"] == "Forbidden"
    assert body["message"] == ('deployments.apps is forbidden: User "system:serviceaccount:default:clipper" cannot '
                               'create resource "deployments" in API group "apps" in the namespace "default"')
    assert api.objects("deployments") == []
    api.allow_all()
    apps.create_namespaced_deployment(NS, deployment())


def test_deny_is_specific_to_verb_namespace_and_subresource(api: ApiServerHandle, apps: AppsV1Api,
                                                            core: CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "other"}})
    apps.create_namespaced_deployment(NS, deployment())
    api.deny("patch", "deployments/scale", NS, group="apps")
    api.deny("list", "pods")
    apps.create_namespaced_deployment("other", deployment())  # not denied: another verb
    apps.read_namespaced_deployment_scale("web", NS)  # not denied: another verb
    body = api_error(lambda: apps.patch_namespaced_deployment_scale("web", NS, {"spec": {"replicas": 2}}), 403)
    assert 'deployments.apps "web" is forbidden' in body["message"]
    assert 'cannot patch resource "deployments/scale"' in body["message"]
    body = api_error(lambda: core.list_pod_for_all_namespaces(), 403)
    assert body["message"].endswith('cannot list resource "pods" in API group "" at the cluster scope')
    api_error(lambda: core.list_namespaced_pod("other"), 403)  # namespace=None denies everywhere


def test_fail_next_injects_a_one_shot_error(api: ApiServerHandle, core: CoreV1Api) -> None:
    api.fail_next("create", "configmaps", status=500, message="etcd is down")
    body = api_error(lambda: core.create_namespaced_config_map(NS, configmap("a")), 500)
    assert body["message"] == "etcd is down"
    core.create_namespaced_config_map(NS, configmap("a"))


# --------------------------------------------------------------------------------------------------------------------
# Namespaces
# --------------------------------------------------------------------------------------------------------------------


def test_initial_namespaces(core: CoreV1Api) -> None:
    namespaces = core.list_namespace().items
    assert names(namespaces) == ["default", "kube-public", "kube-system"]
    assert all(n.status.phase == "Active" for n in namespaces)
    assert namespaces[0].metadata.labels == {"kubernetes.io/metadata.name": "default"}


def test_namespace_create_read_delete_removes_its_objects(api: ApiServerHandle, core: CoreV1Api) -> None:
    created = core.create_namespace({"metadata": {"name": "team-a"}})
    assert created.kind == "Namespace" and created.metadata.uid
    assert core.read_namespace("team-a").metadata.name == "team-a"
    core.create_namespaced_config_map("team-a", configmap("c1"))
    core.create_namespaced_config_map(NS, configmap("c1"))
    core.delete_namespace("team-a")
    api_error(lambda: core.read_namespace("team-a"), 404)
    assert [o["metadata"]["namespace"] for o in api.objects("configmaps")] == [NS]


def test_the_default_namespace_cannot_be_deleted(core: CoreV1Api) -> None:
    assert api_error(lambda: core.delete_namespace("default"), 403)["reason"] == "Forbidden"


def test_a_namespaced_request_into_a_missing_namespace_is_404(apps: AppsV1Api, core: CoreV1Api) -> None:
    body = api_error(lambda: apps.create_namespaced_deployment("nope", deployment()), 404)
    assert body["reason"] == "NotFound"
    assert body["message"] == 'namespaces "nope" not found'
    assert body["details"] == {"name": "nope", "kind": "namespaces"}
    api_error(lambda: core.list_namespaced_pod("nope"), 404)
    api_error(lambda: core.read_namespaced_secret("s", "nope"), 404)


def test_namespace_names_are_dns_labels(core: CoreV1Api) -> None:
    body = api_error(lambda: core.create_namespace({"metadata": {"name": "x" * 64}}), 422)
    assert "metadata.name" in body["message"]


# --------------------------------------------------------------------------------------------------------------------
# Create: server-side fields and defaults
# --------------------------------------------------------------------------------------------------------------------


def test_deployment_create_fills_server_fields_and_defaults(api: ApiServerHandle, apps: AppsV1Api) -> None:
    created = apps.create_namespaced_deployment(NS, deployment())
    meta = created.metadata
    assert uuid.UUID(meta.uid).version == 4
    assert meta.resource_version.isdigit() and meta.generation == 1 and meta.namespace == NS
    assert (created.api_version, created.kind) == ("apps/v1", "Deployment")
    assert created.spec.replicas == 1
    assert created.spec.strategy.type == "RollingUpdate"
    assert (created.spec.strategy.rolling_update.max_surge, created.spec.strategy.rolling_update.max_unavailable) == (
        "25%", "25%")
    stored = api.objects("deployments", NS)[0]
    assert RFC3339.fullmatch(stored["metadata"]["creationTimestamp"])
    assert stored["status"] == {}


def test_resource_version_is_one_global_counter(core: CoreV1Api) -> None:
    first = core.create_namespaced_config_map(NS, configmap("a")).metadata.resource_version
    second = core.create_namespaced_secret(NS, {"metadata": {"name": "s"}}).metadata.resource_version
    assert int(second) == int(first) + 1
    assert core.list_namespaced_config_map(NS).metadata.resource_version == second


def test_generate_name(core: CoreV1Api) -> None:
    created = core.create_namespaced_config_map(NS, {"metadata": {"generateName": "job-"}})
    assert re.fullmatch(r"job-[a-z0-9]{5}", created.metadata.name)


def test_create_an_existing_name_is_409_already_exists(apps: AppsV1Api) -> None:
    apps.create_namespaced_deployment(NS, deployment())
    body = api_error(lambda: apps.create_namespaced_deployment(NS, deployment()), 409)
    assert (body["reason"], body["message"]) == ("AlreadyExists", 'deployments.apps "web" already exists')


def test_pod_and_pvc_start_pending(api: ApiServerHandle, core: CoreV1Api) -> None:
    created = core.create_namespaced_pod(NS, pod("p") | {"status": {"phase": "Running"}})
    assert created.status.phase == "Pending"
    assert created.spec.termination_grace_period_seconds == 30 and created.spec.restart_policy == "Always"
    pvc = core.create_namespaced_persistent_volume_claim(NS, {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    assert pvc.status.phase == "Pending"
    assert [o["kind"] for o in api.objects("persistentvolumeclaims")] == ["PersistentVolumeClaim"]


def test_secret_string_data_becomes_base64_data(core: CoreV1Api) -> None:
    created = core.create_namespaced_secret(NS, {"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}})
    assert created.data == {"password": "aHVudGVyMg=="} and created.type == "Opaque"
    body = api_error(lambda: core.create_namespaced_secret(NS, {"metadata": {"name": "t"}, "data": {"x": "!!"}}), 422)
    assert "data[x]" in body["message"]


def test_kind_or_api_version_not_matching_the_url_is_400(core: CoreV1Api, apps: AppsV1Api) -> None:
    body = api_error(lambda: core.create_namespaced_config_map(NS, {"kind": "Secret", "metadata": {"name": "x"}}), 400)
    assert body["reason"] == "BadRequest"
    api_error(lambda: apps.create_namespaced_deployment(NS, deployment() | {"apiVersion": "extensions/v1beta1"}), 400)


# --------------------------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------------------------


def _with_container_field(body: dict[str, Any]) -> dict[str, Any]:
    body["spec"]["template"]["spec"]["containers"][0]["bogus"] = 1
    return body


def _with_template_labels(body: dict[str, Any]) -> dict[str, Any]:
    body["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    return body


@pytest.mark.parametrize(("body", "expected"), [
    (_with_container_field(deployment()),
     'Deployment.apps "web" is invalid: spec.template.spec.containers[0].bogus: Invalid value: unknown field "bogus"'),
    (deployment("Bad_Name"), 'Deployment.apps "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"'),
    (deployment("x" * 254), "must be no more than 253 characters"),
    (deployment(labels={"bad key": "v"}), 'metadata.labels: Invalid value: "bad key"'),
    (deployment(labels={"app": "-bad-value-"}), 'metadata.labels: Invalid value: "-bad-value-"'),
    (deployment(labels={"a" * 64: "v"}), "name part must be no more than 63 characters"),
    (deployment(labels={"example.com/app": "v" * 64}), "must be no more than 63 characters"),
    (deployment() | {"metadata": {"name": "web", "annotations": {"bad/key/x": "v"}}}, "metadata.annotations"),
    (_with_template_labels(deployment()), "`selector` does not match template `labels`"),
    ({"metadata": {}, "spec": deployment()["spec"]}, "metadata.name: Required value"),
    (deployment(replicas="three"), "spec.replicas: Invalid value"),
])
def test_invalid_deployments_are_422(api: ApiServerHandle, body: dict[str, Any], expected: str) -> None:
    # Raw HTTP: the official client validates dict bodies itself (pydantic, extra="forbid", strict ints), so an
    # unknown field or a string for replicas would never reach the server through it.
    code, _, answer = raw(api, "POST", "/apis/apps/v1/namespaces/default/deployments", body)
    status = json.loads(answer)
    assert code == 422 and status["code"] == 422
    assert status["reason"] == "Invalid"
    assert expected in status["message"], status["message"]
    assert status["details"]["kind"] == "Deployment" and status["details"]["causes"]


@pytest.mark.parametrize(("name", "valid"), [("svc", True), ("my-svc-1", True), ("1svc", False), ("a.b", False),
                                             ("x" * 64, False)])
def test_service_names_are_dns1035_labels(core: CoreV1Api, name: str, valid: bool) -> None:
    if valid:
        core.create_namespaced_service(NS, service(name))
    else:
        assert "metadata.name" in api_error(lambda: core.create_namespaced_service(NS, service(name)), 422)["message"]


def test_invalid_objects_through_the_official_client_are_422(apps: AppsV1Api, core: CoreV1Api) -> None:
    body = api_error(lambda: apps.create_namespaced_deployment(NS, _with_template_labels(deployment())), 422)
    assert body["details"]["causes"][0]["field"] == "spec.template.metadata.labels"
    api_error(lambda: core.create_namespaced_config_map(NS, configmap("x", {"bad key": "v"})), 422)


def test_an_invalid_patch_result_is_422_and_nothing_changes(apps: AppsV1Api) -> None:
    rv = apps.create_namespaced_deployment(NS, deployment()).metadata.resource_version
    api_error(lambda: apps.patch_namespaced_deployment("web", NS, {"metadata": {"labels": {"bad key": "x"}}}), 422)
    assert apps.read_namespaced_deployment("web", NS).metadata.resource_version == rv


def test_the_deployment_selector_is_immutable(apps: AppsV1Api) -> None:
    apps.create_namespaced_deployment(NS, deployment())
    changed = deployment(labels={"app": "web", "tier": "x"})
    body = api_error(lambda: apps.replace_namespaced_deployment("web", NS, changed), 422)
    assert "spec.selector" in body["message"] and "field is immutable" in body["message"]


# --------------------------------------------------------------------------------------------------------------------
# Replace and patch
# --------------------------------------------------------------------------------------------------------------------


def test_replace_keeps_identity_and_bumps_generation_on_spec_change(apps: AppsV1Api) -> None:
    created = apps.create_namespaced_deployment(NS, deployment())
    replaced = apps.replace_namespaced_deployment("web", NS, deployment(replicas=4))
    assert replaced.metadata.uid == created.metadata.uid
    assert replaced.metadata.creation_timestamp == created.metadata.creation_timestamp
    assert replaced.metadata.generation == 2 and replaced.spec.replicas == 4
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    labelled = deployment(replicas=4)
    labelled["metadata"]["labels"]["extra"] = "yes"
    assert apps.replace_namespaced_deployment("web", NS, labelled).metadata.generation == 2  # metadata only


def test_replace_with_a_stale_resource_version_is_409_conflict(apps: AppsV1Api) -> None:
    stale = apps.create_namespaced_deployment(NS, deployment()).metadata.resource_version
    apps.patch_namespaced_deployment("web", NS, {"spec": {"replicas": 2}})
    body = deployment()
    body["metadata"]["resourceVersion"] = stale
    status = api_error(lambda: apps.replace_namespaced_deployment("web", NS, body), 409)
    assert status["reason"] == "Conflict" and "the object has been modified" in status["message"]


def test_replace_a_missing_object_is_404(apps: AppsV1Api) -> None:
    body = api_error(lambda: apps.replace_namespaced_deployment("ghost", NS, deployment("ghost")), 404)
    assert body["message"] == 'deployments.apps "ghost" not found'
    assert body["details"] == {"name": "ghost", "group": "apps", "kind": "deployments"}


def test_replace_ignores_status_of_the_main_resource(apps: AppsV1Api) -> None:
    apps.create_namespaced_deployment(NS, deployment())
    replaced = apps.replace_namespaced_deployment("web", NS, deployment() | {"status": {"replicas": 9}})
    assert replaced.status.replicas is None
    patched = apps.patch_namespaced_deployment("web", NS, {"status": {"replicas": 9}})
    assert patched.status.replicas is None


def test_a_no_op_update_keeps_the_resource_version(core: CoreV1Api) -> None:
    rv = core.create_namespaced_config_map(NS, configmap("a")).metadata.resource_version
    assert core.patch_namespaced_config_map("a", NS, {"data": {"k": "v"}}).metadata.resource_version == rv


def test_strategic_merge_patch_merges_containers_by_name(apps: AppsV1Api) -> None:
    apps.create_namespaced_deployment(NS, deployment())
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "main", "image": "nginx:1.28"}, {"name": "sidecar", "image": "envoy:1"}]}}}}
    patched = apps.patch_namespaced_deployment("web", NS, patch)  # dict body: the client sends strategic merge
    containers = patched.spec.template.spec.containers
    assert [(c.name, c.image) for c in containers] == [("main", "nginx:1.28"), ("sidecar", "envoy:1")]
    assert containers[0].image_pull_policy == "IfNotPresent"  # kept from the stored container
    assert patched.metadata.generation == 2


def test_merge_patch_replaces_lists_and_null_deletes(apps: AppsV1Api) -> None:
    apps.create_namespaced_deployment(NS, deployment(labels={"app": "web", "team": "a"}))
    patch = {"metadata": {"labels": {"team": None}},
             "spec": {"template": {"spec": {"containers": [{"name": "other", "image": "x:1"}]}}}}
    patched = apps.patch_namespaced_deployment("web", NS, patch, _content_type=MERGE)
    assert patched.metadata.labels == {"app": "web"}
    assert [c.name for c in patched.spec.template.spec.containers] == ["other"]


def test_json_patch(core: CoreV1Api) -> None:
    core.create_namespaced_config_map(NS, configmap("a"))
    patched = core.patch_namespaced_config_map("a", NS, [{"op": "add", "path": "/data/new", "value": "1"},
                                                         {"op": "remove", "path": "/data/k"}])
    assert patched.data == {"new": "1"}
    api_error(lambda: core.patch_namespaced_config_map("a", NS, [{"op": "test", "path": "/data/new", "value": "2"}]),
              422)


def test_an_unsupported_patch_type_is_415(api: ApiServerHandle, core: CoreV1Api) -> None:
    core.create_namespaced_config_map(NS, configmap("a"))
    status, _, _ = raw(api, "PATCH", "/api/v1/namespaces/default/configmaps/a", {"data": {}},
                       headers={"Content-Type": "application/apply-patch+yaml"})
    assert status == 415


def test_merge_patch_function() -> None:
    assert merge_patch({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"b": None, "d": 3}, "l": [2]}) == {
        "a": {"c": 2, "d": 3}, "l": [2]}


def test_strategic_merge_patch_function() -> None:
    target = {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}], "args": ["x"],
              "conditions": [{"type": "Ready", "status": "False"}]}
    patch = {"env": [{"name": "B", "value": "3"}, {"name": "A", "$patch": "delete"}, {"name": "C", "value": "4"}],
             "args": ["y"], "conditions": [{"type": "Ready", "status": "True"}], "$setElementOrder/env": []}
    assert strategic_merge_patch(target, patch) == {
        "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}], "args": ["y"],
        "conditions": [{"type": "Ready", "status": "True"}]}
    assert strategic_merge_patch({"spec": {"a": 1, "b": 2}}, {"spec": {"$patch": "replace", "c": 3}}) == {
        "spec": {"c": 3}}


# --------------------------------------------------------------------------------------------------------------------
# Subresources: scale and status
# --------------------------------------------------------------------------------------------------------------------


def test_scale_get_patch_put(apps: AppsV1Api) -> None:
    created = apps.create_namespaced_deployment(NS, deployment(labels={"app": "web", "tier": "front"}))
    scale = apps.read_namespaced_deployment_scale("web", NS)
    assert (scale.api_version, scale.kind, scale.spec.replicas) == ("autoscaling/v1", "Scale", 1)
    assert scale.status.replicas == 0 and scale.status.selector == "app=web,tier=front"
    assert scale.metadata.uid == created.metadata.uid
    patched = apps.patch_namespaced_deployment_scale("web", NS, {"spec": {"replicas": 3}})
    assert patched.spec.replicas == 3
    deployment_now = apps.read_namespaced_deployment("web", NS)
    assert deployment_now.spec.replicas == 3 and deployment_now.metadata.generation == 2
    replaced = apps.replace_namespaced_deployment_scale("web", NS, {"metadata": {"name": "web"},
                                                                  "spec": {"replicas": 5}})
    assert replaced.spec.replicas == 5 and apps.read_namespaced_deployment("web", NS).metadata.generation == 3
    stale = {"metadata": {"name": "web", "resourceVersion": scale.metadata.resource_version}, "spec": {"replicas": 1}}
    api_error(lambda: apps.replace_namespaced_deployment_scale("web", NS, stale), 409)
    api_error(lambda: apps.patch_namespaced_deployment_scale("web", NS, {"spec": {"replicas": -1}}), 422)
    api_error(lambda: apps.read_namespaced_deployment_scale("ghost", NS), 404)


def test_deployment_status_subresource_changes_only_status(apps: AppsV1Api) -> None:
    apps.create_namespaced_deployment(NS, deployment())
    patched = apps.patch_namespaced_deployment_status("web", NS, {"status": {"replicas": 1, "readyReplicas": 1},
                                                                  "spec": {"replicas": 7}})
    assert patched.status.ready_replicas == 1 and patched.spec.replicas == 1 and patched.metadata.generation == 1
    assert apps.read_namespaced_deployment_scale("web", NS).status.replicas == 1
    read = apps.read_namespaced_deployment_status("web", NS)
    assert read.status.replicas == 1


def test_pod_status_replace_and_node_status(core: CoreV1Api) -> None:
    created = core.create_namespaced_pod(NS, pod("p", node="node-1"))
    body = core.read_namespaced_pod("p", NS).to_dict()
    body = {"metadata": {"name": "p", "resourceVersion": created.metadata.resource_version},
            "status": {"phase": "Running", "podIP": "10.0.0.5"}}
    replaced = core.replace_namespaced_pod_status("p", NS, body)
    assert (replaced.status.phase, replaced.status.pod_ip) == ("Running", "10.0.0.5")
    core.create_node({"metadata": {"name": "node-1"}})
    node = core.patch_node_status("node-1", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    assert node.status.conditions[0].type == "Ready"
    assert names(core.list_node().items) == ["node-1"]


def test_pvc_status_subresource(core: CoreV1Api) -> None:
    core.create_namespaced_persistent_volume_claim(NS, {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    bound = core.patch_namespaced_persistent_volume_claim_status("data", NS, {"status": {"phase": "Bound"}})
    assert bound.status.phase == "Bound"


# --------------------------------------------------------------------------------------------------------------------
# Services
# --------------------------------------------------------------------------------------------------------------------


def test_service_defaults_and_cluster_ip_allocation(core: CoreV1Api) -> None:
    first = core.create_namespaced_service(NS, service("a"))
    second = core.create_namespaced_service(NS, service("b"))
    assert first.spec.type == "ClusterIP"
    assert first.spec.cluster_ip.startswith("10.96.") and first.spec.cluster_ip != second.spec.cluster_ip
    assert (first.spec.ports[0].protocol, first.spec.ports[0].target_port) == ("TCP", 80)
    assert first.spec.ports[0].node_port is None
    headless = core.create_namespaced_service(NS, service("h", cluster_ip="None"))
    assert headless.spec.cluster_ip == "None"


def test_node_ports_are_allocated_and_must_be_unique(core: CoreV1Api) -> None:
    allocated = core.create_namespaced_service(NS, service("a", type="NodePort"))
    port = allocated.spec.ports[0].node_port
    assert 30000 <= port <= 32767
    clash = service("b", type="NodePort", ports=[{"port": 80, "nodePort": port}])
    body = api_error(lambda: core.create_namespaced_service(NS, clash), 422)
    assert "provided port is already allocated" in body["message"] and "spec.ports[0].nodePort" in body["message"]
    out_of_range = service("c", type="LoadBalancer", ports=[{"port": 80, "nodePort": 8080}])
    api_error(lambda: core.create_namespaced_service(NS, out_of_range), 422)
    explicit = core.create_namespaced_service(NS, service("d", type="LoadBalancer",
                                                          ports=[{"port": 80, "nodePort": 31000}]))
    assert explicit.spec.ports[0].node_port == 31000


def test_service_updates_keep_cluster_ip_and_node_ports(core: CoreV1Api) -> None:
    created = core.create_namespaced_service(NS, service("a", type="NodePort"))
    replaced = core.replace_namespaced_service("a", NS, service("a", type="NodePort"))
    assert replaced.spec.cluster_ip == created.spec.cluster_ip
    assert replaced.spec.ports[0].node_port == created.spec.ports[0].node_port
    moved = service("a", type="NodePort", cluster_ip="10.96.9.9")
    assert "may not change once set" in api_error(lambda: core.replace_namespaced_service("a", NS, moved),
                                                  422)["message"]


def test_multi_port_services_need_port_names(core: CoreV1Api) -> None:
    body = service("a", ports=[{"port": 80}, {"port": 81}])
    assert "spec.ports[1].name: Required value" in api_error(lambda: core.create_namespaced_service(NS, body),
                                                             422)["message"]


# --------------------------------------------------------------------------------------------------------------------
# Lists and selectors
# --------------------------------------------------------------------------------------------------------------------


@pytest.fixture
def labelled(core: CoreV1Api) -> None:
    for name, labels in [("a", {"env": "prod", "tier": "web"}), ("b", {"env": "dev", "tier": "web"}),
                         ("c", {"env": "prod"}), ("d", {})]:
        core.create_namespaced_config_map(NS, configmap(name, labels))


@pytest.mark.parametrize(("selector", "expected"), [
    ("", ["a", "b", "c", "d"]),
    ("env=prod", ["a", "c"]),
    ("env==prod", ["a", "c"]),
    ("env!=prod", ["b", "d"]),
    ("env in (prod, dev)", ["a", "b", "c"]),
    ("env notin (prod)", ["b", "d"]),
    ("tier", ["a", "b"]),
    ("!tier", ["c", "d"]),
    ("env=prod,tier=web", ["a"]),
    ("env in (prod),!tier", ["c"]),
    ("tier=web,env notin (dev,qa)", ["a"]),
])
def test_label_selectors_on_lists(core: CoreV1Api, labelled: None, selector: str, expected: list[str]) -> None:
    result = core.list_namespaced_config_map(NS, label_selector=selector)
    assert names(result.items) == expected


@pytest.mark.parametrize("selector", ["env=(x", "env in prod", "=x", "bad key=x", "env=a,,", "env=-x-", "env in ()"])
def test_a_malformed_label_selector_is_400(core: CoreV1Api, selector: str) -> None:
    body = api_error(lambda: core.list_namespaced_config_map(NS, label_selector=selector), 400)
    assert body["reason"] == "BadRequest"


def test_label_selector_functions() -> None:
    requirements = parse_label_selector("a in (1, 2),b!=x,!c")
    assert label_selector_matches(requirements, {"a": "1"})
    assert not label_selector_matches(requirements, {"a": "1", "c": ""})
    assert not label_selector_matches(requirements, {"a": "3"})
    with pytest.raises(ValueError, match="not supported"):
        parse_field_selector("spec.bogus=1", frozenset({"metadata.name"}))


@pytest.fixture
def scheduled(core: CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "other"}})
    for name, node, namespace in [("p1", "node-a", NS), ("p2", "node-b", NS), ("p3", None, NS),
                                  ("p4", "node-a", "other")]:
        core.create_namespaced_pod(namespace, pod(name, node=node))
    core.patch_namespaced_pod_status("p1", NS, {"status": {"phase": "Running"}})


@pytest.mark.parametrize(("selector", "expected"), [
    ("spec.nodeName=node-a", ["p1", "p4"]),
    ("spec.nodeName==node-a,metadata.namespace=default", ["p1"]),
    ("spec.nodeName!=node-a", ["p2", "p3"]),
    ("spec.nodeName=", ["p3"]),
    ("status.phase=Running", ["p1"]),
    ("status.phase!=Running", ["p2", "p3", "p4"]),
    ("metadata.name=p2", ["p2"]),
    ("metadata.namespace!=default", ["p4"]),
])
def test_field_selectors_on_cluster_wide_lists(core: CoreV1Api, scheduled: None, selector: str,
                                               expected: list[str]) -> None:
    assert names(core.list_pod_for_all_namespaces(field_selector=selector).items) == expected


def test_an_unsupported_field_selector_is_400(core: CoreV1Api) -> None:
    body = api_error(lambda: core.list_namespaced_pod(NS, field_selector="spec.bogus=1"), 400)
    assert "field label not supported: spec.bogus" in body["message"]


def test_list_shape_and_cluster_wide_lists(api: ApiServerHandle, apps: AppsV1Api, core: CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "other"}})
    apps.create_namespaced_deployment(NS, deployment("one"))
    apps.create_namespaced_deployment("other", deployment("two"))
    everything = apps.list_deployment_for_all_namespaces()
    assert [(d.metadata.namespace, d.metadata.name) for d in everything.items] == [(NS, "one"), ("other", "two")]
    assert all((d.api_version, d.kind) == ("apps/v1", "Deployment") for d in everything.items)
    assert names(apps.list_namespaced_deployment("other").items) == ["two"]
    status, _, body = raw(api, "GET", "/apis/apps/v1/deployments")
    listed = json.loads(body)
    assert status == 200 and (listed["apiVersion"], listed["kind"]) == ("apps/v1", "DeploymentList")
    assert listed["metadata"]["resourceVersion"] == str(api.call(lambda: api.server.resource_version))


def test_events_and_their_field_selectors(core: CoreV1Api) -> None:
    event = {"metadata": {"name": "e1"}, "involvedObject": {"kind": "Pod", "name": "p1", "namespace": NS},
             "reason": "Pulled", "message": "pulled", "type": "Normal"}
    core.create_namespaced_event(NS, event)
    assert names(core.list_namespaced_event(NS, field_selector="involvedObject.name=p1").items) == ["e1"]
    assert core.list_namespaced_event(NS, field_selector="involvedObject.name=p2").items == []


# --------------------------------------------------------------------------------------------------------------------
# Watches
# --------------------------------------------------------------------------------------------------------------------


def test_a_watch_starts_with_existing_objects_then_streams_changes(core: CoreV1Api) -> None:
    core.create_namespaced_config_map(NS, configmap("old", {"app": "x"}))
    with WatchCollector(core.list_namespaced_config_map, namespace=NS, label_selector="app=x") as watch:
        assert watch.next() == ("ADDED", "old")
        core.create_namespaced_config_map(NS, configmap("skip", {"app": "y"}))
        core.create_namespaced_config_map(NS, configmap("new", {"app": "x"}))
        core.patch_namespaced_config_map("new", NS, {"data": {"k": "2"}})
        core.delete_namespaced_config_map("old", NS)
        assert watch.take(3) == [("ADDED", "new"), ("MODIFIED", "new"), ("DELETED", "old")]


def test_a_watch_reports_objects_entering_and_leaving_its_selection(core: CoreV1Api) -> None:
    core.create_namespaced_config_map(NS, configmap("a", {"app": "x"}))
    core.create_namespaced_config_map(NS, configmap("b", {"app": "y"}))
    with WatchCollector(core.list_namespaced_config_map, namespace=NS, label_selector="app in (x)") as watch:
        assert watch.next() == ("ADDED", "a")
        core.patch_namespaced_config_map("a", NS, {"metadata": {"labels": {"app": "y"}}})
        core.patch_namespaced_config_map("b", NS, {"metadata": {"labels": {"app": "x"}}})
        core.delete_namespaced_config_map("a", NS)  # outside the selection: not reported
        core.create_namespaced_config_map(NS, configmap("end", {"app": "x"}))
        assert watch.take(3) == [("DELETED", "a"), ("ADDED", "b"), ("ADDED", "end")]


def test_a_watch_filters_by_field_selector_across_namespaces(core: CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "other"}})
    with WatchCollector(core.list_pod_for_all_namespaces, field_selector="spec.nodeName=node-a") as watch:
        core.create_namespaced_pod(NS, pod("elsewhere", node="node-b"))
        core.create_namespaced_pod("other", pod("here", node="node-a"))
        core.patch_namespaced_pod_status("here", "other", {"status": {"phase": "Running"}})
        assert watch.take(2) == [("ADDED", "here"), ("MODIFIED", "here")]


def test_a_watch_by_name_with_a_bounded_stream(apps: AppsV1Api) -> None:
    apps.create_namespaced_deployment(NS, deployment("one"))
    apps.create_namespaced_deployment(NS, deployment("two"))
    with WatchCollector(apps.list_namespaced_deployment, namespace=NS, field_selector="metadata.name=two") as watch:
        assert watch.next() == ("ADDED", "two")
        apps.patch_namespaced_deployment_scale("one", NS, {"spec": {"replicas": 2}})
        apps.patch_namespaced_deployment_scale("two", NS, {"spec": {"replicas": 2}})
        event, name = watch.next()
        assert (event, name) == ("MODIFIED", "two")


def test_a_watch_resumes_from_a_resource_version(core: CoreV1Api) -> None:
    core.create_namespaced_config_map(NS, configmap("before"))
    since = core.list_namespaced_config_map(NS).metadata.resource_version
    core.create_namespaced_config_map(NS, configmap("after"))
    core.delete_namespaced_config_map("before", NS)
    with WatchCollector(core.list_namespaced_config_map, namespace=NS, resource_version=since) as watch:
        assert watch.take(2) == [("ADDED", "after"), ("DELETED", "before")]


def test_concurrent_writers_and_a_watch_agree_on_order(api: ApiServerHandle, core: CoreV1Api) -> None:
    writers, each = 4, 20

    def write(index: int) -> None:
        for number in range(each):
            core.create_namespaced_config_map(NS, configmap(f"w{index}-{number}", {"load": "yes"}))

    with WatchCollector(core.list_namespaced_config_map, namespace=NS, label_selector="load") as watch:
        threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        events = [watch.events.get(timeout=WAIT) for _ in range(writers * each)]
    versions = [int(item[1]["metadata"]["resourceVersion"]) for item in events if item is not None]
    assert len(versions) == writers * each and versions == sorted(versions) and len(set(versions)) == len(versions)
    assert len(api.objects("configmaps", NS)) == writers * each
    assert {r.method.value for r in api.requests()} >= {"GET", "POST"}


def test_a_watch_ends_after_timeout_seconds(core: CoreV1Api) -> None:
    started = time.monotonic()
    events = list(kubernetes.watch.Watch().stream(core.list_namespaced_secret, namespace=NS, timeout_seconds=1))
    assert events == [] and time.monotonic() - started < WAIT


def test_watch_events_carry_kind_and_resource_version(core: CoreV1Api) -> None:
    with WatchCollector(core.list_namespaced_secret, namespace=NS) as watch:
        core.create_namespaced_secret(NS, {"metadata": {"name": "s"}})
        item = watch.events.get(timeout=WAIT)
        assert item is not None
        assert (item[1]["kind"], item[1]["apiVersion"]) == ("Secret", "v1") and item[1]["metadata"]["resourceVersion"]


# --------------------------------------------------------------------------------------------------------------------
# Deletion
# --------------------------------------------------------------------------------------------------------------------


def test_graceful_pod_deletion_then_finalisation(core: CoreV1Api) -> None:
    core.create_namespaced_pod(NS, pod("p", node="node-1", terminationGracePeriodSeconds=5))
    with WatchCollector(core.list_namespaced_pod, namespace=NS) as watch:
        assert watch.next() == ("ADDED", "p")
        terminating = core.delete_namespaced_pod("p", NS)
        assert terminating.metadata.deletion_timestamp is not None
        assert terminating.metadata.deletion_grace_period_seconds == 5
        assert core.read_namespaced_pod("p", NS).metadata.deletion_timestamp is not None
        assert watch.next() == ("MODIFIED", "p")
        core.delete_namespaced_pod("p", NS)  # again: still terminating, nothing changes
        core.delete_namespaced_pod("p", NS, grace_period_seconds=0)  # the kubelet's finalisation
        assert watch.next() == ("DELETED", "p")
    api_error(lambda: core.read_namespaced_pod("p", NS), 404)


def test_grace_period_from_delete_options_and_unscheduled_pods(core: CoreV1Api) -> None:
    core.create_namespaced_pod(NS, pod("bound", node="node-1"))
    core.create_namespaced_pod(NS, pod("unbound"))
    deleted = core.delete_namespaced_pod("bound", NS, body={"gracePeriodSeconds": 12})
    assert deleted.metadata.deletion_grace_period_seconds == 12
    core.delete_namespaced_pod("unbound", NS)  # never scheduled: removed at once
    assert names(core.list_namespaced_pod(NS).items) == ["bound"]
    core.delete_namespaced_pod("bound", NS, body={"gracePeriodSeconds": 0})
    assert core.list_namespaced_pod(NS).items == []


def test_default_grace_period_is_30_seconds(api: ApiServerHandle, core: CoreV1Api) -> None:
    core.create_namespaced_pod(NS, pod("p", node="node-1"))
    assert core.delete_namespaced_pod("p", NS).metadata.deletion_grace_period_seconds == 30


def test_finalizers_hold_deletion_until_removed(core: CoreV1Api) -> None:
    core.create_namespaced_config_map(NS, configmap("held") | {"metadata": {"name": "held",
                                                                             "finalizers": ["example.com/x"]}})
    core.delete_namespaced_config_map("held", NS)
    assert core.read_namespaced_config_map("held", NS).metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("held", NS, {"metadata": {"finalizers": None}}, _content_type=MERGE)
    api_error(lambda: core.read_namespaced_config_map("held", NS), 404)


def test_delete_answers(api: ApiServerHandle, apps: AppsV1Api, core: CoreV1Api) -> None:
    apps.create_namespaced_deployment(NS, deployment())
    answer = apps.delete_namespaced_deployment("web", NS)
    assert answer["kind"] == "Status" and answer["status"] == "Success"
    core.create_namespaced_service(NS, service("a"))
    assert core.delete_namespaced_service("a", NS).metadata.name == "a"
    api_error(lambda: core.delete_namespaced_service("a", NS), 404)


def test_delete_preconditions(core: CoreV1Api) -> None:
    core.create_namespaced_config_map(NS, configmap("a"))
    body = {"preconditions": {"uid": str(uuid.uuid4())}}
    assert api_error(lambda: core.delete_namespaced_config_map("a", NS, body=body), 409)["reason"] == "Conflict"


def test_dependents_are_garbage_collected(apps: AppsV1Api, core: CoreV1Api) -> None:
    owner = apps.create_namespaced_deployment(NS, deployment())
    reference = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": owner.metadata.uid}
    core.create_namespaced_pod(NS, pod("owned-1", node="node-1") | {
        "metadata": {"name": "owned-1", "ownerReferences": [reference]}})
    core.create_namespaced_pod(NS, pod("owned-2") | {"metadata": {"name": "owned-2", "ownerReferences": [reference]}})
    core.create_namespaced_pod(NS, pod("free"))
    apps.delete_namespaced_deployment("web", NS)
    pods = {p.metadata.name: p for p in core.list_namespaced_pod(NS).items}
    assert set(pods) == {"owned-1", "free"} and pods["owned-1"].metadata.deletion_timestamp is not None


def test_delete_collection_by_label_selector(core: CoreV1Api, apps: AppsV1Api) -> None:
    for name, labels in [("a", {"clipper": "c1"}), ("b", {"clipper": "c1"}), ("c", {"clipper": "c2"})]:
        core.create_namespaced_config_map(NS, configmap(name, labels))
        apps.create_namespaced_deployment(NS, deployment(name, labels={"app": name, **labels}))
    core.delete_collection_namespaced_config_map(NS, label_selector="clipper=c1")
    apps.delete_collection_namespaced_deployment(NS, label_selector="clipper=c1")
    assert names(core.list_namespaced_config_map(NS).items) == ["c"]
    assert names(apps.list_namespaced_deployment(NS).items) == ["c"]


# --------------------------------------------------------------------------------------------------------------------
# Pod logs
# --------------------------------------------------------------------------------------------------------------------


def test_pod_log_comes_from_the_log_source(api: ApiServerHandle, core: CoreV1Api) -> None:
    calls: list[tuple[Any, ...]] = []

    def source(namespace: str, pod_name: str, container: str | None, tail: int | None, timestamps: bool) -> str:
        calls.append((namespace, pod_name, container, tail, timestamps))
        return "line 1\nline 2\n"

    core.create_namespaced_pod(NS, pod("p"))
    assert core.read_namespaced_pod_log("p", NS) == ""  # no source yet
    api.set_log_source(source)
    assert core.read_namespaced_pod_log("p", NS) == "line 1\nline 2\n"
    core.read_namespaced_pod_log("p", NS, container="main", tail_lines=5, timestamps=True)
    assert calls == [(NS, "p", "main", None, False), (NS, "p", "main", 5, True)]  # the only container, resolved
    assert core.read_namespaced_pod_log("p", NS, limit_bytes=4) == "line"


def test_pod_log_errors(api: ApiServerHandle, core: CoreV1Api) -> None:
    api.set_log_source(lambda *args: None)
    api_error(lambda: core.read_namespaced_pod_log("ghost", NS), 404)
    core.create_namespaced_pod(NS, pod("p"))
    assert core.read_namespaced_pod_log("p", NS) == ""  # the source answered None
    body = api_error(lambda: core.read_namespaced_pod_log("p", NS, container="nope"), 400)
    assert body["message"] == "container nope is not valid for pod p"
    two = pod("two")
    two["spec"]["containers"].append({"name": "side", "image": "busybox:1.36"})
    core.create_namespaced_pod(NS, two)
    assert "a container name must be specified" in api_error(lambda: core.read_namespaced_pod_log("two", NS),
                                                             400)["message"]


# --------------------------------------------------------------------------------------------------------------------
# Service proxy
# --------------------------------------------------------------------------------------------------------------------


async def _echo(request: aiohttp.web.Request) -> aiohttp.web.Response:
    return aiohttp.web.json_response({
        "method": request.method, "path": request.path, "query": request.query_string,
        "body": (await request.read()).decode(), "headers": dict(request.headers)},
        status=201 if request.method == "POST" else 200, headers={"X-Echo": "yes"})


@pytest.fixture
def echo_port(api: ApiServerHandle) -> Iterator[int]:
    """A small aiohttp server on 127.0.0.1 (run on the emulator's loop) that echoes what it receives."""

    async def start() -> aiohttp.web.AppRunner:
        app = aiohttp.web.Application()
        app.router.add_route("*", "/{tail:.*}", _echo)
        runner = aiohttp.web.AppRunner(app)
        await runner.setup()
        await aiohttp.web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    runner = api.call_async(start)
    yield runner.addresses[0][1]
    api.call_async(runner.cleanup)


def _ready_pod(core: CoreV1Api, name: str, labels: dict[str, str], port: int) -> None:
    body = pod(name, labels)
    body["spec"]["containers"][0]["ports"] = [{"name": "web", "containerPort": port}]
    core.create_namespaced_pod(NS, body)
    core.patch_namespaced_pod_status(name, NS, {"status": {
        "phase": "Running", "podIP": "127.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}})


def test_service_proxy_forwards_to_a_ready_pod(api: ApiServerHandle, core: CoreV1Api, echo_port: int) -> None:
    core.create_namespaced_service(NS, service("echo", ports=[{"name": "http", "port": 80, "targetPort": echo_port}]))
    core.create_namespaced_pod(NS, pod("not-ready", {"app": "echo"}))
    status, _, body = raw(api, "GET", "/api/v1/namespaces/default/services/echo:http/proxy/x")
    assert status == 503 and 'no endpoints available for service "echo"' in json.loads(body)["message"]
    _ready_pod(core, "ready", {"app": "echo"}, echo_port)
    status, headers, body = raw(api, "POST", "/api/v1/namespaces/default/services/echo:http/proxy/a/b?q=1&r=two",
                                {"hello": "pod"}, headers={"X-Test": "1", "Content-Type": "application/json"})
    echoed = json.loads(body)
    assert status == 201 and headers["X-Echo"] == "yes"
    assert (echoed["method"], echoed["path"], echoed["query"]) == ("POST", "/a/b", "q=1&r=two")
    assert json.loads(echoed["body"]) == {"hello": "pod"} and echoed["headers"]["X-Test"] == "1"
    assert "Authorization" not in echoed["headers"]


def test_service_proxy_through_the_official_client(core: CoreV1Api, echo_port: int) -> None:
    core.create_namespaced_service(NS, service("echo", ports=[{"port": 80, "targetPort": "web"}]))
    _ready_pod(core, "ready", {"app": "echo"}, echo_port)
    # The client's return type for proxy calls is "str": a JSON answer comes back as str(dict), a Python repr.
    # The raw response (_preload_content=False) is the usable form.
    answer = core.connect_get_namespaced_service_proxy_with_path("echo", NS, "a/metrics", _preload_content=False)
    assert json.loads(answer.data)["path"] == "/a/metrics"  # the client sends a%2Fmetrics; the server decodes it
    answer = core.connect_post_namespaced_service_proxy_with_path("echo:80", NS, "x", path2="ignored",
                                                                  _preload_content=False)
    assert answer.status == 201 and json.loads(answer.data)["query"] == "path=ignored"
    assert "'path': '/'" in core.connect_get_namespaced_service_proxy("echo", NS)
    assert "'path': '/'" in core.connect_get_namespaced_service_proxy("http:echo:80", NS)


def test_service_proxy_errors(api: ApiServerHandle, core: CoreV1Api) -> None:
    status, _, _ = raw(api, "GET", "/api/v1/namespaces/default/services/ghost/proxy/")
    assert status == 404
    core.create_namespaced_service(NS, service("echo"))
    status, _, _ = raw(api, "GET", "/api/v1/namespaces/default/services/echo:nope/proxy/")
    assert status == 503
    api.deny("get", "services/proxy", NS)
    status, _, body = raw(api, "GET", "/api/v1/namespaces/default/services/echo/proxy/")
    assert status == 403 and 'cannot get resource "services/proxy"' in json.loads(body)["message"]
