"""Clipper's ``clipper_admin.deployers.keras`` under its new name::

    from clipper_deployer_tensorflow import keras as keras_deployer
    keras_deployer.create_endpoint(conn, "mnist", "floats", model_path_or_object=model)
"""

from __future__ import annotations

from clipper_deployer_tensorflow.deployer import create_keras_endpoint as create_endpoint
from clipper_deployer_tensorflow.deployer import deploy_keras_model

__all__ = ["create_endpoint", "deploy_keras_model"]
