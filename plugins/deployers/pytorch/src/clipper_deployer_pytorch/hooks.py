"""Registers the PyTorch deployer with clipper (entry point group ``clipper``); imports no torch."""

from __future__ import annotations

from clipper_core import hookimpl
from clipper_core.interfaces import Deployer


@hookimpl
def clipper_register_deployers() -> list[type[Deployer]]:
    from clipper_deployer_pytorch.deployer import PyTorchDeployer

    return [PyTorchDeployer]
