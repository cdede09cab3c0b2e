"""Start and stop a server's long-lived resources in order: each resource is one async generator (aiohttp's
``cleanup_ctx`` style) that starts it before its ``yield`` and stops it after; stopping unwinds in reverse
order, runs every step even when one fails, and raises the failures together."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

__all__ = ["CleanupError", "Lifecycle"]

log = logging.getLogger(__name__)

SLOW_STOP_SECONDS = 2.0
"""A resource that takes longer than this to stop is named in a warning (what a hung shutdown waited on)."""


class CleanupError(Exception):
    """One or more resources failed to stop (every other one was still stopped); ``errors`` holds them.

    (Not an ``ExceptionGroup``: clipper still runs on Python 3.10.)"""

    def __init__(self, errors: list[Exception]) -> None:
        super().__init__("; ".join(f"{type(e).__name__}: {e}" for e in errors))
        self.errors = errors


class Lifecycle:
    """The resources started so far, in start order."""

    def __init__(self) -> None:
        self._started: list[tuple[str, AsyncIterator[None]]] = []

    async def start(self, name: str, resource: AsyncIterator[None]) -> None:
        """Run ``resource`` up to its ``yield``; it is stopped by :meth:`stop` (not if it fails to start)."""
        await anext(resource)
        self._started.append((name, resource))

    async def stop(self) -> None:
        """Stop every started resource, last started first."""
        errors: list[Exception] = []
        while self._started:
            name, resource = self._started.pop()
            began = time.monotonic()
            try:
                await anext(resource)
            except StopAsyncIteration:
                pass
            except Exception as exc:
                log.exception("stopping %s failed", name)
                errors.append(exc)
            else:
                errors.append(RuntimeError(f"resource {name} yielded more than once"))
            took = time.monotonic() - began
            if took > SLOW_STOP_SECONDS:
                log.warning("stopping %s took %.1f s", name, took)
        if errors:
            raise CleanupError(errors)
