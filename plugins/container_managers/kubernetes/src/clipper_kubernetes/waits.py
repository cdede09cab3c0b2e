"""Bounded waits on Deployments and their pods, reading what the controllers and kubelets report.

A Deployment is *settled* when its controller has seen its latest spec and exactly ``spec.replicas`` live pods
exist (terminating ones included: a scale-down waits for its replicas to drain; finished ones, Failed or
Succeeded, such as evicted pods, are not counted) and all are ready. A wait ends early with :class:`PodProblem`
when waiting cannot help: the Deployment's controller cannot create pods (``ReplicaFailure``: a quota, a Pod
Security rejection), an image stays unpullable for ``pull_grace`` seconds (a first failed pull is often a
registry's hiccup), a container cannot be created, or a model container is crash-looping with an exit status
that restarting cannot help. The problem is told in the pod's own words, with its log."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from clipper_docker.names import FATAL_EXITS

from clipper_core.errors import ClipperException
from clipper_kubernetes.api import KubeApi, KubeNotFound
from clipper_kubernetes.names import selector_text

__all__ = ["POLL", "PodProblem", "PullWatch", "deployment_problem", "live_pods", "pod_problem", "wait_deployments",
           "wait_pods_gone"]

POLL = 0.5
"""Seconds between two looks at the API server during a wait."""
PULL_ERRORS = ("ErrImagePull", "ImagePullBackOff")
BAD_IMAGE = ("InvalidImageName", "ErrImageNeverPull")
CONFIG_ERRORS = ("CreateContainerConfigError", "CreateContainerError")
_FINISHED = ("Failed", "Succeeded")


class PodProblem(ClipperException):
    """A pod that will not become ready by waiting (the wait ended early)."""


def _statuses(pod: dict[str, Any]) -> list[dict[str, Any]]:
    status = pod.get("status") or {}
    return list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])


def live_pods(pods: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pods that count: not finished (an evicted or completed pod lingers as Failed/Succeeded)."""
    return [p for p in pods if (p.get("status") or {}).get("phase") not in _FINISHED]


def _pull_message(pod: dict[str, Any], container: dict[str, Any], reason: str, message: str) -> str:
    return (f"pod {pod['metadata']['name']} cannot pull the image {container.get('image')!r} "
            f"({reason}: {message or 'no detail'}); build it on the nodes' engine or push it to a registry they "
            "can reach (build_model(..., container_registry=...))")


class PullWatch:
    """Remembers since when each pod has been failing to pull, so a pull error is a problem only once it lasted
    ``grace`` seconds."""

    def __init__(self, grace: float, clock: Any = time.monotonic) -> None:
        self.grace, self.clock = grace, clock
        self.since: dict[str, float] = {}

    def failing_long(self, pod: dict[str, Any]) -> bool:
        uid = str(pod["metadata"].get("uid") or pod["metadata"]["name"])
        failing = any(((c.get("state") or {}).get("waiting") or {}).get("reason") in PULL_ERRORS
                      for c in _statuses(pod))
        if not failing:
            self.since.pop(uid, None)
            return False
        first = self.since.setdefault(uid, self.clock())
        return self.clock() - first >= self.grace


def pod_problem(pod: dict[str, Any], pulls: PullWatch | None = None) -> str | None:
    """Why ``pod`` will not become ready by waiting, or None. Only the containers' current state counts: a
    container running again after a bad exit is fine."""
    name = pod["metadata"]["name"]
    if (pod.get("status") or {}).get("phase") in _FINISHED or pod["metadata"].get("deletionTimestamp"):
        return None
    long_pull = pulls.failing_long(pod) if pulls is not None else True
    for container in _statuses(pod):
        state = container.get("state") or {}
        waiting = state.get("waiting") or {}
        reason, message = waiting.get("reason", ""), waiting.get("message", "")
        if reason in BAD_IMAGE or (reason in PULL_ERRORS and long_pull):
            return _pull_message(pod, container, reason, message)
        if reason in CONFIG_ERRORS:
            return f"pod {name}: the container {container.get('name')!r} cannot be created ({reason}: {message})"
        if state.get("running"):
            continue
        ended = state.get("terminated") or (container.get("lastState") or {}).get("terminated") or {}
        code = ended.get("exitCode")
        if container.get("restartCount", 0) > 0 and code in FATAL_EXITS:
            return (f"pod {name}: its container {container.get('name')!r} exits with status {code} "
                    f"({FATAL_EXITS[code]}), which restarting cannot help")
    return None


