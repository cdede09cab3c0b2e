"""Registers :class:`DockerContainerManager` with clipper (entry point group ``clipper``, name ``docker``)."""

from __future__ import annotations

from clipper_core import hookimpl
from clipper_core.interfaces import ContainerManager


@hookimpl
def clipper_register_container_managers() -> list[type[ContainerManager]]:
    from clipper_docker.manager import DockerContainerManager

    return [DockerContainerManager]
