"""Registers the Keras and TensorFlow deployers with clipper (entry point group ``clipper``); imports no
TensorFlow."""

from __future__ import annotations

from clipper_core import hookimpl
from clipper_core.interfaces import Deployer


@hookimpl
def clipper_register_deployers() -> list[type[Deployer]]:
    from clipper_deployer_tensorflow.deployer import KerasDeployer, TensorFlowDeployer

    return [TensorFlowDeployer, KerasDeployer]
