"""Turn a model's source into a model directory: a ``FILE.py:FUNCTION`` closure or a framework model file saved by
its deployer (the plugin registry's: third-party deployers work the same way), or a saved model directory as it is.
``clipper deploy`` and ``clipper apply`` both deploy through here."""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clipper_core.errors import ClipperException
from clipper_core.interfaces import Deployer
from clipper_core.plugins import PluginRegistry

__all__ = ["CLOSURE_DEPLOYER", "deployer_for", "load_function", "model_directory", "takes_path"]

CLOSURE_DEPLOYER = "python_closure"
"""The built-in deployer of ``FILE.py:FUNCTION``."""


def load_function(spec: str) -> Any:
    """The function ``FILE.py:FUNCTION`` names, its module registered for pickling by value (the file is not
    importable inside a replica)."""
    path, sep, func_name = spec.rpartition(":")
    if not sep or not path.endswith(".py"):
        raise ClipperException(f"expected FILE.py:FUNCTION, got {spec!r}")
    file = Path(path).resolve()
    if not file.is_file():
        raise ClipperException(f"no such file: {file}")
    module_spec = importlib.util.spec_from_file_location(file.stem, file)
    if module_spec is None or module_spec.loader is None:
        raise ClipperException(f"cannot import {file}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = module  # cloudpickle pickles by value only modules it can find there
    try:
        module_spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ClipperException(f"{file}, line {exc.lineno}: {exc.msg}") from None
    except Exception as exc:
        raise ClipperException(f"importing {file} failed: {type(exc).__name__}: {exc}") from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ClipperException(f"{file} has no function {func_name!r}")
    import cloudpickle

    cloudpickle.register_pickle_by_value(module)
    return func


def takes_path(cls: type[Deployer], path: Path) -> bool:
    """Whether deployer ``cls`` saves the model at ``path`` (by its ``file_suffixes``, or ``accepts_directory``)."""
    return cls.model_path(path) is not None


def deployer_for(registry: PluginRegistry, path: Path, name: str | None, hint: str = "--deployer"
                 ) -> type[Deployer]:
    """The deployer named ``name`` (which must take ``path``), else the one installed deployer that does (else a
    ClipperException ending with ``hint``, where the user names one)."""
    if name is not None:
        cls = registry.deployers.get(name)
        if not takes_path(cls, path):
            accepted = [*cls.file_suffixes, *(["a directory"] if cls.accepts_directory else [])]
            raise ClipperException(f"deployer {name!r} does not take {path.name}" + (
                f"; it takes {', '.join(accepted)}" if accepted else "; it deploys no model files"))
        return cls
    takes = [n for n in registry.deployers.names() if takes_path(registry.deployers.get(n), path)]
    if len(takes) != 1:
        kind = "a directory" if path.is_dir() else f"a {path.suffix or 'suffix-less'} file"
        raise ClipperException(("no installed deployer takes " if not takes else "several deployers take ")
                               + kind + (f" ({', '.join(takes)})" if takes else "") + f"; name one with {hint}")
    return registry.deployers.get(takes[0])


@contextmanager
def model_directory(registry: PluginRegistry, kind: str, value: str, deployer: str | None, *, name: str,
                    version: str, input_type: str, options: dict[str, Any] | None = None,
                    pkgs_to_install: list[str] | None = None) -> Iterator[str]:
    """A model directory for the source (``kind`` ``module``, ``file`` or ``model_dir``), written into a temporary
    directory (removed afterwards) unless it is one already.

    :param options: the deployer's save options (``method``, ``format``, ``sample_input``...)
    """
    if kind == "model_dir":
        yield value
        return
    if kind == "module":
        obj: Any = load_function(value)
        cls = registry.deployers.get(deployer or CLOSURE_DEPLOYER)
    elif kind == "file":
        path = Path(value)
        obj, cls = path, deployer_for(registry, path, deployer)
    else:
        raise ClipperException(f"no model directory for a source of kind {kind!r}")
    with tempfile.TemporaryDirectory(prefix=f"clipper-{cls.name}-") as tmp:
        try:
            cls().save(Path(tmp), obj, input_type=input_type, name=name, version=version,
                       pkgs_to_install=pkgs_to_install, **(options or {}))
        except (TypeError, ValueError, OSError) as exc:
            raise ClipperException(f"deployer {cls.name!r} could not save {value}: {exc}") from None
        yield tmp
