"""Registers the scikit-learn deployer with clipper (entry point group ``clipper``); imports no scikit-learn."""

from __future__ import annotations

from clipper_core import hookimpl
from clipper_core.interfaces import Deployer


@hookimpl
def clipper_register_deployers() -> list[type[Deployer]]:
    from clipper_deployer_sklearn.deployer import SklearnDeployer

    return [SklearnDeployer]
