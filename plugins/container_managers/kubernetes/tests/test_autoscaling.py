"""Autoscaling on Kubernetes, end to end: the management pod's autoscaler scales a model Deployment from inside
its pod (the official client's in-cluster configuration: the kubelet's mounted service-account token, HTTPS to the
API server checked against the cluster's CA) with the ServiceAccount and Role ``start_clipper`` made, which RBAC
enforces: up to the minimum, down to zero when idle, and from zero for the first query, which waits for the
replica. With the Role's ``deployments/scale`` permission removed, the autoscaler's change is refused (403) and
its status says so."""

from __future__ import annotations

from typing import Any

import pytest
from k8s_test_helpers import MakeManager, model_pods, predict, wait_for_output, wait_until
from kubelet import Kubelet

from clipper_core import ClipperConnection
from clipper_core.deployers.python import deploy_python_closure

pytestmark = pytest.mark.timeout(900)


def _double() -> Any:
    def double(xs: Any) -> list[str]:
        return [str(2 * sum(x)) for x in xs]

    return double


def _replicas(kube_api: Any, deployment: str) -> int:
    obj = kube_api.get_object("deployments", "default", deployment)
    return int(obj["spec"]["replicas"]) if obj else -1


def test_the_management_pod_scales_a_model_deployment_with_its_service_account(
        make_manager: MakeManager, kube_api: Any, kubelet: Kubelet) -> None:
    manager = make_manager("auto")
    conn = ClipperConnection(manager)
    conn.start_clipper()
    cluster = manager.cluster
    account = f"system:serviceaccount:default:autoscaler-at-{cluster}"
    mgmt = next(p for p in kube_api.objects("pods", "default")
                if p["metadata"]["labels"].get("ai.clipper.container.label") == cluster
                and p["metadata"]["labels"].get("ai.clipper.role") == "management")
    assert mgmt["spec"]["serviceAccountName"] == f"autoscaler-at-{cluster}"

    conn.register_application("patient", "doubles", "-1.0", 60_000_000)
    deploy_python_closure(conn, "auto-model", 1, "doubles", _double(), num_replicas=1)
    conn.link_model_to_app("patient", "auto-model")
    wait_for_output(manager.get_query_addr(), "patient", {"input": [1.0, 2.0]}, 6.0)
    deployment = next(d["metadata"]["name"] for d in kube_api.objects("deployments", "default")
                      if d["metadata"]["labels"].get("ai.clipper.container.label") == cluster
                      and d["metadata"]["labels"].get("ai.clipper.role") == "model")

    # Below its minimum: scaled up by the management pod, not by this process.
    before = len(kube_api.requests_by(account))
    conn.set_autoscaling("auto-model", min_replicas=2, max_replicas=2)
    wait_until(lambda: _replicas(kube_api, deployment) == 2, 60, "the autoscaler scaling the Deployment to 2")
    wait_until(lambda: conn.get_num_replicas("auto-model") == 2, 120, "2 ready model replicas")
    scaled = [e for e in kube_api.requests_by(account)[before:] if e.resource == "deployments/scale"]
    assert scaled and all(e.code == 200 for e in scaled), scaled
    assert scaled[0].verb == "patch" and scaled[0].name == deployment

    # Idle with a minimum of 0: down to zero after the downscale delay (the replicas drain and leave).
    conn.set_autoscaling("auto-model", min_replicas=0, max_replicas=2, downscale_delay_s=1.0,
                         smoothing_window_s=0.5, upscale_delay_s=0.5)
    wait_until(lambda: _replicas(kube_api, deployment) == 0 and not model_pods(kube_api, cluster), 120,
               "the idle version scaled to 0 and its pods gone")
    status = conn.get_autoscaling("auto-model")["status"]
    assert status["desired"] == 0, status

    # The first query starts a replica and waits for it (the app's SLO is a minute).
    status_code, answer = predict(manager.get_query_addr(), "patient", {"input": [3.0, 4.0]}, timeout=90)
    assert status_code == 200 and answer["default"] is False and answer["output"] == 14.0, answer
    assert _replicas(kube_api, deployment) == 1
    assert not kube_api.denied_requests(account), kube_api.denied_requests(account)
    # What the account did is what its Role allows: reads and scales of Deployments, reads of pods.
    done = {(e.verb, e.resource) for e in kube_api.requests_by(account) if e.resource}
    assert ("patch", "deployments/scale") in done and done <= {
        ("get", "deployments"), ("create", "deployments"), ("update", "deployments"),
        ("patch", "deployments/scale"), ("list", "pods"), ("get", "pods/log")}, done


def test_without_the_scale_permission_the_autoscaler_is_refused_and_says_so(
        make_manager: MakeManager, kube_api: Any, kubelet: Kubelet) -> None:
    manager = make_manager("denied")
    conn = ClipperConnection(manager)
    conn.start_clipper()
    cluster = manager.cluster
    account = f"system:serviceaccount:default:autoscaler-at-{cluster}"
    conn.register_application("denied-app", "doubles", "-1.0", 5_000_000)
    deploy_python_closure(conn, "denied-model", 1, "doubles", _double(), num_replicas=1)
    conn.link_model_to_app("denied-app", "denied-model")
    # The cluster's Role without deployments/scale (an administrator's edit).
    role = manager.api.read("Role", "default", f"autoscaler-at-{cluster}")
    assert role is not None
    role["rules"] = [r for r in role["rules"] if "deployments/scale" not in r["resources"]]
    manager.api.replace(role)
    conn.set_autoscaling("denied-model", min_replicas=2, max_replicas=2)

    def refused() -> dict[str, Any] | None:
        status = conn.get_autoscaling("denied-model")["status"] or {}
        return status if "forbidden" in str(status.get("error", "")).lower() else None

    status = wait_until(refused, 60, "the autoscaler's refused change in its status")
    assert "deployments/scale" in status["error"], status
    denied = kube_api.denied_requests(account)
    assert denied and all(e.resource == "deployments/scale" and e.code == 403 for e in denied), denied
    assert conn.get_num_replicas("denied-model") == 1
