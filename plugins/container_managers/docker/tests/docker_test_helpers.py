"""Helpers of the Docker tests: managers of clusters unique to the session, removed afterwards; queries through
a cluster's published query port (127.0.0.1 only)."""

from __future__ import annotations

import contextlib
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import docker
from clipper_docker import DockerContainerManager
from clipper_docker.testing import cluster_managers

Make = Callable[..., DockerContainerManager]
"""The ``make_manager`` fixture: ``make_manager(suffix, **DockerContainerManager options)``."""


@contextlib.contextmanager
def managers(docker_host: str, docker_client: docker.DockerClient) -> Iterator[Make]:
    """``make(suffix, **kwargs)``: a DockerContainerManager of the cluster ``t<pid>-<suffix>`` (ports 0: Docker
    picks free host ports). On exit every cluster made is removed, with its volume and model images."""
    socket = docker_host[len("unix://"):] if docker_host.startswith("unix://") else None

    def make(suffix: str, **kwargs: Any) -> DockerContainerManager:
        options: dict[str, Any] = {"clipper_query_port": 0, "clipper_management_port": 0, "clipper_rpc_port": 0,
                                   "redis_port": 0, "docker_client": docker_client, "docker_socket": socket,
                                   "deploy_timeout": 120, "startup_timeout": 90}
        return DockerContainerManager(f"t{os.getpid()}-{suffix}", **{**options, **kwargs})

    with cluster_managers(docker_client, make) as made:
        yield made


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
