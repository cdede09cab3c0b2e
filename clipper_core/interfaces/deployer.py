"""Deployer: turns a user's model into a model directory that a container can load.

Admin side (in the user's process)::

    manifest = DeployerClass().save(model_dir, obj, **options)   # writes clipper_model.json + artefacts

Container side (in ``python -m clipper_container``, which imports only the loader named in the manifest, so
it needs neither clipper-core nor pluggy)::

    predictor = load(model_dir)        # the manifest's "loader": "package.module:function"
    outputs = predictor.predict(batch) # same length as the batch

The manifest (``clipper_model.json``) records ``deployer``, ``loader``, ``input_type``, ``python`` (major.minor.micro),
``requirements`` ({"dist": "version"}) and deployer-specific keys. The container refuses to load a model whose
recorded versions are incompatible with its own, with a message naming both.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["Deployer"]


class Deployer(abc.ABC):
    name: ClassVar[str]
    loader: ClassVar[str]
    """Import path ``module:function`` of the container-side loader."""

    @abc.abstractmethod
    def save(self, model_dir: Path, obj: Any, **options: Any) -> dict[str, Any]:
        """Write the model directory; return the manifest written."""
