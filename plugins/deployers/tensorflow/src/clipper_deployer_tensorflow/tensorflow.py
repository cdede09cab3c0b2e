"""Clipper's ``clipper_admin.deployers.tensorflow`` under its new name::

    from clipper_deployer_tensorflow import tensorflow as tf_deployer
    tf_deployer.create_endpoint(conn, "mnist", "floats", tf_sess_or_saved_model_path="path/to/saved_model")
"""

from __future__ import annotations

from clipper_deployer_tensorflow.deployer import create_endpoint, deploy_tensorflow_model

__all__ = ["create_endpoint", "deploy_tensorflow_model"]
