"""The control plane's share: the one-node scheduler (binds pods without ``spec.nodeName``) and the Deployment
controller (``spec.replicas`` pods per Deployment owned by it directly, surge 100% / unavailable 0 rollouts,
surplus pods deleted not-ready first then newest, garbage collection of pods whose Deployment is gone, a pod the
API server refuses to create — e.g. its ServiceAccount is missing — shown as the ``ReplicaFailure`` condition
(reason FailedCreate, the server's message) until a pass creates what it needs, and the Deployment status written
through deployments/status only when it changed)."""

from __future__ import annotations

import copy
import json
import random
import string
from datetime import datetime, timezone
from typing import Any

from kubernetes.client.exceptions import ApiException

from .util import MERGE, Json, _now, _owner_uid, _terminating, pod_ready, template_hash

MAX_CREATES = 10  # pods created per Deployment per pass (bounded work per loop iteration)


def _status_message(exc: ApiException) -> str:
    """The message of the Status an API error answered (or its HTTP status and reason)."""
    try:
        return str(json.loads(exc.body or "")["message"])
    except (TypeError, ValueError, KeyError):
        return f"{exc.status} {exc.reason}"


class ControllerMixin:
    """Kubelet's scheduler and Deployment controller."""

    # ------------------------------------------------------------------ scheduler

    def _schedule(self, pods: list[Json]) -> None:
        for pod in pods:
            spec = pod.get("spec") or {}
            if spec.get("nodeName") or _terminating(pod) or \
                    spec.get("schedulerName", "default-scheduler") != "default-scheduler":
                continue
            name, ns = pod["metadata"]["name"], pod["metadata"]["namespace"]
            binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "namespace": ns},
                       "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name}}
            try:
                self._call(self.core.create_namespaced_pod_binding, name, ns, binding)
            except ApiException as exc:
                if exc.status not in (404, 405, 415):
                    raise
                # no pods/binding in the emulator: set spec.nodeName directly
                self._call(self.core.patch_namespaced_pod, name, ns, {"spec": {"nodeName": self.node_name}},
                           _content_type=MERGE)
            pod["spec"]["nodeName"] = self.node_name  # this pass's kubelet step sees it at once

    # ------------------------------------------------------------------ Deployment controller

    def _deployments(self, deployments: list[Json], pods: list[Json]) -> None:
        uids = {d["metadata"]["uid"] for d in deployments}
        owned: dict[str, list[Json]] = {}
        for pod in pods:
            owner = _owner_uid(pod)
            if owner is None:
                continue
            if owner in uids:
                owned.setdefault(owner, []).append(pod)
            elif not _terminating(pod):  # garbage collection: its Deployment is gone
                self._delete_pod(pod)
        for dep in deployments:
            try:
                created = self._deployment(dep, owned.get(dep["metadata"]["uid"], []))
                pods.extend(created)  # this pass's kubelet step starts them at once
            except Exception:
                self._warn(f"deployment-{dep['metadata']['uid']}", "deployment %s/%s failed",
                           dep["metadata"]["namespace"], dep["metadata"]["name"], exc=True)

    def _delete_pod(self, pod: Json) -> None:
        grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        try:
            self._call(self.core.delete_namespaced_pod, pod["metadata"]["name"], pod["metadata"]["namespace"],
                       grace_period_seconds=int(grace))
        except ApiException as exc:
            if exc.status != 404:
                raise

    def _deployment(self, dep: Json, pods: list[Json]) -> list[Json]:
        """Reconcile one Deployment; returns the pods it created."""
        spec = dep.get("spec") or {}
        template = spec.get("template") or {}
        wanted = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
        h = template_hash(template)
        active = [p for p in pods if not _terminating(p)]
        new = [p for p in active if (p["metadata"].get("labels") or {}).get("pod-template-hash") == h]
        old = [p for p in active if p not in new]
        if _terminating(dep):
            new, old, wanted = [], active, 0

        def surplus_order(candidates: list[Json]) -> list[Json]:  # not ready first, then newest
            newest = sorted(candidates, key=lambda p: p["metadata"].get("creationTimestamp") or "", reverse=True)
            return sorted(newest, key=pod_ready)

        created: list[Json] = []
        failure: str | None = None
        for _ in range(min(MAX_CREATES, max(0, wanted - len(new)))):
            try:
                created.append(self._create_pod(dep, template, h))
            except ApiException as exc:  # as the ReplicaSet controller: FailedCreate, retried next pass
                failure = _status_message(exc)
                self._warn(f"create-{dep['metadata']['uid']}", "deployment %s/%s: cannot create a pod: %s",
                           dep["metadata"]["namespace"], dep["metadata"]["name"], failure)
                break
        new += created
        for pod in surplus_order(new)[: max(0, len(new) - wanted)]:
            self._delete_pod(pod)
            new.remove(pod)
        ready_new = sum(1 for p in new if pod_ready(p))
        keep_old = max(0, wanted - ready_new)
        for pod in surplus_order(old)[: max(0, len(old) - keep_old)]:
            self._delete_pod(pod)
            old.remove(pod)
        if not _terminating(dep):
            self._deployment_status(dep, new, old, wanted, failure)
        return created

    def _create_pod(self, dep: Json, template: Json, h: str) -> Json:
        meta = dep["metadata"]
        tmeta = template.get("metadata") or {}
        suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        body: Json = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": f"{meta['name']}-{h}-{suffix}", "namespace": meta["namespace"],
                "labels": {**(tmeta.get("labels") or {}), "pod-template-hash": h},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"],
                                     "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]},
            "spec": {**copy.deepcopy(template.get("spec") or {}), "nodeName": self.node_name},
        }
        if tmeta.get("annotations"):
            body["metadata"]["annotations"] = dict(tmeta["annotations"])
        created = self._call(self.core.create_namespaced_pod, meta["namespace"], body)
        return created if isinstance(created, dict) else body

    def _deployment_status(self, dep: Json, new: list[Json], old: list[Json], wanted: int,
                           failure: str | None = None) -> None:
        spec = dep.get("spec") or {}
        min_ready = float(spec.get("minReadySeconds") or 0)
        pods = new + old
        ready = [p for p in pods if pod_ready(p)]

        def available(pod: Json) -> bool:
            if min_ready <= 0:
                return True
            for c in pod["status"].get("conditions") or []:
                if c.get("type") == "Ready" and c.get("lastTransitionTime"):
                    since = datetime.strptime(c["lastTransitionTime"], "%Y-%m-%dT%H:%M:%SZ").replace(
                        tzinfo=timezone.utc)
                    return (datetime.now(timezone.utc) - since).total_seconds() >= min_ready
            return False

        n_available = sum(1 for p in ready if available(p))
        current = dep.get("status") or {}
        conditions_before = {c.get("type"): c for c in current.get("conditions") or []}
        now = _now()

        def condition(kind: str, status: str, reason: str, message: str) -> Json:
            before = conditions_before.get(kind) or {}
            same = before.get("status") == status and before.get("reason") == reason
            return {"type": kind, "status": status, "reason": reason, "message": message,
                    "lastUpdateTime": before.get("lastUpdateTime", now) if same else now,
                    "lastTransitionTime": before.get("lastTransitionTime", now)
                    if before.get("status") == status else now}

        name = dep["metadata"]["name"]
        if n_available >= wanted:
            available_c = condition("Available", "True", "MinimumReplicasAvailable",
                                    "Deployment has minimum availability.")
        else:
            available_c = condition("Available", "False", "MinimumReplicasUnavailable",
                                    "Deployment does not have minimum availability.")
        if not old and len(new) == wanted and n_available >= wanted:
            progressing = condition("Progressing", "True", "NewReplicaSetAvailable",
                                    f'Deployment "{name}" has successfully progressed.')
        else:
            progressing = condition("Progressing", "True", "ReplicaSetUpdated",
                                    f'Deployment "{name}" is progressing.')
        status: Json = {
            "observedGeneration": dep["metadata"].get("generation", 1),
            "replicas": len(pods), "updatedReplicas": len(new), "readyReplicas": len(ready),
            "availableReplicas": n_available, "unavailableReplicas": max(0, wanted - n_available),
            "conditions": [available_c, progressing],
        }
        if failure is not None:
            status["conditions"].append(condition("ReplicaFailure", "True", "FailedCreate", failure))
        keys = ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                "unavailableReplicas")

        def strip(conds: list[Json]) -> list[tuple[Any, ...]]:
            return sorted((c.get("type"), c.get("status"), c.get("reason")) for c in conds)

        if all(current.get(k, 0) == status[k] for k in keys) and \
                strip(current.get("conditions") or []) == strip(status["conditions"]):
            return
        self._call(self.apps.patch_namespaced_deployment_status, name, dep["metadata"]["namespace"],
                   {"status": status}, _content_type=MERGE)
