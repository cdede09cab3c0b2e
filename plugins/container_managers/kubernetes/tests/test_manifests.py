"""The objects a cluster is made of (plain tests, no API server): every object ``clipper kubernetes render`` prints
is valid for Kubernetes 1.37 (kubernetes-validate, strict), uses only apps/v1, v1 and rbac.authorization.k8s.io/v1,
carries the recommended and clipper's labels, and two clusters select only their own pods; only the management pod
mounts a service-account token, whose Role may only read and scale Deployments and read pods."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any

import kubernetes_validate
import pytest
import yaml
from clipper_kubernetes import names
from clipper_kubernetes.cli import render
from clipper_kubernetes.manifests import ClusterSpec, ModelSpec, cluster_objects, model_deployment

from clipper_core.errors import ClipperException

K8S_VERSION = "1.37.0"
RECOMMENDED = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
               "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by", "app.kubernetes.io/version")


def _render_cli(*args: str) -> list[dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "clipper_core.cli", "kubernetes", "render", *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [obj for obj in yaml.safe_load_all(done.stdout) if obj]


@pytest.mark.parametrize("args", [
    [],
    ["--frontends", "3", "--cluster-name", "prod", "--namespace", "serving", "--cache-size", "1000",
     "--admin-token", "s3cret", "--service-type", "query=LoadBalancer", "--service-type", "management=ClusterIP",
     "--model", "sum-model:1:doubles:2:prod-sum-model:1", "--model", "Other_Model:v1.0-RC:strings:1:img@sha256:ab",
     "--create-namespace", "--resources", '{"model": {"limits": {"cpu": "2"}}}', "--drain-timeout", "30"],
    ["--redis-ip", "10.0.0.5", "--redis-port", "6380", "--redis-password", "pw", "--storage-class", "fast"],
])
def test_every_rendered_object_is_valid_for_kubernetes(args: list[str]) -> None:
    objects = _render_cli(*args)
    assert objects
    for obj in objects:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        assert obj["apiVersion"] in ("v1", "apps/v1", "rbac.authorization.k8s.io/v1"), obj["apiVersion"]
        labels = obj["metadata"]["labels"]
        if obj["kind"] == "Namespace":  # not the cluster's: it may hold several
            assert labels == {"app.kubernetes.io/managed-by": "clipper-kubernetes"}
            continue
        assert all(key in labels for key in RECOMMENDED), labels
        assert labels[names.CLUSTER_LABEL] == labels["app.kubernetes.io/instance"]
        for key, value in labels.items():
            assert names.label_value(value) == value, (key, value)


def test_the_default_cluster_is_redis_management_and_frontends_behind_two_services() -> None:
    objects = _render_cli("--frontends", "2", "--cluster-name", "c1")
    by_kind: dict[str, list[str]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj["metadata"]["name"])
    assert by_kind == {"Secret": ["redis-auth-at-c1", "admin-token-at-c1"],
                       "PersistentVolumeClaim": ["redis-data-at-c1"],
                       "ServiceAccount": ["autoscaler-at-c1"], "Role": ["autoscaler-at-c1"],
                       "RoleBinding": ["autoscaler-at-c1"],
                       "Service": ["redis-at-c1", "mgmt-frontend-at-c1", "query-frontend-at-c1",
                                   "query-frontend-rpc-at-c1"],
                       "Deployment": ["redis-at-c1", "mgmt-frontend-at-c1", "query-frontend-at-c1"]}
    query = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "query-frontend-at-c1")
    assert query["spec"]["replicas"] == 2
    pod = query["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    container = pod["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"  # not the store's health
    assert "tcp://$(POD_IP):7000" in container["command"]
    rpc = next(o for o in objects if o["metadata"]["name"] == "query-frontend-rpc-at-c1")
    assert rpc["spec"]["clusterIP"] == "None"
    assert rpc["spec"]["selector"] == query["spec"]["selector"]["matchLabels"]
    redis = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "redis-at-c1")
    assert redis["spec"]["strategy"] == {"type": "Recreate"}
    assert "--appendonly" in redis["spec"]["template"]["spec"]["containers"][0]["args"]
    services = {o["metadata"]["name"]: o["spec"]["type"] for o in objects if o["kind"] == "Service"}
    assert services == {"redis-at-c1": "ClusterIP", "mgmt-frontend-at-c1": "NodePort",
                        "query-frontend-at-c1": "NodePort", "query-frontend-rpc-at-c1": "ClusterIP"}


def test_an_external_redis_has_no_redis_objects_and_the_frontends_use_its_address() -> None:
    objects = _render_cli("--redis-ip", "10.0.0.5", "--redis-port", "6380")
    assert not [o for o in objects if o["metadata"]["labels"][names.ROLE_LABEL] == names.Role.REDIS]
    query = next(o for o in objects if o["kind"] == "Deployment" and "query" in o["metadata"]["name"])
    env = {e["name"]: e.get("value") for e in query["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["CLIPPER_STATE_STORE"] == "redis://10.0.0.5:6380/0"


def test_the_redis_password_and_admin_token_live_in_secrets_referenced_by_the_pods() -> None:
    spec = ClusterSpec(cluster="c2", has_admin_token=True)
    objects = cluster_objects(spec, redis_password="abc123", admin_token="tok")
    secrets = {o["metadata"]["name"]: o["data"] for o in objects if o["kind"] == "Secret"}
    assert base64.b64decode(secrets["redis-auth-at-c2"]["password"]) == b"abc123"
    assert base64.b64decode(secrets["admin-token-at-c2"]["token"]) == b"tok"
    text = yaml.safe_dump_all([o for o in objects if o["kind"] != "Secret"])
    assert "abc123" not in text and "tok\n" not in text  # only Secrets hold them
    mgmt = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "mgmt-frontend-at-c2")
    env = {e["name"]: e for e in mgmt["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["CLIPPER_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "admin-token-at-c2", "key": "token"}
    assert env["CLIPPER_STATE_STORE"]["value"] == "redis://:$(REDIS_PASSWORD)@redis-at-c2:6379/0"
    names_in_order = [e["name"] for e in mgmt["spec"]["template"]["spec"]["containers"][0]["env"]]
    assert names_in_order.index("REDIS_PASSWORD") < names_in_order.index("CLIPPER_STATE_STORE")


def test_a_model_deployment_dials_the_headless_service_and_is_ready_on_its_ready_file() -> None:
    spec = ClusterSpec(cluster="c3", resources={"model": {"limits": {"cpu": "500m", "memory": "512Mi"}}})
    deployment = model_deployment(spec, ModelSpec("Sum_Model", "1.0-RC", "doubles", "img:1", 3))
    kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    assert deployment["spec"]["replicas"] == 3
    pod = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["CLIPPER_IP"] == "query-frontend-rpc-at-c3" and env["CLIPPER_PORT"] == "7000"
    assert env["CLIPPER_MODEL_NAME"] == "Sum_Model" and env["CLIPPER_MODEL_VERSION"] == "1.0-RC"
    assert pod["containers"][0]["readinessProbe"]["exec"]["command"] == ["cat", "/tmp/clipper_ready.json"]
    assert pod["containers"][0]["resources"] == {"limits": {"cpu": "500m", "memory": "512Mi"}}
    assert deployment["metadata"]["annotations"][names.MODEL_NAME_ANNOTATION] == "Sum_Model"
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector == names.model_selector("c3", "Sum_Model", "1.0-RC")
    assert all(deployment["spec"]["template"]["metadata"]["labels"][k] == v for k, v in selector.items())


def test_two_clusters_never_select_each_others_pods() -> None:
    a = cluster_objects(ClusterSpec(cluster="a"), redis_password="x", admin_token=None)
    b = cluster_objects(ClusterSpec(cluster="b"), redis_password="x", admin_token=None)
    names_a = {o["metadata"]["name"] for o in a}
    assert not names_a & {o["metadata"]["name"] for o in b}
    for obj in a:
        selector = (obj["spec"].get("selector") or {}) if obj["kind"] == "Service" else \
            ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if not selector:
            continue
        for other in b:
            if other["kind"] == "Deployment":
                pod_labels = other["spec"]["template"]["metadata"]["labels"]
                assert not all(pod_labels.get(k) == v for k, v in selector.items()), (obj["metadata"]["name"],
                                                                                       other["metadata"]["name"])


def test_service_types_work_as_in_clipper_and_external_name_is_refused() -> None:
    spec = ClusterSpec(service_types={"query": "LoadBalancer", "redis": "NodePort"})
    assert spec.service_types["query"] == "LoadBalancer" and spec.service_types["management"] == "NodePort"
    with pytest.raises(ClipperException, match="ExternalName"):
        ClusterSpec(service_types={"query": "ExternalName"})
    with pytest.raises(ClipperException, match="unknown key"):
        ClusterSpec(service_types={"frontend": "NodePort"})
    with pytest.raises(ClipperException, match="headless"):
        ClusterSpec(service_types={"query-rpc": "NodePort"})
    with pytest.raises(ClipperException, match="invalid cluster name"):
        ClusterSpec(cluster="Bad_Name")


def test_names_are_dns_labels_and_label_values_stay_valid_and_distinct() -> None:
    long = "m" * 70
    for model, version in [("sum-model", "1"), ("sum-model", "1.0_RC"), (long, "1"), ("a", "B.C")]:
        name = names.model_deployment_name("cluster-with-a-long-name-0123456789", model, version)
        assert len(name) <= 63 and name == name.lower(), name
    assert names.model_deployment_name("c", "m", "1") == "m-1-deployment-at-c"
    assert names.label_value("ok-value") == "ok-value"
    assert names.label_value("_x") != names.label_value("-x")
    assert len(names.label_value(long)) <= 63


def test_render_is_the_manager_code_and_the_secrets_are_generated() -> None:
    first = render(ClusterSpec(), redis_password="p1", admin_token=None)
    assert first.startswith("# clipper cluster") and "kind: Deployment" in first
    objects = _render_cli()
    secret = next(o for o in objects if o["kind"] == "Secret")
    assert len(base64.b64decode(secret["data"]["password"])) == 32
    assert _render_cli()[0]["data"] != secret["data"]  # a fresh password each time


def test_render_takes_models_with_numeric_tags_and_the_manager_options() -> None:
    objects = _render_cli("--cluster-name", "g", "--create-namespace", "--namespace", "serving",
                          "--model", "sum-model:1:doubles:3:registry.example.com:5000/models/g-sum-model:1",
                          "--resources", '{"query": {"requests": {"cpu": "500m"}}}', "--drain-timeout", "20",
                          "--service-type", "management=ClusterIP")
    assert objects[0] == {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "serving", "labels": {"app.kubernetes.io/managed-by": "clipper-kubernetes"}}}
    model = objects[-1]
    assert model["metadata"]["name"] == "sum-model-1-deployment-at-g" and model["spec"]["replicas"] == 3
    pod = model["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "registry.example.com:5000/models/g-sum-model:1"
    assert pod["terminationGracePeriodSeconds"] == 25
    query = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "query-frontend-at-g")
    assert query["spec"]["template"]["spec"]["containers"][0]["resources"] == {"requests": {"cpu": "500m"}}
    # a management API only inside the cluster gets no generated token
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "Secret"] == ["redis-auth-at-g"]


def test_every_pod_drops_privileges_and_redis_can_write_a_fresh_volume() -> None:
    for obj in cluster_objects(ClusterSpec(), redis_password="x", admin_token="t"):
        if obj["kind"] != "Deployment":
            continue
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            assert container["securityContext"] == {"allowPrivilegeEscalation": False,
                                                    "capabilities": {"drop": ["ALL"]}}
        if obj["metadata"]["name"].startswith("redis-"):
            assert pod["securityContext"]["fsGroup"] == 1000


def test_only_the_management_pod_mounts_a_token_and_its_role_reads_and_scales_deployments() -> None:
    objects = cluster_objects(ClusterSpec(cluster="c3", namespace="ns", resources={"model": {"limits": {"cpu": "1"}}},
                                          drain_seconds=20, deploy_seconds=120),
                              redis_password="x", admin_token="t")
    pods = {o["metadata"]["name"]: o["spec"]["template"]["spec"] for o in objects if o["kind"] == "Deployment"}
    pods["model"] = model_deployment(ClusterSpec(cluster="c3"), ModelSpec("m", "1", "doubles", "img", 1))[
        "spec"]["template"]["spec"]
    mounting = {name for name, pod in pods.items() if pod["automountServiceAccountToken"]}
    assert mounting == {"mgmt-frontend-at-c3"}
    assert pods["mgmt-frontend-at-c3"]["serviceAccountName"] == "autoscaler-at-c3"
    assert all("serviceAccountName" not in pod for name, pod in pods.items() if name != "mgmt-frontend-at-c3")
    role = next(o for o in objects if o["kind"] == "Role")
    granted = {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    assert granted == {("apps", "deployments", v) for v in ("get", "create", "update")} | {
        ("apps", "deployments/scale", "patch"), ("", "pods", "list"), ("", "pods/log", "get")}
    binding = next(o for o in objects if o["kind"] == "RoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "autoscaler-at-c3"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "autoscaler-at-c3", "namespace": "ns"}]
    env = {e["name"]: e.get("value") for e in pods["mgmt-frontend-at-c3"]["containers"][0]["env"]}
    assert env["CLIPPER_AUTOSCALE_MANAGER"] == "kubernetes"
    assert json.loads(env["CLIPPER_AUTOSCALE_MANAGER_OPTIONS"]) == {
        "cluster_name": "c3", "namespace": "ns", "image_pull_policy": "IfNotPresent", "drain_timeout": 20,
        "deploy_timeout": 120, "resources": {"model": {"limits": {"cpu": "1"}}}}
    model_env = {e["name"]: e.get("value") for e in pods["model"]["containers"][0]["env"]}
    assert model_env["CLIPPER_DRAIN_SECONDS"] == "10"  # within the pods' grace of drain + 5 s


def test_without_the_autoscaler_no_pod_mounts_a_token_and_there_is_no_account() -> None:
    objects = _render_cli("--no-autoscaler", "--cluster-name", "c4")
    assert not [o for o in objects if o["kind"] in ("ServiceAccount", "Role", "RoleBinding")]
    for obj in objects:
        if obj["kind"] == "Deployment":
            pod = obj["spec"]["template"]["spec"]
            assert pod["automountServiceAccountToken"] is False and "serviceAccountName" not in pod
            env = {e["name"] for e in pod["containers"][0].get("env", [])}
            assert "CLIPPER_AUTOSCALE_MANAGER" not in env


def test_render_refuses_bad_options_with_a_clear_error() -> None:
    done = subprocess.run([sys.executable, "-m", "clipper_core.cli", "kubernetes", "render", "--service-type",
                           "query=ExternalName"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "ExternalName" in done.stderr
    done = subprocess.run([sys.executable, "-m", "clipper_core.cli", "kubernetes", "render", "--frontends", "0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "at least 1" in done.stderr
    done = subprocess.run([sys.executable, "-m", "clipper_core.cli", "kubernetes", "render", "--model",
                           "m:1:doubles:img:1"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "NAME:VERSION:INPUT_TYPE:REPLICAS:IMAGE" in done.stderr
