"""KubernetesContainerManager against the container-manager contract (clipper_core.testing), on the emulated API
server and the stand-in kubelet: one cluster for the whole class."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import docker
import pytest
from clipper_kubernetes import KubernetesContainerManager
from k8s_test_helpers import cluster_objects, managers
from kubelet import Kubelet

from clipper_core.interfaces import ContainerManager
from clipper_core.testing import ContainerManagerContract

pytestmark = pytest.mark.timeout(600)


class TestKubernetesContainerManager(ContainerManagerContract):
    kube: Any = None

    @pytest.fixture(scope="class")
    @classmethod
    def manager_factory(cls, kube_api: Any, kubelet: Kubelet, docker_client: docker.DockerClient
                        ) -> Iterator[Callable[[], ContainerManager]]:
        cls.kube = kube_api
        with managers(kube_api, docker_client) as make:
            yield lambda: make("contract", admin_token="contract-token")

    def running(self, manager: ContainerManager) -> list[str]:
        assert isinstance(manager, KubernetesContainerManager)
        found = cluster_objects(self.kube, manager.cluster)
        found.pop("persistentvolumeclaims", None)  # kept by stop_all() for the next start, by design
        return [f"{kind}/{name}" for kind, names in found.items() for name in names]
