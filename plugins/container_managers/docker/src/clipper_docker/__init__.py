"""clipper-docker: clipper on a Docker engine (Redis, frontends and model replicas as labelled containers).

``from clipper_docker import DockerContainerManager``; importing the package alone does not import the docker
SDK (the plugin registry imports it when the manager is asked for).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clipper_docker.manager import DockerContainerManager

__all__ = ["DockerContainerManager", "__version__"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "DockerContainerManager":
        from clipper_docker.manager import DockerContainerManager

        return DockerContainerManager
    raise AttributeError(f"module 'clipper_docker' has no attribute {name!r}")
