"""What a test does when a service it needs (redis-server, a Docker engine) cannot be had."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

__all__ = ["service_unavailable"]


def service_unavailable(message: str) -> NoReturn:
    """Skip the test, except under ``CI=true``, where a missing service is a failure (CI must not silently skip
    what it is there to run)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: required)")
    pytest.skip(message)
