"""KubernetesContainerManager end to end, against the emulated API server whose pods the stand-in kubelet runs on
the real Docker engine: start with 2 query frontends, register an app, deploy a closure model with 2 replicas,
answer through the query Service's address, scale 2 → 3 → 1, a killed model container restarted and a deleted
pod replaced, logs, and stop_all leaving nothing of the cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from k8s_test_helpers import MakeManager, cluster_objects, model_pods, predict, wait_for_output, wait_until
from kubelet import Kubelet

from clipper_core import ClipperConnection
from clipper_core.deployers.python import deploy_python_closure

pytestmark = pytest.mark.timeout(900)


def _feature_sum() -> Any:
    def feature_sum(xs: Any) -> list[str]:
        return [str(sum(x)) for x in xs]

    return feature_sum


def test_a_cluster_on_kubernetes_end_to_end(make_manager: MakeManager, kube_api: Any, kubelet: Kubelet,
                                            tmp_path: Path) -> None:
    manager = make_manager("e2e")
    conn = ClipperConnection(manager)
    conn.start_clipper(num_frontend_replicas=2)
    cluster = manager.cluster
    query = kube_api.objects("deployments", "default")
    frontends = next(d for d in query if d["metadata"]["name"] == f"query-frontend-at-{cluster}")
    assert frontends["spec"]["replicas"] == 2 and frontends["status"]["readyReplicas"] == 2
    node_ip = kube_api.objects("nodes")[0]["status"]["addresses"][0]["address"]
    assert manager.get_query_addr().startswith(f"{node_ip}:")  # the node's address and the Service's node port

    conn.register_application("e2e-app", "doubles", "-1.0", 3_000_000)
    deploy_python_closure(conn, "sum-model", 1, "doubles", _feature_sum(), num_replicas=2)
    conn.link_model_to_app("e2e-app", "sum-model")
    assert conn.get_num_replicas("sum-model") == 2
    wait_for_output(manager.get_query_addr(), "e2e-app", {"input": [1.0, 2.0, 3.0]}, 6.0)
    # Every replica serves every frontend: each of the 2 frontends has both replicas connected.
    wait_until(lambda: len([r for r in conn.get_all_model_replicas(verbose=True)
                            if r["model_name"] == "sum-model"]) >= 2, 60, "2 connected replicas")
    for _ in range(20):  # the REST Service spreads connections over both frontends; all answer
        status, answer = predict(manager.get_query_addr(), "e2e-app", {"input": [2.0, 2.0]})
        assert status == 200 and answer["output"] == 4.0 and not answer["default"], answer

    conn.set_num_replicas("sum-model", 3)
    assert conn.get_num_replicas("sum-model") == 3 and len(model_pods(kube_api, cluster)) == 3
    conn.set_num_replicas("sum-model", 1)
    assert conn.get_num_replicas("sum-model") == 1 and len(model_pods(kube_api, cluster)) == 1
    # The one replica serves both frontends (it dialled the headless Service and joined every frontend it was
    # told of): each frontend pod, asked directly at its pod IP, answers with the model.
    frontend_ips = [p["status"]["podIP"] for p in kube_api.objects("pods", "default")
                    if p["metadata"]["labels"].get("ai.clipper.container.label") == cluster
                    and p["metadata"]["labels"].get("ai.clipper.role") == "query"]
    assert len(set(frontend_ips)) == 2, frontend_ips
    for ip in frontend_ips:
        wait_for_output(f"{ip}:1337", "e2e-app", {"input": [2.0, 3.0]}, 5.0)

    # A model pod's container killed: the kubelet restarts it in place and the app answers again.
    pod = model_pods(kube_api, cluster)[0]
    container = kubelet.container_of("default", pod["metadata"]["name"])
    assert container is not None
    container.kill()

    def restarted() -> bool:
        pods = model_pods(kube_api, cluster)
        statuses = [c for p in pods for c in (p.get("status") or {}).get("containerStatuses") or []]
        return len(pods) == 1 and any(c.get("restartCount", 0) >= 1 and c.get("ready") for c in statuses)

    wait_until(restarted, 90, "the killed model container to be restarted and ready")
    wait_for_output(manager.get_query_addr(), "e2e-app", {"input": [4.0, 4.0]}, 8.0)

    # A model pod deleted: the Deployment controller replaces it with a new pod.
    old = pod["metadata"]["name"]
    manager.api.delete("Pod", "default", old)
    wait_until(lambda: [p for p in model_pods(kube_api, cluster) if p["metadata"]["name"] != old
                        and any(c.get("ready") for c in (p.get("status") or {}).get("containerStatuses") or [])]
               and old not in [p["metadata"]["name"] for p in model_pods(kube_api, cluster)],
               90, "the deleted model pod to be replaced by a ready one")
    wait_until(lambda: conn.get_num_replicas("sum-model") == 1, 30, "the Deployment to count 1 ready replica")
    wait_for_output(manager.get_query_addr(), "e2e-app", {"input": [1.0, 1.0]}, 2.0)

    files = [Path(f) for f in conn.get_clipper_logs(str(tmp_path / "logs"))]
    pod_names = {p["metadata"]["name"] for p in kube_api.objects("pods", "default")
                 if p["metadata"]["labels"].get("ai.clipper.container.label") == cluster}
    assert {f.stem for f in files} == pod_names and any(f.stat().st_size for f in files)

    conn.stop_all()
    left = cluster_objects(kube_api, cluster)
    assert list(left) == ["persistentvolumeclaims"], left  # registrations survive in Redis's volume claim
    manager.stop_all(remove_volumes=True)
    assert cluster_objects(kube_api, cluster) == {}
    assert not [c for c in kubelet.docker.containers.list(all=True)
                if c.labels.get("kubelet.clipper.test/namespace") == "default"
                and cluster in c.labels.get("kubelet.clipper.test/pod", "")]


def test_a_restarted_cluster_keeps_its_registrations_and_two_clusters_do_not_collide(
        make_manager: MakeManager, kube_api: Any) -> None:
    a, b = make_manager("a"), make_manager("b")
    conn_a, conn_b = ClipperConnection(a), ClipperConnection(b)
    conn_a.start_clipper()
    conn_b.start_clipper()
    conn_a.register_application("only-in-a", "doubles", "-1.0", 100000)
    assert conn_b.get_all_apps() == []
    names_a = {n for found in cluster_objects(kube_api, a.cluster).values() for n in found}
    names_b = {n for found in cluster_objects(kube_api, b.cluster).values() for n in found}
    assert names_a and names_b and not names_a & names_b

    conn_a.stop_all()  # keeps a's volume claim; b runs on
    assert cluster_objects(kube_api, a.cluster) == {"persistentvolumeclaims": [f"redis-data-at-{a.cluster}"]}
    assert conn_b.get_all_apps() == [] and "deployments" in cluster_objects(kube_api, b.cluster)

    again = ClipperConnection(make_manager("a"))
    again.start_clipper()
    assert again.get_all_apps() == ["only-in-a"]  # Redis's append-only file was on the claim
    other = ClipperConnection(make_manager("a"))
    other.connect()
    assert other.get_all_apps() == ["only-in-a"] and other.cm.get_admin_addr() == again.cm.get_admin_addr()

    again.cm.stop_all(remove_volumes=True)  # the claim too: a new one starts empty
    fresh = ClipperConnection(make_manager("a"))
    fresh.start_clipper()
    assert fresh.get_all_apps() == []
