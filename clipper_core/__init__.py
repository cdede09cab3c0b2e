"""clipper: low-latency prediction serving."""

from clipper_core.hookspecs import hookimpl, hookspec

__all__ = ["hookimpl", "hookspec"]
__version__ = "0.1.0"
