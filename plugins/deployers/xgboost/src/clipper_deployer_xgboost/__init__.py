"""clipper-deployer-xgboost: serve fitted XGBoost models with clipper.

``deploy_xgboost_model`` and ``create_endpoint`` (admin side) are imported on first use, so that the container,
which imports only :mod:`clipper_deployer_xgboost.loader`, needs neither clipper-core nor pluggy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clipper_deployer_xgboost.deployer import XGBoostDeployer, create_endpoint, deploy_xgboost_model

__all__ = ["XGBoostDeployer", "create_endpoint", "deploy_xgboost_model"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from clipper_deployer_xgboost import deployer

        return getattr(deployer, name)
    raise AttributeError(f"module 'clipper_deployer_xgboost' has no attribute {name!r}")
