"""The client as the manager configures it: from a kubeconfig file and context, or inside a pod from its service
account; and how API errors read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from clipper_kubernetes import api as api_module
from clipper_kubernetes.api import KubeApi, KubeConflict, KubeNotFound
from kube_api import write_kubeconfig

from clipper_core.errors import ClipperException


def test_inside_a_pod_the_service_account_configures_the_client(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    monkeypatch.setattr(api_module, "SERVICE_ACCOUNT_DIR", str(tmp_path))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    api = KubeApi()
    assert api.in_cluster and api.host == "https://10.96.0.1:443"
    assert api.client.configuration.api_key["BearerToken"].lower() == "bearer sa-token"
    assert api.client.configuration.ssl_ca_cert == str(tmp_path / "ca.crt")


def test_a_kubeconfig_and_its_context_are_used(tmp_path: Path) -> None:
    config = str(write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:1", "t0k"))
    api = KubeApi(config, context="emulated")
    assert not api.in_cluster and api.host == "http://127.0.0.1:1"
    with pytest.raises(ClipperException, match=r"no usable Kubernetes configuration.*context=other"):
        KubeApi(config, context="other")


def test_api_errors_read_as_what_to_do(kube_api: Any) -> None:
    api = KubeApi(kube_api.kubeconfig)
    assert api.check_reachable().startswith("v1.")
    assert api.read("Deployment", "default", "nothing-here") is None
    with pytest.raises(KubeNotFound):
        api.call("scale a missing Deployment", api.apps.read_namespaced_deployment_scale, "nothing-here", "default")
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "api-test", "namespace": "default"},
              "data": {"k": "dg=="}}
    api.create(secret)
    try:
        with pytest.raises(KubeConflict):
            api.create(secret)
        assert api.apply({**secret, "data": {"k": "dzI="}})["data"] == {"k": "dzI="}  # replaced
    finally:
        api.delete("Secret", "default", "api-test")
    with pytest.raises(ClipperException, match="rejected an invalid object") as invalid:
        api.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "Bad_Name", "namespace": "default"}})
    assert invalid.value.status == 422
    with pytest.raises(ClipperException, match="namespace 'absent' does not exist"):
        api.create({**secret, "metadata": {"name": "x", "namespace": "absent"}})
