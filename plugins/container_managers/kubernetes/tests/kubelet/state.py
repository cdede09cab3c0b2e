"""The kubelet's in-memory bookkeeping: per pod (:class:`_Pod`: IP, conditions, last status written, teardown,
service-account token directory), per container (:class:`_Container`: Docker id, run/restart/back-off, image pull
and probe state) and per probe (:class:`_Probe`: next run, success/failure counts, the running check)."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field

from .util import Json, _now


@dataclass
class _Probe:
    next_at: float
    successes: int = 0
    failures: int = 0
    future: Future[bool] | None = None
    deadline: float = 0.0
    timed_out: bool = False


@dataclass
class _Container:
    name: str
    spec: Json
    index: int
    docker_id: str | None = None
    image_id: str = ""
    restart_count: int = 0
    has_run: bool = False
    run_started_at: str | None = None  # Docker's StartedAt of the current/last run
    run_mono: float = 0.0
    handled_finish: str | None = None
    log_since: float | None = None  # the previous run's end: the current run's log starts after it
    last_terminated: Json | None = None
    state: Json = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    ready: bool = False
    started: bool = False
    backoff_n: int = 0
    restart_at: float | None = None
    final: bool = False
    pull: Future[None] | None = None
    pull_failures: int = 0
    next_pull: float = 0.0
    pull_error_shown: bool = False
    retry_create_at: float = 0.0
    killing: Future[None] | None = None
    probes: dict[str, _Probe] = field(default_factory=dict)


@dataclass
class _Pod:
    uid: str
    namespace: str
    name: str
    ip: str
    containers: dict[str, _Container]
    start_time: str = field(default_factory=_now)
    ip_assigned: bool = False
    conditions: dict[str, tuple[str, str]] = field(default_factory=dict)  # type -> (status, lastTransitionTime)
    last_status: Json | None = None
    teardown: Future[None] | None = None
    finalise_retry_at: float = 0.0
    tmpdirs: list[str] = field(default_factory=list)
    grace: int = 30  # spec.terminationGracePeriodSeconds
    sa_checked: bool = False  # whether the service-account token mount was decided (sa_dir: its host directory)
    sa_dir: str | None = None
