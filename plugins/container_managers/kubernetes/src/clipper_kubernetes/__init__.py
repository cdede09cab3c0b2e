"""clipper-kubernetes: clipper on Kubernetes (apps/v1 Deployments and v1 Services, with the official client).

``from clipper_kubernetes import KubernetesContainerManager``; importing the package alone does not import the
kubernetes client (the plugin registry imports it when the manager is asked for).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clipper_kubernetes.manager import KubernetesContainerManager

__all__ = ["KubernetesContainerManager", "__version__"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "KubernetesContainerManager":
        from clipper_kubernetes.manager import KubernetesContainerManager

        return KubernetesContainerManager
    raise AttributeError(f"module 'clipper_kubernetes' has no attribute {name!r}")
