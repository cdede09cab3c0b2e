"""clipper-deployer-sklearn: serve fitted scikit-learn estimators with clipper.

``deploy_sklearn_model`` and ``create_endpoint`` (admin side) are imported on first use, so that the container,
which imports only :mod:`clipper_deployer_sklearn.loader`, needs neither clipper-core nor pluggy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clipper_deployer_sklearn.deployer import SklearnDeployer, create_endpoint, deploy_sklearn_model

__all__ = ["SklearnDeployer", "create_endpoint", "deploy_sklearn_model"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from clipper_deployer_sklearn import deployer

        return getattr(deployer, name)
    raise AttributeError(f"module 'clipper_deployer_sklearn' has no attribute {name!r}")
