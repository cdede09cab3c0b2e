"""Helpers of the Docker tests: queries through a cluster's published query port (127.0.0.1 only)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from clipper_docker import DockerContainerManager

Make = Callable[..., DockerContainerManager]
"""The ``make_manager`` fixture: ``make_manager(suffix, **DockerContainerManager options)``."""


def predict(target: DockerContainerManager | str, app: str, body: Any, timeout: float = 10.0) -> tuple[int, Any]:
    """POST to ``app`` through the cluster's (first) published query port, or ``target`` = "host:port"."""
    addr = target if isinstance(target, str) else target.get_query_addr()
    request = urllib.request.Request(f"http://{addr}/{app}/predict", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def wait_for_output(target: DockerContainerManager | str, app: str, body: Any, expected: Any,
                    timeout: float = 30.0) -> dict[str, Any]:
    """Query until the app answers ``expected`` (not a default): a link or a new version made through the
    management frontend reaches the query frontend through Redis a moment later."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        status, last = predict(target, app, body)
        if status == 200 and not last.get("default") and last.get("output") == expected:
            return dict(last)
        time.sleep(0.05)
    raise AssertionError(f"{app} did not answer {expected!r} within {timeout} s; last answer {last!r}")
