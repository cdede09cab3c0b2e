"""A pod container's life on the Docker engine, one step per pass: image presence and pulls (ErrImagePull, then
ImagePullBackOff), creation, noticing new runs and exits, start failures (RunContainerError), restarts in place
per restartPolicy with CrashLoopBackOff (``backoff_base * 2**n`` capped at ``30 * backoff_base``, reset after
``RUN_RESET_SECONDS`` running), and handing running containers to the probes."""

from __future__ import annotations

import time

import docker
import docker.errors
import docker.utils

from .state import _Container, _Pod
from .util import Json, _docker_time, _now

RUN_RESET_SECONDS = 600.0  # a container running this long resets its CrashLoopBackOff


class RuntimeMixin:
    """Kubelet's container state machine and image pulls."""

    def _sync_container(self, pod: Json, state: _Pod, c: _Container, services: list[Json]) -> None:
        now = time.monotonic()
        if c.final:
            return
        if c.docker_id is None:
            if c.restart_at is not None and now < c.restart_at:
                return
            if now < c.retry_create_at or not self._image_ready(c):
                return
            self._create_container(pod, state, c, services)
            if c.has_run:
                c.restart_count += 1
            c.restart_at = None
            return
        try:
            info = self.docker.api.inspect_container(c.docker_id)
        except docker.errors.NotFound:  # removed behind our back: make a new one (a restart)
            c.docker_id, c.ready, c.killing = None, False, None
            c.last_terminated = {"exitCode": 137, "reason": "ContainerRemoved", "containerID": ""}
            c.state = {"waiting": {"reason": "ContainerCreating"}}
            return
        s = info["State"]
        if s.get("Running"):
            if c.run_started_at != s.get("StartedAt"):  # a new run
                c.run_started_at, c.run_mono, c.has_run = s.get("StartedAt"), now, True
                c.probes.clear()
                c.ready, c.killing = False, None
                c.started = not c.spec.get("startupProbe")
            if now - c.run_mono >= RUN_RESET_SECONDS:
                c.backoff_n = 0
            if c.killing is not None and c.killing.done() and c.killing.exception() is not None:
                self._warn(f"kill-{c.docker_id}", "stopping %s failed: %s", c.name, c.killing.exception())
                c.killing = None
            c.state = {"running": {"startedAt": _docker_time(s.get("StartedAt")) or _now()}}
            if c.killing is None:
                self._probe(state, c, now)
            return
        if s.get("Status") == "created":  # its start failed (a missing executable, say): retry after a back-off
            if c.restart_at is None or now >= c.restart_at:
                try:
                    self.docker.api.start(c.docker_id)
                    c.restart_at = None
                except docker.errors.APIError as exc:
                    delay = min(self.backoff_base * 2 ** c.backoff_n, 30 * self.backoff_base)
                    c.backoff_n += 1
                    c.restart_at = now + delay
                    c.state = {"waiting": {"reason": "RunContainerError", "message": str(exc.explanation or exc)}}
            return
        finished = s.get("FinishedAt")
        if c.handled_finish != finished:
            c.handled_finish = finished
            c.ready, c.killing = False, None
            code = int(s.get("ExitCode", 0))
            reason = "OOMKilled" if s.get("OOMKilled") else ("Completed" if code == 0 else "Error")
            term = {"exitCode": code, "reason": reason, "containerID": f"docker://{c.docker_id}",
                    "startedAt": _docker_time(s.get("StartedAt")) or _now(),
                    "finishedAt": _docker_time(finished) or _now()}
            policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
            if policy == "Always" or (policy == "OnFailure" and code != 0):
                if c.has_run and now - c.run_mono >= RUN_RESET_SECONDS:
                    c.backoff_n = 0
                delay = min(self.backoff_base * 2 ** c.backoff_n, 30 * self.backoff_base)
                c.backoff_n += 1
                c.restart_at = now + delay
                c.last_terminated = term
                c.state = {"waiting": {"reason": "CrashLoopBackOff",
                                       "message": f"back-off {delay:g}s restarting failed container={c.name} "
                                                  f"pod={state.name}_{state.namespace}({state.uid})"}}
            else:
                c.final = True
                c.state = {"terminated": term}
                return
        if c.restart_at is not None and now >= c.restart_at:
            # The current run's log: what Docker timestamps after this (same host clock). Not the previous run's
            # FinishedAt: Docker may still stamp that run's last lines after it (the log copier drains late).
            c.log_since = time.time()
            self.docker.api.start(c.docker_id)  # in place: same container, same IP
            c.restart_count += 1
            c.restart_at = None

    def _image_ready(self, c: _Container) -> bool:
        image = c.spec.get("image") or ""
        now = time.monotonic()
        if c.pull is not None:
            if not c.pull.done():
                return False
            error = c.pull.exception()
            c.pull = None
            if error is not None:
                c.pull_failures += 1
                delay = min(self.backoff_base * 2 ** (c.pull_failures - 1), 30 * self.backoff_base)
                c.next_pull = now + delay
                c.pull_error_shown = False
                c.state = {"waiting": {"reason": "ErrImagePull",
                                       "message": f'failed to pull image "{image}": {error}'}}
                return False
        try:
            c.image_id = self.docker.api.inspect_image(image)["Id"]
            return True
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:  # an invalid reference, say
            c.state = {"waiting": {"reason": "InvalidImageName", "message": f'image "{image}": {exc}'}}
            return False
        if c.pull_failures and now < c.next_pull:
            if c.pull_error_shown:
                c.state = {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}}
            c.pull_error_shown = True  # ErrImagePull is written once, then ImagePullBackOff
            return False
        c.pull = self.pool.submit(self._pull, image)
        if not c.pull_failures:
            c.state = {"waiting": {"reason": "ContainerCreating", "message": f'pulling image "{image}"'}}
        return False

    def _pull(self, image: str) -> None:
        repo, tag = docker.utils.parse_repository_tag(image)
        self.docker.api.pull(repo, tag=tag or "latest")
