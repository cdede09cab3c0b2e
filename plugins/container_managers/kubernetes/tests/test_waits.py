"""What ends a wait early and what does not (plain pod and Deployment dictionaries, as the API server answers
them): a pull error only once it lasted, a fatal exit only while the container is down, finished and
terminating pods never, a controller that cannot create pods at once."""

from __future__ import annotations

from typing import Any

from clipper_kubernetes.waits import PullWatch, deployment_problem, live_pods, pod_problem, ready_count


def _pod(name: str = "p", phase: str = "Running", **container: Any) -> dict[str, Any]:
    status = {"name": "model", "image": "img:1", "restartCount": 0, "ready": False, **container}
    return {"metadata": {"name": name, "namespace": "default", "uid": name},
            "status": {"phase": phase, "containerStatuses": [status]}}


def _waiting(reason: str, message: str = "") -> dict[str, Any]:
    return {"waiting": {"reason": reason, "message": message}}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_pull_error_is_a_problem_once_it_lasted_the_grace() -> None:
    clock = Clock()
    pulls = PullWatch(15.0, clock)
    pod = _pod(state=_waiting("ErrImagePull", "rate limited"))
    assert pod_problem(pod, pulls) is None  # a first failed pull: often a registry's hiccup
    clock.now = 10.0
    assert pod_problem(_pod(state=_waiting("ImagePullBackOff")), pulls) is None
    clock.now = 15.0
    problem = pod_problem(_pod(state=_waiting("ImagePullBackOff", 'Back-off pulling image "img:1"')), pulls)
    assert problem is not None and "cannot pull the image 'img:1'" in problem
    clock.now = 16.0
    assert pod_problem(_pod(state={"running": {}}), pulls) is None  # pulled after all: forgotten
    clock.now = 17.0
    assert pod_problem(_pod(state=_waiting("ErrImagePull")), pulls) is None  # and timed afresh


def test_an_invalid_image_name_and_a_container_that_cannot_be_made_are_problems_at_once() -> None:
    assert "cannot pull the image" in (pod_problem(_pod(state=_waiting("InvalidImageName")), PullWatch(60)) or "")
    problem = pod_problem(_pod(state=_waiting("CreateContainerConfigError", 'secret "x" not found')), PullWatch(60))
    assert problem is not None and 'secret "x" not found' in problem


def test_a_fatal_exit_counts_only_while_the_container_is_down() -> None:
    down = _pod(restartCount=2, state=_waiting("CrashLoopBackOff"),
                lastState={"terminated": {"exitCode": 4, "reason": "Error"}})
    assert "exits with status 4 (the model could not be loaded)" in (pod_problem(down) or "")
    up_again = _pod(restartCount=2, state={"running": {"startedAt": "x"}},
                    lastState={"terminated": {"exitCode": 4}})
    assert pod_problem(up_again) is None  # an old bad exit of a container that now runs
    crashed = _pod(restartCount=1, state=_waiting("CrashLoopBackOff"), lastState={"terminated": {"exitCode": 1}})
    assert pod_problem(crashed) is None  # status 1: restarting may help, the wait goes on (bounded)


def test_finished_and_terminating_pods_are_not_problems_and_finished_ones_do_not_count() -> None:
    evicted = _pod("evicted", phase="Failed", restartCount=1, lastState={"terminated": {"exitCode": 4}})
    assert pod_problem(evicted) is None
    terminating = _pod("old", state=_waiting("ImagePullBackOff"))
    terminating["metadata"]["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    assert pod_problem(terminating) is None
    ready = _pod("ready")
    ready["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    assert [p["metadata"]["name"] for p in live_pods([evicted, terminating, ready])] == ["old", "ready"]
    assert ready_count([evicted, terminating, ready]) == 1


def test_a_controller_that_cannot_create_pods_is_a_problem() -> None:
    deployment = {"metadata": {"name": "d"}, "status": {"conditions": [
        {"type": "Available", "status": "False"},
        {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
         "message": 'pods "d-1" is forbidden: violates PodSecurity "restricted:latest"'}]}}
    assert "violates PodSecurity" in (deployment_problem(deployment) or "")
    assert deployment_problem({"metadata": {"name": "d"}, "status": {}}) is None
