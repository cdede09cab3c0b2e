"""Built-in plugins, registered exactly like external ones (each module has its ``@hookimpl``s).

:func:`builtin_plugins` maps each plugin name (usable in ``CLIPPER_DISABLE_PLUGINS``) to its module; the
modules are imported only when a plugin manager is built.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["BUILTIN_MODULES", "builtin_plugins"]

BUILTIN_MODULES: dict[str, str] = {
    "local": "clipper_core.default_plugins.local_manager",
    "python_closure": "clipper_core.default_plugins.closure_deployer",
    "default_policy": "clipper_core.default_plugins.default_policy",
    "lru": "clipper_core.default_plugins.lru_cache",
}


def builtin_plugins(blocked: set[str] | frozenset[str] = frozenset()) -> dict[str, ModuleType]:
    return {name: importlib.import_module(path) for name, path in BUILTIN_MODULES.items() if name not in blocked}
