"""A real Docker engine for the plugin's tests, and clipper's images built on it once per session.

The engine is the private one ``scripts/docker-engine.sh`` starts (installing docker.io when missing), stopped
at the end if this session started it and no other session still uses it; ``CLIPPER_TEST_DOCKER_HOST`` points
the tests at another engine instead. Without a usable engine the Docker tests skip, except under ``CI=true``,
where they fail.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import docker
import pytest
from docker_test_helpers import Make, managers

from clipper_core.processes import pid_alive
from clipper_core.testing.services import service_unavailable

REPO = Path(__file__).resolve().parents[4]
ENGINE = REPO / "scripts" / "docker-engine.sh"
BUILD = REPO / "containers" / "docker" / "build.sh"
ENGINE_DIR = Path(os.environ.get("CLIPPER_DOCKER_DIR", "/tmp/clipper-docker"))


def _unavailable(reason: str) -> NoReturn:
    service_unavailable(f"no Docker engine: {reason}")


@pytest.fixture(scope="session")
def docker_host() -> Iterator[str]:
    """``DOCKER_HOST`` of a running engine (the private one unless ``CLIPPER_TEST_DOCKER_HOST`` is set)."""
    explicit = os.environ.get("CLIPPER_TEST_DOCKER_HOST")
    if explicit:
        yield explicit
        return
    status = subprocess.run(["bash", str(ENGINE), "status"], capture_output=True, text=True, timeout=60)
    started = status.returncode != 0
    try:
        done = subprocess.run(["bash", str(ENGINE), "start"], capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        _unavailable("scripts/docker-engine.sh start took more than 900 s")
    if done.returncode != 0:
        _unavailable(f"scripts/docker-engine.sh start failed: {done.stderr.strip()[-2000:]}")
    host = done.stdout.strip().splitlines()[-1].split("=", 1)[1]
    # Several test sessions may share the engine: the last one out stops it (if a session started it).
    sessions = ENGINE_DIR / "sessions"
    sessions.mkdir(parents=True, exist_ok=True)
    mine = sessions / str(os.getpid())
    mine.touch()
    try:
        yield host
    finally:
        mine.unlink(missing_ok=True)
        others = [p for p in sessions.iterdir() if p.name.isdigit() and pid_alive(int(p.name))]
        if started and not others:
            subprocess.run(["bash", str(ENGINE), "stop"], capture_output=True, timeout=180)


@pytest.fixture(scope="session")
def docker_client(docker_host: str) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=docker_host, timeout=120)
    try:
        client.ping()
    except docker.errors.DockerException as exc:
        _unavailable(f"{docker_host} does not answer: {exc}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def clipper_images(docker_host: str, docker_client: docker.DockerClient) -> dict[str, float]:
    """Build clipper's images once per session (``containers/docker/build.sh``: cached after the first run)."""
    started = time.monotonic()
    done = subprocess.run(["bash", str(BUILD)], capture_output=True, text=True, timeout=1500,
                          env={**os.environ, "DOCKER_HOST": docker_host})
    assert done.returncode == 0, f"containers/docker/build.sh failed:\n{done.stdout}\n{done.stderr[-4000:]}"
    return {"build_seconds": time.monotonic() - started}


@pytest.fixture
def make_manager(docker_host: str, docker_client: docker.DockerClient, clipper_images: dict[str, float]
                 ) -> Iterator[Make]:
    """``make_manager("a", **kwargs)``: a DockerContainerManager for a cluster unique to this session (ports 0:
    Docker picks free host ports). Every cluster made is removed afterwards, with its volume and model images."""
    with managers(docker_host, docker_client) as make:
        yield make
