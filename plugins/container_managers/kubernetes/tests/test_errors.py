"""Errors a user can act on, each a ClipperException within a bounded time: an unreachable API server, a bad
kubeconfig, an RBAC 403, a namespace that does not exist (and one created on request), an image that cannot be
pulled (named), a model that cannot load, ExternalName, connecting to a cluster that is not there; and the
manager reached through ``kubernetes_proxy_addr`` (a kubectl-proxy stand-in)."""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from clipper_kubernetes import KubernetesContainerManager
from clipper_kubernetes.names import model_deployment_name
from k8s_test_helpers import MakeManager, cluster_objects, kubectl_proxy, managers, wait_for_app, wait_for_output
from kube_api import write_kubeconfig
from kubelet import Kubelet

from clipper_core import ClipperConnection
from clipper_core.deployers.python import deploy_python_closure
from clipper_core.errors import ClipperException
from clipper_core.testing import http_json

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def running(kube_api: Any, kubelet: Kubelet, docker_client: docker.DockerClient) -> Iterator[ClipperConnection]:
    """One started cluster (1 frontend) for the tests that need one."""
    with managers(kube_api, docker_client) as make:
        conn = ClipperConnection(make("errors"))
        conn.start_clipper()
        conn.register_application("err-app", "doubles", "-1.0", 3_000_000)
        yield conn


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_api_server_is_a_clear_error_at_once(tmp_path: Path) -> None:
    config = str(write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{_closed_port()}", "x"))
    started = time.monotonic()
    with pytest.raises(ClipperException, match=r"cannot reach the Kubernetes API server at http://127\.0\.0\.1"):
        KubernetesContainerManager("unreachable", kubeconfig=config).start_clipper()
    assert time.monotonic() - started < 15


def test_a_missing_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ClipperException, match="no usable Kubernetes configuration"):
        KubernetesContainerManager("nocfg", kubeconfig=str(tmp_path / "missing")).connect()


def test_wrong_credentials_are_reported_as_such(kube_api: Any, tmp_path: Path) -> None:
    config = str(write_kubeconfig(tmp_path / "kubeconfig", kube_api.url, "not-the-token"))
    with pytest.raises(ClipperException, match="did not accept this kubeconfig's credentials"):
        KubernetesContainerManager("badtoken", kubeconfig=config).connect()


def test_an_rbac_denial_is_reported_and_nothing_is_left_behind(make_manager: MakeManager, kube_api: Any) -> None:
    manager = make_manager("rbac")
    kube_api.deny("create", "deployments", "default", group="apps")
    try:
        with pytest.raises(ClipperException, match=r"RBAC forbids this.*cannot create resource \"deployments\""):
            manager.start_clipper()
    finally:
        kube_api.allow_all()
    left = cluster_objects(kube_api, manager.cluster)
    assert not {"deployments", "services", "secrets", "pods"} & set(left), left


def test_a_namespace_that_does_not_exist(make_manager: MakeManager, kube_api: Any) -> None:
    namespace = f"ns-{os.getpid()}"
    with pytest.raises(ClipperException, match=f"namespace '{namespace}' does not exist"):
        make_manager("nons", namespace=namespace).start_clipper()
    with pytest.raises(ClipperException, match=f"namespace '{namespace}' does not exist"):
        make_manager("nons", namespace=namespace).connect()
    manager = make_manager("mkns", namespace=namespace, create_namespace_if_not_exists=True)
    conn = ClipperConnection(manager)
    conn.start_clipper()
    assert namespace in [n["metadata"]["name"] for n in kube_api.objects("namespaces")]
    assert cluster_objects(kube_api, manager.cluster, namespace)["deployments"]
    conn.stop_all()


def test_an_image_that_cannot_be_pulled_is_reported_with_its_name(running: ClipperConnection, kube_api: Any) -> None:
    manager = running.cm
    image = "registry.invalid/nobody/ghost-model:1"
    started = time.monotonic()
    with pytest.raises(ClipperException, match=r"cannot pull the image 'registry\.invalid/nobody/ghost-model:1'"):
        manager.deploy_model("ghost", "1", "doubles", image, 1)
    assert time.monotonic() - started < 60
    name = model_deployment_name(manager.cluster, "ghost", "1")
    deployment = next(d for d in kube_api.objects("deployments", "default") if d["metadata"]["name"] == name)
    assert deployment["spec"]["replicas"] == 0  # not left retrying
    manager.stop_models({"ghost": ["1"]})


def test_a_model_that_cannot_load_is_reported_with_its_log(running: ClipperConnection) -> None:
    # The base image alone: /model holds no model, so the replica exits with status 2 or 4 (not restartable).
    with pytest.raises(ClipperException, match=r"exits with status [24]"):
        running.cm.deploy_model("empty", "1", "doubles", "clipper/model-base:0.1.0", 1)
    running.cm.stop_models({"empty": ["1"]})


