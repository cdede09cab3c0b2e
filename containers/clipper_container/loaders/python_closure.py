"""Python closures: a function ``func(batch) -> list`` pickled with cloudpickle as ``func.pkl``.

:func:`save` is the admin side (the python-closure deployer calls it); :func:`load` is the container side.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import cloudpickle

from clipper_container.manifest import environment, write_manifest

__all__ = ["FUNC_FILE", "LOADER", "ClosurePredictor", "load", "save"]

FUNC_FILE = "func.pkl"
LOADER = "clipper_container.loaders.python_closure:load"
DEPLOYER = "python_closure"


class ClosurePredictor:
    """Calls the unpickled function on each batch."""

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self.func = func

    def predict(self, batch: Any) -> Any:
        """Return ``func(batch)``; the runtime checks that it is a sequence of the batch's length."""
        return self.func(batch)


def load(model_dir: str | os.PathLike[str]) -> ClosurePredictor:
    """Unpickle ``model_dir/func.pkl``."""
    path = Path(model_dir) / FUNC_FILE
    with path.open("rb") as f:
        func = cloudpickle.load(f)
    if not callable(func):
        raise TypeError(f"{path} holds a {type(func).__name__}, not a function")
    return ClosurePredictor(func)


def save(
    model_dir: str | os.PathLike[str],
    func: Callable[[Any], Any],
    *,
    input_type: str,
    name: str | None = None,
    version: str | None = None,
    requirements: Iterable[str] = ("cloudpickle",),
    **extra: Any,
) -> dict[str, Any]:
    """Pickle ``func`` into ``model_dir/func.pkl`` and write the manifest; return the manifest.

    The manifest records this Python and the installed versions of the ``requirements`` distributions
    (cloudpickle by default), which the container checks before unpickling. ``extra`` keys are stored as they
    are.
    """
    directory = Path(model_dir)
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / FUNC_FILE).open("wb") as f:
        cloudpickle.dump(func, f)
    manifest: dict[str, Any] = {"deployer": DEPLOYER, "loader": LOADER, "input_type": input_type, **extra}
    if name is not None:
        manifest["name"] = name
    if version is not None:
        manifest["version"] = str(version)
    manifest.update(environment(requirements))
    write_manifest(directory, manifest)
    return manifest