def deployment_problem(deployment: dict[str, Any]) -> str | None:
    """The controller cannot create the Deployment's pods (condition ReplicaFailure), or None."""
    for condition in (deployment.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            return (f"the Deployment {deployment['metadata']['name']} cannot create pods "
                    f"({condition.get('reason', '')}: {condition.get('message', '')})")
    return None


def _describe(pod: dict[str, Any]) -> str:
    status = pod.get("status") or {}
    parts = [status.get("phase", "Pending")]
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            parts.append(f"unschedulable: {condition.get('message', '')}")
    for container in _statuses(pod):
        state = container.get("state") or {}
        for kind, detail in state.items():
            if detail and kind != "running":
                parts.append(f"{container.get('name')} {kind}: {detail.get('reason', '')} {detail.get('message', '')}")
        if container.get("restartCount"):
            parts.append(f"{container.get('restartCount')} restarts")
        if state.get("running") and not container.get("ready"):
            parts.append(f"{container.get('name')} running, not ready")
    return f"{pod['metadata']['name']}: " + "; ".join(p.strip() for p in parts if p.strip())


def log_tail(api: KubeApi, pod: dict[str, Any], lines: int = 30) -> str:
    """The last ``lines`` of each container's log: its previous run's when it is not running now (the run
    that failed), else the current one's."""
    texts = []
    running = {c.get("name"): bool((c.get("state") or {}).get("running")) for c in _statuses(pod)}
    restarted = {c.get("name"): int(c.get("restartCount") or 0) for c in _statuses(pod)}
    for container in (pod.get("spec") or {}).get("containers") or []:
        name = container["name"]
        previous = restarted.get(name, 0) > 0 and not running.get(name, False)
        try:
            texts.append(api.pod_log(pod["metadata"]["namespace"], pod["metadata"]["name"], name, lines, previous))
        except ClipperException:
            if previous:
                try:
                    texts.append(api.pod_log(pod["metadata"]["namespace"], pod["metadata"]["name"], name, lines))
                except ClipperException:
                    continue
    return "\n".join(t for t in texts if t) or "(no log)"


def deployment_pods(api: KubeApi, deployment: dict[str, Any]) -> list[dict[str, Any]]:
    selector = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return api.select("Pod", deployment["metadata"]["namespace"], selector_text(selector))


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return not pod["metadata"].get("deletionTimestamp") and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def ready_count(pods: Iterable[dict[str, Any]]) -> int:
    """Live pods that are ready now."""
    return sum(1 for p in live_pods(pods) if _ready(p))


def _settled(deployment: dict[str, Any], pods: list[dict[str, Any]]) -> bool:
    want = int((deployment.get("spec") or {}).get("replicas", 1))
    status = deployment.get("status") or {}
    observed = int(status.get("observedGeneration") or 0) >= int(deployment["metadata"].get("generation") or 0)
    ready = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    return observed and ready == want and (want == 0 or updated >= want) and len(live_pods(pods)) == want


def wait_deployments(api: KubeApi, namespace: str, deployment_names: Iterable[str], timeout: float, what: str,
                     pull_grace: float = 15.0) -> None:
    """Wait until every named Deployment is settled (see the module docstring); PodProblem as soon as waiting
    cannot help, ClipperException (with each pod's state) after ``timeout`` seconds."""
    pending = list(deployment_names)
    deadline = time.monotonic() + timeout
    pulls = PullWatch(pull_grace)
    while pending:
        name = pending[0]
        deployment = api.read("Deployment", namespace, name)
        if deployment is None:
            raise ClipperException(f"{what}: the Deployment {name} in namespace {namespace} is gone")
        problem = deployment_problem(deployment)
        if problem:
            raise PodProblem(f"{what}: {problem}")
        pods = deployment_pods(api, deployment)
        for pod in pods:
            problem = pod_problem(pod, pulls)
            if problem:
                raise PodProblem(f"{what}: {problem}\nits log:\n{log_tail(api, pod)}")
        if _settled(deployment, pods):
            pending.pop(0)
            continue
        if time.monotonic() > deadline:
            want = (deployment.get("spec") or {}).get("replicas")
            ready = (deployment.get("status") or {}).get("readyReplicas") or 0
            conditions = "; ".join(f"{c.get('type')}={c.get('status')} {c.get('message', '')}".strip()
                                   for c in (deployment.get("status") or {}).get("conditions") or [])
            states = "\n".join(_describe(p) for p in pods) or "(no pods were created)"
            raise ClipperException(f"{what}: the Deployment {name} did not get {want} ready pods within "
                                   f"{timeout:.0f} s ({ready} ready, {len(live_pods(pods))} pods; conditions: "
                                   f"{conditions or 'none reported'})\n{states}")
        time.sleep(POLL)


def wait_pods_gone(api: KubeApi, namespace: str, selector: str, timeout: float, what: str) -> None:
    """Wait until no live pod matches ``selector`` (deleted Deployments' pods terminate with their grace)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pods = live_pods(api.select("Pod", namespace, selector))
        except KubeNotFound:
            return
        if not pods:
            return
        if time.monotonic() > deadline:
            raise ClipperException(f"{what}: {len(pods)} pods still exist after {timeout:.0f} s: "
                                   + ", ".join(p["metadata"]["name"] for p in pods[:5]))
        time.sleep(POLL)


def wait_gone(api: KubeApi, kind: str, namespace: str, name: str, timeout: float) -> None:
    """Wait until the object is gone (a volume claim stays Terminating while a pod still uses it)."""
    deadline = time.monotonic() + timeout
    while api.read(kind, namespace, name) is not None:
        if time.monotonic() > deadline:
            raise ClipperException(f"the {kind} {name} in namespace {namespace} still exists after {timeout:.0f} s")
        time.sleep(POLL)
