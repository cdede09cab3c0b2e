"""Deployer: turns a user's model into a model directory that a container can load.

Admin side (in the user's process)::

    manifest = DeployerClass().save(model_dir, obj, **options)   # writes clipper_model.json + artefacts
    DeployerClass().deploy(conn, name, version, input_type, obj, **options)
        # save into a temporary directory, then conn.build_and_deploy_model(...) with it

Container side (in ``python -m clipper_container``, which imports only the loader named in the manifest, so
it needs neither clipper-core nor pluggy)::

    predictor = load(model_dir)        # the manifest's "loader": "package.module:function"
    outputs = predictor.predict(batch) # same length as the batch

The manifest (``clipper_model.json``) records ``deployer``, ``loader``, ``input_type``, ``python`` (major.minor.micro),
``requirements`` ({"dist": "version"}) and deployer-specific keys. The container refuses to load a model whose
recorded versions are incompatible with its own, with a message naming both. Every deployer passes
:class:`clipper_core.testing.DeployerContract`.

A minimal deployer plugin is two files::

    # acme_deployer/__init__.py
    from clipper_core.interfaces import Deployer
    class AcmeDeployer(Deployer):
        name = "acme"
        loader = "acme_deployer.loader:load"      # a module the container can import without clipper-core
        def save(self, model_dir, obj, **options): ...   # write the artefacts and clipper_model.json

    # acme_deployer/hooks.py
    from clipper_core import hookimpl
    @hookimpl
    def clipper_register_deployers(): from acme_deployer import AcmeDeployer; return [AcmeDeployer]

and ``[project.entry-points.clipper] acme = "acme_deployer.hooks"`` in its pyproject.toml.
"""

from __future__ import annotations

import abc
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Protocol

__all__ = ["DeployTarget", "Deployer"]


class DeployTarget(Protocol):
    """What :meth:`Deployer.deploy` deploys through: a ``ClipperConnection`` (Clipper's method and arguments)."""

    def build_and_deploy_model(self, name: str, version: Any, input_type: str, model_data_path: str,
                               base_image: str = ..., labels: list[str] | None = ...,
                               container_registry: str | None = ..., num_replicas: int = ...,
                               batch_size: int = ..., pkgs_to_install: list[str] | None = ...) -> None: ...


class Deployer(abc.ABC):
    name: ClassVar[str]
    loader: ClassVar[str]
    """Import path ``module:function`` of the container-side loader."""
    file_suffixes: ClassVar[tuple[str, ...]] = ()
    """Model files :meth:`save` also takes as a path instead of an object, by suffix (``(".skops", ".joblib")``):
    ``clipper deploy FILE`` and a clipper file's ``file:`` pick the deployer of a file by them."""
    accepts_directory: ClassVar[bool] = False
    """Whether :meth:`save` takes the path of a directory (a TensorFlow SavedModel)."""

    @classmethod
    def model_path(cls, obj: Any) -> Path | None:
        """``obj`` as the path of a model file (by :attr:`file_suffixes`) or directory (:attr:`accepts_directory`)
        this deployer takes, else None (then it is a model object, or something :meth:`save` refuses)."""
        if not isinstance(obj, (str, os.PathLike)):
            return None
        path = Path(obj)
        if path.is_dir():
            return path if cls.accepts_directory else None
        return path if path.suffix.lower() in {suffix.lower() for suffix in cls.file_suffixes} else None

    @abc.abstractmethod
    def save(self, model_dir: Path, obj: Any, **options: Any) -> dict[str, Any]:
        """Write the model directory; return the manifest written.

        ``options`` always include ``input_type``; :meth:`deploy` adds ``name``, ``version`` and
        ``pkgs_to_install``. Raise TypeError or ValueError, naming what was given, for what cannot be saved."""

    def deploy(self, conn: DeployTarget, name: str, version: Any, input_type: str, obj: Any, *,
               base_image: str = "default", labels: list[str] | None = None, registry: str | None = None,
               num_replicas: int = 1, batch_size: int = -1, pkgs_to_install: list[str] | None = None,
               **save_options: Any) -> None:
        """Save ``obj`` into a temporary model directory, then build it into what the container manager runs,
        register it as the current version of ``name`` and start ``num_replicas`` replicas, all through
        ``conn.build_and_deploy_model``. The directory is removed afterwards (the manager has copied or built
        what it needs by then).

        :param conn: a started or connected ``ClipperConnection``
        :param version: any value; recorded as its ``str``
        :param registry: the container registry an image is pushed to (Clipper's ``registry``)
        :param save_options: passed on to :meth:`save` (e.g. ``func``, ``sample_input``, ``format``)
        """
        version = str(version)
        with tempfile.TemporaryDirectory(prefix=f"clipper-{self.name}-") as tmp:
            self.save(Path(tmp), obj, input_type=input_type, name=name, version=version,
                      pkgs_to_install=pkgs_to_install, **save_options)
            conn.build_and_deploy_model(name, version, input_type, tmp, base_image, labels, registry,
                                        num_replicas, batch_size, pkgs_to_install)
