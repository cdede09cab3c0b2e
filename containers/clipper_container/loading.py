"""Turn a model directory into a :class:`Predictor`: read the manifest, check compatibility, call its loader."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from clipper_container.manifest import ManifestError, check_compatible, read_manifest

__all__ = ["Predictor", "load_model", "resolve_loader"]


@runtime_checkable
class Predictor(Protocol):
    """What a loader returns: ``predict`` maps a batch to a sequence of outputs of the same length.

    The batch is what :func:`clipper_container.protocol.decode_inputs` produced: a read-only [n, d] numpy
    array, a list of 1-D arrays (ragged numeric inputs), a list of ``str`` or a list of ``bytes``. An output
    may be an ``Exception`` instance to fail only that item.
    """

    def predict(self, batch: Any) -> Sequence[Any]:
        """Return one output per input, in order."""
        ...


def resolve_loader(import_path: str) -> Callable[[str], Any]:
    """Import ``"package.module:function"`` and return the function; raise :class:`ManifestError` if absent."""
    module_name, _, attr = import_path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ManifestError(
            f"loader {import_path!r}: cannot import {module_name!r} ({exc}); install the package that provides "
            "it in the container"
        ) from None
    loader = getattr(module, attr, None)
    if not callable(loader):
        raise ManifestError(f"loader {import_path!r}: {module_name!r} has no function {attr!r}")
    return loader


def load_model(model_dir: str | os.PathLike[str], manifest: Mapping[str, Any] | None = None) -> Predictor:
    """Load the model in ``model_dir``.

    Reads ``clipper_model.json`` (unless ``manifest`` is given), raises
    :class:`~clipper_container.manifest.IncompatibleModel` if it was saved in an incompatible environment,
    imports the manifest's ``loader`` and returns what it returns for ``model_dir``.
    """
    manifest = read_manifest(model_dir) if manifest is None else manifest
    check_compatible(manifest)
    loader = resolve_loader(manifest["loader"])
    predictor = loader(os.fspath(model_dir))
    if not callable(getattr(predictor, "predict", None)):
        raise ManifestError(
            f"loader {manifest['loader']!r} returned {type(predictor).__name__}, which has no predict(batch) method"
        )
    return predictor
