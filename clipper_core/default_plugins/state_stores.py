"""The built-in state stores: SQLite (the default), memory, and Redis when the ``redis`` package imports."""

from __future__ import annotations

import importlib

from clipper_core.hookspecs import hookimpl
from clipper_core.state.base import StateStore
from clipper_core.state.memory import MemoryStateStore
from clipper_core.state.sqlite import SqliteStateStore

__all__ = ["OPTIONAL_SCHEMES", "missing_package"]

OPTIONAL_SCHEMES: dict[str, tuple[str, str]] = {
    scheme: ("redis", "clipper-core[redis]") for scheme in ("redis", "rediss", "unix")}
"""Schemes of built-in stores that need an optional package: scheme -> (the package's import name, what to
``pip install``). They are :attr:`RedisStateStore.url_schemes`, known here without importing redis."""


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def missing_package(scheme: str) -> tuple[str, str] | None:
    """(package, what to ``pip install``) when the built-in store for ``scheme`` needs a package that does not
    import, else None."""
    needed = OPTIONAL_SCHEMES.get(scheme)
    return needed if needed is not None and not _importable(needed[0]) else None


@hookimpl
def clipper_register_state_stores() -> list[type[StateStore]]:
    stores: list[type[StateStore]] = [SqliteStateStore, MemoryStateStore]
    if _importable("redis"):
        from clipper_core.state.redis_store import RedisStateStore

        stores.append(RedisStateStore)
    return stores
