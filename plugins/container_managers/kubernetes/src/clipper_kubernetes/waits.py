"""Bounded waits on Deployments and their pods, reading what the kubelet reports: a Deployment is ready when
the controller has seen its latest spec and exactly ``spec.replicas`` pods exist and are ready. A pod that cannot
become ready (its image cannot be pulled, its container cannot be made, its model exits with a status that
restarting cannot help) ends the wait at once with the pod's own words and, where it ran, its log."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from clipper_docker.names import FATAL_EXITS

from clipper_core.errors import ClipperException
from clipper_kubernetes.api import KubeApi, KubeNotFound
from clipper_kubernetes.names import selector_text

__all__ = ["POLL", "PodProblem", "pod_problem", "wait_deployments", "wait_pods_gone"]

POLL = 0.5
"""Seconds between two looks at the API server during a wait."""
PULL_ERRORS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
CONFIG_ERRORS = ("CreateContainerConfigError", "CreateContainerError")


class PodProblem(ClipperException):
    """A pod that will not become ready by waiting (the wait ended early)."""


def _statuses(pod: dict[str, Any]) -> list[dict[str, Any]]:
    status = pod.get("status") or {}
    return list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])


def pod_problem(pod: dict[str, Any]) -> str | None:
    """Why ``pod`` will not become ready by waiting, or None."""
    name = pod["metadata"]["name"]
    for container in _statuses(pod):
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason, message = waiting.get("reason", ""), waiting.get("message", "")
        if reason in PULL_ERRORS:
            return (f"pod {name} cannot pull the image {container.get('image')!r} "
                    f"({reason}: {message or 'no detail'}); build it on the nodes' engine or push it to a registry "
                    "they can reach (build_model(..., "
                    "container_registry=...))")
        if reason in CONFIG_ERRORS:
            return f"pod {name}: the container {container.get('name')!r} cannot be created ({reason}: {message})"
        last = (container.get("lastState") or {}).get("terminated") or {}
        code = last.get("exitCode")
        if container.get("restartCount", 0) > 0 and code in FATAL_EXITS:
            return (f"pod {name}: its container {container.get('name')!r} exits with status {code} "
                    f"({FATAL_EXITS[code]}), which restarting cannot help")
    if (pod.get("status") or {}).get("phase") == "Failed":
        return f"pod {name} failed: {(pod.get('status') or {}).get('message', 'no detail')}"
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


def _log_tail(api: KubeApi, pod: dict[str, Any], lines: int = 30) -> str:
    texts = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        try:
            texts.append(api.pod_log(pod["metadata"]["namespace"], pod["metadata"]["name"], container["name"], lines))
        except ClipperException:
            continue
    return "\n".join(t for t in texts if t) or "(no log)"


def deployment_pods(api: KubeApi, deployment: dict[str, Any]) -> list[dict[str, Any]]:
    selector = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return api.select("Pod", deployment["metadata"]["namespace"], selector_text(selector))


def _settled(deployment: dict[str, Any], pods: list[dict[str, Any]]) -> bool:
    want = int((deployment.get("spec") or {}).get("replicas", 1))
    status = deployment.get("status") or {}
    observed = int(status.get("observedGeneration") or 0) >= int(deployment["metadata"].get("generation") or 0)
    ready = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    return observed and ready == want and (want == 0 or updated >= want) and len(pods) == want


def wait_deployments(api: KubeApi, namespace: str, deployment_names: Iterable[str], timeout: float,
                     what: str) -> None:
    """Wait until every named Deployment is settled (see the module docstring); PodProblem at once when a pod
    cannot get there, ClipperException (with each pod's state) after ``timeout`` seconds."""
    pending = list(deployment_names)
    deadline = time.monotonic() + timeout
    last_pods: list[dict[str, Any]] = []
    while pending:
        name = pending[0]
        deployment = api.read("Deployment", namespace, name)
        if deployment is None:
            raise ClipperException(f"{what}: the Deployment {name} in namespace {namespace} is gone")
        pods = deployment_pods(api, deployment)
        last_pods = pods
        for pod in pods:
            problem = pod_problem(pod)
            if problem:
                raise PodProblem(f"{what}: {problem}\nits log:\n{_log_tail(api, pod)}")
        if _settled(deployment, pods):
            pending.pop(0)
            continue
        if time.monotonic() > deadline:
            want = (deployment.get("spec") or {}).get("replicas")
            ready = (deployment.get("status") or {}).get("readyReplicas") or 0
            states = "\n".join(_describe(p) for p in last_pods) or "(no pods were created: is a controller running?)"
            raise ClipperException(f"{what}: the Deployment {name} did not get {want} ready pods within "
                                   f"{timeout:.0f} s ({ready} ready, {len(pods)} pods)\n{states}")
        time.sleep(POLL)


def wait_pods_gone(api: KubeApi, namespace: str, selector: str, timeout: float, what: str) -> None:
    """Wait until no pod matches ``selector`` (deleted Deployments' pods terminate with their grace period)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pods = api.select("Pod", namespace, selector)
        except KubeNotFound:
            return
        if not pods:
            return
        if time.monotonic() > deadline:
            raise ClipperException(f"{what}: {len(pods)} pods still exist after {timeout:.0f} s: "
                                   + ", ".join(p["metadata"]["name"] for p in pods[:5]))
        time.sleep(POLL)
