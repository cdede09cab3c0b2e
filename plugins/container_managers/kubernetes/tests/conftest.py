"""Fixtures of the Kubernetes plugin's tests: an emulated API server (``kube_api/``, kmock) on 127.0.0.1 and a
stand-in kubelet (``kubelet/``) that runs the pods' containers on the real Docker engine the Docker plugin's
tests use (``docker_client`` and ``clipper_images`` come from :mod:`clipper_docker.testing`). Both are shared by
the session; each test's clusters have names of their own and are removed afterwards.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from k8s_test_helpers import MakeManager, managers
from kube_api import running_api_server
from kubelet import Kubelet


@pytest.fixture(scope="session")
def kube_api() -> Iterator[Any]:
    """The emulated API server: ``.kubeconfig`` (a file pointing at it), ``.server``, ``.objects(plural)``, ..."""
    with running_api_server() as handle:
        yield handle


@pytest.fixture(scope="session")
def kubelet(kube_api: Any, docker_client: docker.DockerClient, clipper_images: dict[str, float]) -> Iterator[Kubelet]:
    """The stand-in kubelet and Deployment controller, running pods on the private Docker engine. The node's
    address (where its node ports listen) is a loopback address of this session's own, so that two sessions'
    node ports never collide."""
    rng = random.Random(os.getpid())
    node_address = f"127.{rng.randint(1, 254)}.{rng.randint(1, 254)}.{rng.randint(1, 254)}"
    with Kubelet(kube_api.kubeconfig, docker_client, name_prefix=f"kt{os.getpid()}", api_handle=kube_api,
                 node_address=node_address) as node:
        yield node


@pytest.fixture
def make_manager(kube_api: Any, kubelet: Kubelet, docker_client: docker.DockerClient) -> Iterator[MakeManager]:
    """``make_manager("a", **kwargs)``: a KubernetesContainerManager of the cluster ``k<pid>-<suffix>`` on the
    emulated API server. Every cluster made is stopped afterwards, with its volume claim and model images."""
    with managers(kube_api, docker_client) as make:
        yield make
