"""Fixtures of the Docker plugin's tests. The engine and the images (``docker_host``, ``docker_client``,
``clipper_images``) come from :mod:`clipper_docker.testing`, a pytest plugin the package registers, so that other
plugins' tests share them."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest
from docker_test_helpers import Make, managers


@pytest.fixture
def make_manager(docker_host: str, docker_client: docker.DockerClient, clipper_images: dict[str, float]
                 ) -> Iterator[Make]:
    """``make_manager("a", **kwargs)``: a DockerContainerManager for a cluster unique to this session (ports 0:
    Docker picks free host ports). Every cluster made is removed afterwards, with its volume and model images."""
    with managers(docker_host, docker_client) as make:
        yield make
