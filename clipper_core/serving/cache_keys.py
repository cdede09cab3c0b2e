"""The exact bytes of a decoded input: the prediction cache's key (with model and version) and the key that
joins feedback with remembered predictions. Never a hash: equal keys mean equal inputs."""

from __future__ import annotations

from typing import Any

__all__ = ["item_key"]


def item_key(item: Any) -> bytes:
    """``str`` as UTF-8, ``bytes`` as they are, numpy arrays as their raw buffer."""
    if item.__class__ is str:
        return item.encode()
    if item.__class__ is bytes:
        return item
    return item.tobytes()
