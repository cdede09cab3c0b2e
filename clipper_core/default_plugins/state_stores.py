"""The built-in state stores: SQLite (the default), memory, and Redis when the ``redis`` package imports.

Without redis (``pip install clipper-core`` without the ``[redis]`` extra) a ``redis://`` value is refused by
the registry with what to install (:data:`clipper_core.plugins.OPTIONAL_SCHEMES`).
"""

from __future__ import annotations

from clipper_core.hookspecs import hookimpl
from clipper_core.state.base import StateStore
from clipper_core.state.memory import MemoryStateStore
from clipper_core.state.sqlite import SqliteStateStore

__all__: list[str] = []


@hookimpl
def clipper_register_state_stores() -> list[type[StateStore]]:
    stores: list[type[StateStore]] = [SqliteStateStore, MemoryStateStore]
    try:
        from clipper_core.state.redis import RedisStateStore
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "redis":
            raise  # not the optional package: a real error
        return stores
    return [*stores, RedisStateStore]
