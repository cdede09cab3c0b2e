"""The kubelet's per-pod loop: tracking the pods bound to this node, syncing each one's containers, graceful
deletion (SIGTERM, SIGKILL after the grace period, per-pod volumes removed, then the pod finalised with
gracePeriodSeconds=0), forgetting pods gone from the API, and the pod status (phase, conditions, container
statuses, IPs, QoS class) written through pods/status only when it changed."""

from __future__ import annotations

import contextlib
import shutil
import time

import docker
import docker.errors
from kubernetes.client.exceptions import ApiException

from .state import _Container, _Pod
from .util import LABEL, MERGE, ConfigError, Json, _now, _qos_class, _terminating, log


class PodsMixin:
    """Kubelet's pod sync, teardown and status."""

    def _sync_pods(self, pods: list[Json], services: list[Json]) -> None:
        listed: set[str] = set()
        for pod in pods:
            if (pod.get("spec") or {}).get("nodeName") != self.node_name:
                continue
            uid = pod["metadata"]["uid"]
            listed.add(uid)
            try:
                self._sync_pod(pod, services)
            except Exception:
                self._warn(f"pod-{uid}", "pod %s/%s failed", pod["metadata"]["namespace"], pod["metadata"]["name"],
                           exc=True)
        for uid, state in list(self.pods.items()):
            if uid in listed:
                continue
            if state.teardown is None:  # gone from the API: remove its containers at once
                state.teardown = self.pool.submit(self._teardown, state, 0, False)
            elif state.teardown.done():
                self._forget(state)

    def _forget(self, state: _Pod) -> None:
        self.used_ips.discard(state.ip)
        for path in state.tmpdirs:
            shutil.rmtree(path, ignore_errors=True)
        self.pods.pop(state.uid, None)

    def _sync_pod(self, pod: Json, services: list[Json]) -> None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        uid = meta["uid"]
        state = self.pods.get(uid)
        if state is None:
            state = _Pod(uid=uid, namespace=meta["namespace"], name=meta["name"], ip=self._allocate_ip(),
                         containers={c["name"]: _Container(name=c["name"], spec=c, index=i)
                                     for i, c in enumerate(spec.get("containers") or [])})
            self.pods[uid] = state
        state.grace = int(spec.get("terminationGracePeriodSeconds", 30))
        if _terminating(pod):
            if state.teardown is None:
                grace = meta.get("deletionGracePeriodSeconds", spec.get("terminationGracePeriodSeconds", 30))
                state.teardown = self.pool.submit(self._teardown, state, int(grace or 0), True)
            elif state.teardown.done() and time.monotonic() >= state.finalise_retry_at:
                state.finalise_retry_at = time.monotonic() + 2.0
                self.pool.submit(self._finalise, state)
            return
        for c in state.containers.values():
            try:
                self._sync_container(pod, state, c, services)
            except ConfigError as exc:
                c.state = {"waiting": {"reason": exc.reason, "message": str(exc)}}
                c.retry_create_at = time.monotonic() + max(1.0, self.backoff_base)
        status = self._pod_status(pod, state)
        if status != state.last_status:
            try:
                self._call(self.core.patch_namespaced_pod_status, meta["name"], meta["namespace"],
                           {"status": status}, _content_type=MERGE)
            except ApiException as exc:
                if exc.status == 404:  # deleted meanwhile
                    return
                raise
            state.last_status = status

    def _teardown(self, state: _Pod, grace: int, finalise: bool) -> None:
        """Stop (SIGTERM, then SIGKILL after ``grace`` s) and remove a pod's containers and per-pod volumes."""
        ids = [c.docker_id for c in sorted(state.containers.values(), key=lambda c: -c.index) if c.docker_id]
        for cid in ids:
            try:
                if grace > 0:
                    self.docker.api.stop(cid, timeout=grace)
                self.docker.api.remove_container(cid, force=True, v=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                log.warning("removing container %s of pod %s/%s: %s", cid[:12], state.namespace, state.name, exc)
        for v in self.docker.volumes.list(filters={"label": [f"{LABEL}/prefix={self.prefix}",
                                                             f"{LABEL}/pod-uid={state.uid}"]}):
            with contextlib.suppress(docker.errors.APIError):
                v.remove(force=True)
        if finalise:
            self._finalise(state)

    def _finalise(self, state: _Pod) -> None:
        try:
            self._call(self.core.delete_namespaced_pod, state.name, state.namespace, grace_period_seconds=0)
        except ApiException as exc:
            if exc.status != 404:
                log.warning("finalising pod %s/%s: %s", state.namespace, state.name, exc)

    # ------------------------------------------------------------------ pod status

    def _pod_status(self, pod: Json, state: _Pod) -> Json:
        containers = sorted(state.containers.values(), key=lambda c: c.index)
        statuses = []
        for c in containers:
            status: Json = {"name": c.name, "image": c.spec.get("image", ""), "imageID": c.image_id and
                            f"docker://{c.image_id}", "ready": c.ready,
                            "started": bool(c.has_run and "running" in c.state and c.started),
                            "restartCount": c.restart_count, "state": c.state,
                            "lastState": {"terminated": c.last_terminated} if c.last_terminated else {}}
            if c.docker_id:
                status["containerID"] = f"docker://{c.docker_id}"
            statuses.append(status)
        if containers and all(c.final for c in containers):
            failed = any(c.state["terminated"]["exitCode"] != 0 for c in containers)
            phase = "Failed" if failed else "Succeeded"
        elif containers and all(c.has_run for c in containers):
            phase = "Running"
        else:
            phase = "Pending"
        all_ready = bool(containers) and all(c.ready for c in containers)
        terminal = phase in ("Succeeded", "Failed")
        reason = "PodCompleted" if terminal else "ContainersNotReady"
        conditions = []
        for kind, ok in (("PodScheduled", True), ("Initialized", True), ("ContainersReady", all_ready),
                         ("Ready", all_ready)):
            value = "True" if ok else "False"
            before = state.conditions.get(kind)
            if before is None or before[0] != value:
                state.conditions[kind] = before = (value, _now())
            cond: Json = {"type": kind, "status": value, "lastTransitionTime": before[1]}
            if not ok:
                not_ready = [c.name for c in containers if not c.ready]
                cond["reason"] = reason
                cond["message"] = f"containers with unready status: [{' '.join(not_ready)}]"
            conditions.append(cond)
        status = {"phase": phase, "hostIP": self.node_address, "hostIPs": [{"ip": self.node_address}],
                  "startTime": state.start_time, "conditions": conditions, "containerStatuses": statuses,
                  "qosClass": _qos_class([c.spec for c in containers])}
        if state.ip_assigned:
            status["podIP"] = state.ip
            status["podIPs"] = [{"ip": state.ip}]
        return status
