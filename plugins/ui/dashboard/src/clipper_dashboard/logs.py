"""The last lines of a log file the admin API lists (``/admin/get_logs``: the replicas' logs and the server's),
read from the end of the file: a large log costs a few blocks, not its size."""

from __future__ import annotations

import os

__all__ = ["MAX_LINES", "tail"]

MAX_LINES = 1000
_BLOCK = 64 * 1024


def tail(path: str, lines: int) -> list[str]:
    """The last ``lines`` lines of ``path`` (fewer when it has fewer), decoded as UTF-8 with replacement."""
    with open(path, "rb") as fh:
        end = fh.seek(0, os.SEEK_END)
        data = b""
        position = end
        while position > 0 and data.count(b"\n") <= lines:
            step = min(_BLOCK, position)
            position -= step
            fh.seek(position)
            data = fh.read(step) + data
    text = data.decode("utf-8", errors="replace")
    parts = text.splitlines()
    return parts[-lines:] if lines > 0 else []
