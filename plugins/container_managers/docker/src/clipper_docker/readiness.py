"""Readiness, checked and never assumed, within a deadline: none of the cluster's containers has exited, and
a model version's replicas are running and were welcomed by a frontend (each replica's ready file)."""

from __future__ import annotations

import contextlib
import json
import tarfile
import time
from collections.abc import Callable
from io import BytesIO

from docker.errors import APIError, NotFound
from docker.models.containers import Container

from clipper_core.client.admin_http import AdminClient
from clipper_core.errors import ClipperException
from clipper_docker import names
from clipper_docker.names import FATAL_EXITS
from clipper_docker.replicas import Reconciler

__all__ = ["FATAL_EXITS", "POLL", "fail_if_exited", "replica_ready", "tail", "wait_replicas"]

POLL = 0.25
"""Seconds between readiness checks of other processes; every wait has a deadline."""


def tail(container: Container, lines: int = 40) -> str:
    with contextlib.suppress(NotFound, APIError):
        return bytes(container.logs(stdout=True, stderr=True, tail=lines)).decode(errors="replace")
    return "(no log)"


def fail_if_exited(containers: list[Container]) -> None:
    """Raise, with its log, if one of ``containers`` exited or was restarted."""
    for container in containers:
        if container.status in ("exited", "dead") or container.attrs.get("RestartCount", 0) > 0:
            raise ClipperException(f"{container.name} exited with status "
                                   f"{container.attrs['State'].get('ExitCode')}; its log:\n{tail(container)}")


def wait_replicas(reconciler: Reconciler, admin: Callable[[], AdminClient], name: str, version: str, n: int,
                  timeout: float) -> None:
    """Wait until exactly ``n`` replicas of ``name:version`` are alive and ready; fail at once on a fatal exit.

    :param admin: the management API, asked only about replicas whose image has no ready file
    """
    deadline = time.monotonic() + timeout
    while True:
        alive = [c for c in reconciler.replicas(name, version) if Reconciler.alive(c)]
        for container in alive:
            state = container.attrs["State"]
            # RestartCount is a top-level field of `docker inspect`, not part of State
            if container.attrs.get("RestartCount", 0) > 0 and state.get("ExitCode") in FATAL_EXITS:
                # Restarting cannot help (as with the local manager, these exits are not restarted)
                with contextlib.suppress(APIError):
                    container.update(restart_policy={"Name": "no"})
                raise ClipperException(
                    f"replica {container.name} of {name}:{version} exits with status {state['ExitCode']} "
                    f"({FATAL_EXITS[state['ExitCode']]}); its log:\n{tail(container)}")
        if len(alive) == n and sum(1 for c in alive if replica_ready(c, name, version, reconciler, admin)) == n:
            return
        if time.monotonic() > deadline:
            detail = "\n".join(f"{c.name} ({c.status}):\n{tail(c, 10)}" for c in alive[:2])
            raise ClipperException(f"{name}:{version}: {n} replicas were not ready within "
                                   f"{timeout:.0f} s ({len(alive)} running)\n{detail}")
        time.sleep(POLL)


def replica_ready(container: Container, name: str, version: str, reconciler: Reconciler,
                  admin: Callable[[], AdminClient]) -> bool:
    """The replica's ready file exists (written once a frontend welcomed it); for images without one,
    the management API lists enough connected replicas of the version."""
    if container.status != "running":
        return False
    ready_file = (container.attrs["Config"].get("Labels") or {}).get(names.READY_FILE_LABEL)
    if ready_file:
        try:
            stream, _ = container.get_archive(ready_file)
            with tarfile.open(fileobj=BytesIO(b"".join(stream))) as tar:
                member = tar.next()
                data = tar.extractfile(member) if member is not None else None
                return data is not None and "replica_id" in json.loads(data.read())
        except (NotFound, APIError, tarfile.TarError, ValueError):
            return False
    replicas = admin().post("/admin/get_all_containers", {"verbose": True})
    connected = [r for r in replicas if r.get("model_name") == name and str(r.get("model_version")) == version]
    return len(connected) >= len([c for c in reconciler.replicas(name, version) if Reconciler.alive(c)])
