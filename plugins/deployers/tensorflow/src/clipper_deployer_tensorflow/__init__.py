"""clipper-deployer-tensorflow: serve Keras models (``.keras``) and TensorFlow SavedModels with clipper.

The admin-side names are imported on first use, so that the container, which imports only
:mod:`clipper_deployer_tensorflow.loader`, needs neither clipper-core nor pluggy. Clipper's two modules are
here too: ``from clipper_deployer_tensorflow import keras as keras_deployer`` and
``from clipper_deployer_tensorflow import tensorflow as tf_deployer``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clipper_deployer_tensorflow.deployer import (
        KerasDeployer,
        TensorFlowDeployer,
        create_endpoint,
        create_keras_endpoint,
        deploy_keras_model,
        deploy_tensorflow_model,
    )

__all__ = ["KerasDeployer", "TensorFlowDeployer", "create_endpoint", "create_keras_endpoint", "deploy_keras_model",
           "deploy_tensorflow_model"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from clipper_deployer_tensorflow import deployer

        return getattr(deployer, name)
    raise AttributeError(f"module 'clipper_deployer_tensorflow' has no attribute {name!r}")
