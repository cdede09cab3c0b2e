"""clipper-deployer-pytorch: serve PyTorch modules with clipper.

``deploy_pytorch_model`` and ``create_endpoint`` (admin side) are imported on first use, so that the container,
which imports only :mod:`clipper_deployer_pytorch.loader`, needs neither clipper-core nor pluggy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clipper_deployer_pytorch.deployer import PyTorchDeployer, create_endpoint, deploy_pytorch_model

__all__ = ["PyTorchDeployer", "create_endpoint", "deploy_pytorch_model"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from clipper_deployer_pytorch import deployer

        return getattr(deployer, name)
    raise AttributeError(f"module 'clipper_deployer_pytorch' has no attribute {name!r}")
