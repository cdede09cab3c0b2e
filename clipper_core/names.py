"""Names clipper accepts for applications, models and versions, and the record values that stand for "none".

One definition, used by the management API's field checks, the OpenAPI documents and every container manager:
names travel into URL paths, store keys, file names, Docker container names and image tags.
"""

from __future__ import annotations

import re

from clipper_core.errors import InvalidInput

__all__ = ["NAME_LIMIT", "NAME_PATTERN", "NO_CONTAINER", "check_name"]

NAME_LIMIT = 128
"""Longest accepted name, in characters."""
NAME_PATTERN = "[A-Za-z0-9._-]+"
"""Letters, digits, '-', '_' and '.'; besides, a name is not '.' and has no '..' (see :func:`check_name`)."""
NO_CONTAINER = "NO_CONTAINER"
"""Clipper's ``container_name`` of a model registered without a runnable image (nothing to start)."""

_NAME = re.compile(NAME_PATTERN)


def check_name(key: str, value: str) -> str:
    """``value`` if it is an acceptable name, else InvalidInput naming the field ``key`` and the rule."""
    if not value:
        raise InvalidInput(f"'{key}' is empty; expected a non-empty name")
    if len(value) > NAME_LIMIT:
        raise InvalidInput(f"'{key}' is {len(value)} characters long; at most {NAME_LIMIT} are allowed")
    if not _NAME.fullmatch(value) or ".." in value or value == ".":
        raise InvalidInput(f"'{key}' {value!r} contains a character that is not allowed (or is '.' or has '..'); use "
                           "letters, digits, '-', '_' and '.'")
    return value
