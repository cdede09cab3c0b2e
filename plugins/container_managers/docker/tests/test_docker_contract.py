"""DockerContainerManager against the container-manager contract, on the private Docker engine: one cluster for
the whole class (starting one, building the model image and starting replicas is what a Docker run costs)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import docker
import pytest
from clipper_docker import DockerContainerManager
from docker_test_helpers import managers

from clipper_core.interfaces import ContainerManager
from clipper_core.testing import ContainerManagerContract

pytestmark = pytest.mark.timeout(600)


class TestDockerContainerManager(ContainerManagerContract):
    @pytest.fixture(scope="class")
    @classmethod
    def manager_factory(cls, docker_host: str, docker_client: docker.DockerClient,
                        clipper_images: dict[str, float]) -> Iterator[Callable[[], ContainerManager]]:
        with managers(docker_host, docker_client) as make:
            yield lambda: make("contract")

    def running(self, manager: ContainerManager) -> list[str]:
        assert isinstance(manager, DockerContainerManager)
        return [container.name for container in manager.containers()]  # running or not: nothing may be left