def test_external_name_and_unknown_service_keys_are_refused() -> None:
    with pytest.raises(ClipperException, match="ExternalName"):
        KubernetesContainerManager("x", service_types={"query": "ExternalName"})
    with pytest.raises(ClipperException, match="unknown key"):
        KubernetesContainerManager("x", service_types={"frontend": "NodePort"})


def test_connecting_to_a_cluster_that_is_not_there(kube_api: Any) -> None:
    with pytest.raises(ClipperException, match="no clipper cluster 'not-here' runs in namespace 'default'"):
        KubernetesContainerManager("not-here", kubeconfig=kube_api.kubeconfig).connect()


def test_a_cluster_run_entirely_through_kubernetes_proxy_addr(make_manager: MakeManager, kube_api: Any) -> None:
    """Every Service ClusterIP (nothing published on the nodes), reached through a kubectl-proxy stand-in."""
    inside = {"management": "ClusterIP", "query": "ClusterIP"}
    with kubectl_proxy(kube_api.url, kube_api.token) as proxy:
        manager = make_manager("proxied", kubernetes_proxy_addr=proxy, service_types=inside)
        conn = ClipperConnection(manager)
        conn.start_clipper()
        assert manager.admin_token is None  # not exposed: no token made (it could not travel through the proxy)
        assert manager.get_admin_addr() == (f"{proxy}/api/v1/namespaces/default/services/"
                                            f"mgmt-frontend-at-{manager.cluster}:1338/proxy")
        conn.register_application("proxied-app", "doubles", "-1.0", 3_000_000)
        # the frontend learns of the app through Redis a moment later; no model is linked: the default answers
        answer = wait_for_app(manager.get_query_addr(), "proxied-app", {"input": [1.0]})
        assert answer["default"] is True and answer["output"] == -1.0, answer
        again = ClipperConnection(make_manager("proxied", kubernetes_proxy_addr=proxy))
        again.connect()
        assert again.get_all_apps() == ["proxied-app"]
        with pytest.raises(ClipperException, match="an admin token cannot travel through kubernetes_proxy_addr"):
            make_manager("proxied", kubernetes_proxy_addr=proxy, admin_token="t").connect()
        conn.stop_all()


def test_an_exposed_management_api_always_wants_a_token(running: ClipperConnection, kube_api: Any) -> None:
    manager = running.cm
    assert isinstance(manager, KubernetesContainerManager) and manager.admin_token  # made, as none was given
    status, _ = http_json(f"http://{manager.get_admin_addr()}/admin/get_all_applications", {})
    assert status == 401
    other = KubernetesContainerManager(manager.cluster, kubeconfig=kube_api.kubeconfig)
    ClipperConnection(other).connect()
    assert other.admin_token == manager.admin_token  # found in the cluster's Secret


def test_build_model_pushes_to_the_registry_it_is_given(running: ClipperConnection, tmp_path: Path) -> None:
    """The image is built with the Docker plugin's builder, then pushed: a registry that does not answer is a
    clear error naming the image (no registry can be run here, so the successful push is not exercised)."""
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "clipper_model.json").write_text("{}")
    registry = f"127.0.0.1:{_closed_port()}"
    manager = running.cm
    with pytest.raises(ClipperException, match=rf"pushing {re.escape(registry)}/{manager.cluster}-pushed:1 failed"):
        running.build_model("pushed", 1, str(model_dir), base_image="clipper/model-base:0.1.0",
                            container_registry=registry)
    assert manager.build_model("pushed", "2", str(model_dir), "clipper/model-base:0.1.0") == \
        f"{manager.cluster}-pushed:2"  # without a registry: built, not pushed


def test_a_bad_new_image_for_a_serving_version_is_rolled_back(running: ClipperConnection, kube_api: Any) -> None:
    """A version that serves keeps serving: its Deployment is rolled back, not scaled to 0."""
    def double(xs: Any) -> list[str]:
        return [str(2 * x[0]) for x in xs]

    deploy_python_closure(running, "roll", 1, "doubles", double, num_replicas=1)
    running.link_model_to_app("err-app", "roll")
    wait_for_output(running.get_query_addr(), "err-app", {"input": [2.0]}, 4.0)
    with pytest.raises(ClipperException, match=r"(?s)cannot pull the image 'registry\.invalid/roll:2'.*rolled back"):
        running.cm.deploy_model("roll", "1", "doubles", "registry.invalid/roll:2", 1)
    name = model_deployment_name(running.cm.cluster, "roll", "1")
    deployment = next(d for d in kube_api.objects("deployments", "default") if d["metadata"]["name"] == name)
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] != "registry.invalid/roll:2"
    wait_for_output(running.get_query_addr(), "err-app", {"input": [3.0]}, 6.0)
    running.unlink_model_from_app("err-app", "roll")
    running.stop_models(["roll"])
