"""pytest fixtures for tests that need a real Docker engine and clipper's images (entry point ``pytest11``, so
the Docker plugin's tests and any other plugin's, Kubernetes' among them, share one engine and one build).

* ``docker_host``: ``DOCKER_HOST`` of a running engine: the private one ``scripts/docker-engine.sh`` starts
  (installing docker.io when missing), stopped at the end if this session started it and no other session still
  uses it; ``CLIPPER_TEST_DOCKER_HOST`` points the tests at another engine instead.
* ``docker_client``: a ``docker.DockerClient`` on it.
* ``clipper_images``: clipper's images, built once per session by ``containers/docker/build.sh``.

The scripts are found in the clipper checkout: ``CLIPPER_REPO``, else the first parent of this file or of the
working directory that holds ``scripts/docker-engine.sh``. Without a usable engine the tests skip, except under
``CI=true``, where they fail.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import docker
import pytest

from clipper_core.processes import pid_alive
from clipper_core.testing.services import service_unavailable

__all__ = ["clipper_images", "cluster_managers", "docker_client", "docker_host", "repo_root"]

ENGINE_DIR = Path(os.environ.get("CLIPPER_DOCKER_DIR", "/tmp/clipper-docker"))
M = TypeVar("M")


@contextlib.contextmanager
def cluster_managers(client: docker.DockerClient, factory: Callable[..., M]) -> Iterator[Callable[..., M]]:
    """``make(suffix, **kwargs)``: ``factory(suffix, **kwargs)``, a container manager of a cluster of its own. On
    exit every cluster made is stopped (``stop_all(graceful=False, remove_volumes=True)``) and the model images
    labelled with its name are removed."""
    from clipper_docker.names import CLUSTER_LABEL

    made: list[Any] = []

    def make(suffix: str, **kwargs: Any) -> M:
        manager = factory(suffix, **kwargs)
        made.append(manager)
        return manager

    try:
        yield make
    finally:
        for manager in made:
            with contextlib.suppress(Exception):
                manager.stop_all(graceful=False, remove_volumes=True)
            for image in client.images.list(filters={"label": f"{CLUSTER_LABEL}={manager.cluster}"}):
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(image.id, force=True)


def repo_root() -> Path:
    """The clipper checkout whose scripts start the engine and build the images."""
    if os.environ.get("CLIPPER_REPO"):
        return Path(os.environ["CLIPPER_REPO"])
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for parent in (start, *start.parents):
            if (parent / "scripts" / "docker-engine.sh").is_file():
                return parent
    _unavailable("scripts/docker-engine.sh not found: set CLIPPER_REPO to the clipper checkout")


def _unavailable(reason: str) -> NoReturn:
    service_unavailable(f"no Docker engine: {reason}")


@pytest.fixture(scope="session")
def docker_host() -> Iterator[str]:
    """``DOCKER_HOST`` of a running engine (the private one unless ``CLIPPER_TEST_DOCKER_HOST`` is set)."""
    explicit = os.environ.get("CLIPPER_TEST_DOCKER_HOST")
    if explicit:
        yield explicit
        return
    engine = repo_root() / "scripts" / "docker-engine.sh"
    status = subprocess.run(["bash", str(engine), "status"], capture_output=True, text=True, timeout=60)
    started = status.returncode != 0
    try:
        done = subprocess.run(["bash", str(engine), "start"], capture_output=True, text=True, timeout=900)
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
            subprocess.run(["bash", str(engine), "stop"], capture_output=True, timeout=180)


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
    build = repo_root() / "containers" / "docker" / "build.sh"
    done = subprocess.run(["bash", str(build)], capture_output=True, text=True, timeout=1500,
                          env={**os.environ, "DOCKER_HOST": docker_host})
    assert done.returncode == 0, f"containers/docker/build.sh failed:\n{done.stdout}\n{done.stderr[-4000:]}"
    return {"build_seconds": time.monotonic() - started}
