"""``python -m clipper_docker.supervisor --cluster NAME``: keep a cluster's replica counts, from inside it.

Docker restarts a crashed replica in place (restart policy ``on-failure``) but not one stopped from outside
(``docker kill``, ``docker stop``), and the manager that started it lives only as long as the user's script.
This process runs as the cluster's ``<cluster>-supervisor`` container with the Docker socket mounted. It wakes
on every ``die`` event of the cluster's replicas (and every ``--interval`` seconds in any case), and under the
reconcile lock compares the replicas with the desired counts in Redis: dead ones are removed and replaced,
replicas of versions with no desired count are drained. A version whose replicas keep dying within seconds
is replaced with back-off (0.5 s doubling to 60 s).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

import docker
import redis
from docker.errors import DockerException

from clipper_docker.names import CLUSTER_LABEL, MODEL_NAME_LABEL, MODEL_VERSION_LABEL, ROLE_LABEL, Role
from clipper_docker.replicas import DesiredState, Outcome, Reconciler, labels_of

__all__ = ["Supervisor", "main"]

log = logging.getLogger("clipper_docker.supervisor")
QUICK_DEATH = 10.0
"""A replica that dies within this many seconds of starting counts as a failure (back-off grows)."""
MAX_BACKOFF = 60.0


class Supervisor:
    def __init__(self, client: docker.DockerClient, state: DesiredState, reconciler: Reconciler,
                 interval: float = 10.0) -> None:
        self.client = client
        self.state = state
        self.reconciler = reconciler
        self.interval = interval
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.failures: dict[str, int] = {}
        self.not_before: dict[str, float] = {}
        self._events: Any = None

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        events = self._events
        if events is not None:
            events.close()

    def run(self) -> None:
        watcher = threading.Thread(target=self._watch, name="docker-events", daemon=True)
        watcher.start()
        log.info("supervising the replicas of cluster %s", self.reconciler.cluster)
        while not self.stopping.is_set():
            try:
                self.step()
            except (redis.RedisError, DockerException) as exc:  # Redis or the engine restarting: try again
                log.warning("reconcile failed: %s", exc)
            pending = [t - time.monotonic() for t in self.not_before.values() if t > time.monotonic()]
            self.wake.wait(min([self.interval, *pending]))
            self.wake.clear()

    def step(self) -> None:
        """One pass over every model version of the cluster."""
        with self.state.lock():
            specs = {spec.key: spec for spec in self.state.all()}
            present = {(labels_of(c).get(MODEL_NAME_LABEL, ""), labels_of(c).get(MODEL_VERSION_LABEL, ""))
                       for c in self.reconciler.replicas()}
            now = time.monotonic()
            for spec in specs.values():
                allowed = now >= self.not_before.get(spec.key, 0.0)
                self._account(spec.key, self.reconciler.reconcile(spec, spec.model, spec.version, allowed))
            for model, version in sorted(present):
                if f"{model}\0{version}" not in specs:
                    outcome = self.reconciler.reconcile(None, model, version)
                    if outcome.stopped:
                        log.info("drained %s (no desired count for %s:%s)", outcome.stopped, model, version)

    def _account(self, key: str, outcome: Outcome) -> None:
        model = key.replace("\0", ":")
        for name, code, ran in outcome.dead:
            if ran < QUICK_DEATH:
                self.failures[key] = self.failures.get(key, 0) + 1
                delay = min(MAX_BACKOFF, 0.5 * 2 ** (self.failures[key] - 1))
                self.not_before[key] = time.monotonic() + delay
                log.warning("replica %s of %s died with status %s after %.1f s; next replacement in %.1f s",
                            name, model, code, ran, delay)
            else:
                self.failures.pop(key, None)
                self.not_before.pop(key, None)
                log.info("replica %s of %s stopped with status %s after %.0f s; replacing it", name, model, code, ran)
        if outcome.created:
            log.info("started %s for %s", outcome.created, model)

    def _watch(self) -> None:
        """Wake the loop on every death of one of this cluster's replicas (reconnecting when the stream ends)."""
        filters = {"type": "container", "event": ["die"],
                   "label": [f"{CLUSTER_LABEL}={self.reconciler.cluster}", f"{ROLE_LABEL}={Role.MODEL}"]}
        while not self.stopping.is_set():
            try:
                self._events = self.client.events(decode=True, filters=filters)
                for _event in self._events:
                    self.wake.set()
            except Exception as exc:  # the stream broke (engine restarted, or stop() closed it)
                if not self.stopping.is_set():
                    log.warning("docker events stream ended: %s", exc)
            self.wake.set()
            self.stopping.wait(2.0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clipper_docker.supervisor")
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--redis-url", default=os.environ.get("CLIPPER_DOCKER_REDIS_URL"),
                        help="the cluster's Redis (env CLIPPER_DOCKER_REDIS_URL)")
    parser.add_argument("--network", default=os.environ.get("CLIPPER_DOCKER_NETWORK", "clipper_network"))
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between passes without events")
    parser.add_argument("--drain-timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s clipper-docker supervisor: %(message)s")
    if not args.redis_url:
        log.error("no Redis: pass --redis-url or set CLIPPER_DOCKER_REDIS_URL")
        return 2
    extra = json.loads(os.environ.get("CLIPPER_DOCKER_CONTAINER_KWARGS") or "{}")
    client = docker.from_env(timeout=120)
    state = DesiredState(redis.Redis.from_url(args.redis_url, socket_timeout=10, socket_connect_timeout=5),
                         args.cluster)
    supervisor = Supervisor(client, state, Reconciler(client, args.cluster, args.network, extra, args.drain_timeout),
                            interval=args.interval)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("%s: stopping", signal.Signals(signum).name)
        supervisor.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    supervisor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
