"""The Python-closure deployer: any ``func(batch) -> list`` pickled with cloudpickle, with what it captures."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any, ClassVar

import cloudpickle
from clipper_container.loaders import python_closure

from clipper_core.hookspecs import hookimpl
from clipper_core.interfaces import Deployer

__all__ = ["PythonClosureDeployer"]


def _pickle_by_value(func: Any) -> None:
    """Functions from modules the container cannot import (a script, __main__, a test file) are pickled by
    value; functions from installed packages stay references, so the package must be installed there."""
    module_name = getattr(func, "__module__", None)
    if not module_name or module_name == "__main__":
        return  # cloudpickle already pickles __main__ by value
    module = sys.modules.get(module_name)
    if module is None:
        return
    path = getattr(module, "__file__", None) or ""
    installed = any(part in path for part in ("site-packages", "dist-packages")) or not path
    if not installed and inspect.ismodule(module):
        cloudpickle.register_pickle_by_value(module)


class PythonClosureDeployer(Deployer):
    name: ClassVar[str] = "python_closure"
    loader: ClassVar[str] = python_closure.LOADER

    def save(self, model_dir: Path, obj: Any, **options: Any) -> dict[str, Any]:
        """Write ``func.pkl`` and ``clipper_model.json`` (records Python and cloudpickle versions, which the
        container checks before unpickling). Options: ``input_type`` (required), ``name``, ``version``,
        ``pkgs_to_install`` (recorded as requirements)."""
        if not callable(obj):
            raise TypeError(f"the python-closure deployer needs a function, got {type(obj).__name__}")
        _pickle_by_value(obj)
        extra = {}
        if options.get("pkgs_to_install"):
            extra["pkgs_to_install"] = list(options["pkgs_to_install"])
        return python_closure.save(model_dir, obj, input_type=str(options["input_type"]),
                                   name=options.get("name"), version=options.get("version"), **extra)


@hookimpl
def clipper_register_deployers() -> list[type[Deployer]]:
    return [PythonClosureDeployer]
