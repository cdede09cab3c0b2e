"""Progress of a long operation (a replica starting, an image building) on one line of stderr that rewrites
itself, only when stderr is a terminal: piped or redirected output, logs and CI stay quiet.

::

    with Progress() as progress:
        while waiting:
            progress.update(f"m:1: {ready}/{wanted} replicas ready")
        progress.done("m:1 ready")
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TextIO

__all__ = ["Progress"]

_CLEAR = "\r\x1b[K"
"""Back to the line's start and clear it (ANSI erase in line), so a shorter text leaves nothing behind."""


class Progress:
    """One self-rewriting status line.

    :param stream: where it writes (default ``sys.stderr``)
    :param enabled: whether to write at all (default: whether ``stream`` is a terminal)
    """

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self._shown = ""

    def update(self, text: str) -> None:
        """Show ``text`` in place of the line shown before (written only when it changed)."""
        if not self.enabled or text == self._shown:
            return
        self.stream.write(_CLEAR + text)
        self.stream.flush()
        self._shown = text

    def done(self, text: str | None = None) -> None:
        """End the line: ``text`` stays on the terminal (else the line is cleared)."""
        if not self.enabled:
            return
        if text is not None:
            self.stream.write(_CLEAR + text + "\n")
        elif self._shown:
            self.stream.write(_CLEAR)
        self.stream.flush()
        self._shown = ""

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._shown:
            self.done()
