"""clipper: low-latency prediction serving with adaptive batching, caching and model selection.

``from clipper_core import ClipperConnection, LocalContainerManager`` gives the Clipper admin API; plugins
write ``from clipper_core import hookimpl``. Importing this package does not import aiohttp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clipper_core.errors import ClipperException, UnconnectedException
from clipper_core.hookspecs import hookimpl, hookspec
from clipper_core.version import __version__

if TYPE_CHECKING:
    from clipper_core.client.connection import ClipperConnection
    from clipper_core.default_plugins.local_manager import LocalContainerManager

__all__ = ["ClipperConnection", "ClipperException", "LocalContainerManager", "UnconnectedException", "__version__",
           "hookimpl", "hookspec"]


def __getattr__(name: str) -> Any:
    # Lazy: ``from clipper_core import hookimpl`` in a plugin must not pull in numpy and cloudpickle.
    if name == "ClipperConnection":
        from clipper_core.client.connection import ClipperConnection

        return ClipperConnection
    if name == "LocalContainerManager":
        from clipper_core.default_plugins.local_manager import LocalContainerManager

        return LocalContainerManager
    raise AttributeError(f"module 'clipper_core' has no attribute {name!r}")
