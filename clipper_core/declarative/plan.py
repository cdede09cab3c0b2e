"""Compare what a file declares with what a clipper runs, into an ordered list of actions (:class:`Plan`).

The order is the safe one: applications are registered first; new model versions are deployed (a model that
already has a current version gets the new one without traffic), scaled and their replicas waited for; only then
does a version become current and is a model linked; rollouts start last. With ``prune``, what the file does not
declare goes, links before the models and applications they join.

A registered version's source, input type, batching and labels cannot change (the version *is* that build): a
change there is an error naming the field, as Kubernetes does for immutable fields; give the model a new version.
An application's input type, SLO, default output and cache setting cannot change either, unless ``recreate``:
then it is deleted and registered again (its links are made again; what its policy learned is lost).
Objects the file does not declare are kept unless ``prune`` (as ``kubectl apply`` does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clipper_core.declarative.spec import (
    AppSpec,
    Desired,
    LinkSpec,
    ModelSpec,
    Problem,
    Running,
    RunningModel,
)
from clipper_core.names import NO_CONTAINER

__all__ = ["Action", "Plan", "make_plan"]

ACTIVE = ("running", "paused")
_SIGNS = {"add_app": "+", "recreate_app": "~", "set_policy": "~", "deploy": "+", "scale": "~", "autoscale": "~",
          "wait": " ", "set_current": "~", "unlink": "-", "link": "+", "start_rollout": "+", "delete_model": "-",
          "delete_app": "-"}


@dataclass(frozen=True)
class Action:
    """One step: ``kind`` (a key of the executor in :mod:`.apply`), the object it concerns and what changes."""

    kind: str
    target: str
    detail: str
    args: dict[str, Any] = field(default_factory=dict, compare=False)

    def line(self) -> str:
        return f"{_SIGNS[self.kind]} {self.target}: {self.detail}" if self.detail else f"{_SIGNS[self.kind]} " \
                                                                                       f"{self.target}"

    def to_json(self) -> dict[str, str]:
        return {"action": self.kind, "target": self.target, "detail": self.detail}


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What stays as it is although the file says otherwise, and why (e.g. replicas owned by the autoscaler)."""

    @property
    def changes(self) -> list[Action]:
        """The actions that change something (not the waits)."""
        return [a for a in self.actions if a.kind != "wait"]

    def to_json(self) -> dict[str, Any]:
        return {"changes": [a.to_json() for a in self.actions], "errors": [str(e) for e in self.errors],
                "notes": self.notes}


def _autoscaling_text(settings: dict[str, Any] | None) -> str:
    if settings is None:
        return "off"
    target = (f"{settings['target_inflight_per_replica']:g} in flight per replica"
              if settings.get("target_inflight_per_replica") is not None
              else f"p99 at {settings['target_latency_fraction']:g} of the SLO")
    return f"{settings['min_replicas']}..{settings['max_replicas']} replicas, {target}"


def _source_text(model: ModelSpec) -> str:
    source = model.source
    by = f" with {source.deployer}" if source.deployer and source.kind != "model_dir" else ""
    return f"{source.kind} {source.value}{by}"


def initial_replicas(model: ModelSpec) -> int:
    """Replicas to start a new version with, and to wait for: the declared count (within autoscaling's bounds)."""
    if model.source.kind == "image" and model.source.value == NO_CONTAINER:
        return 0
    if model.autoscaling is not None:
        low, high = int(model.autoscaling["min_replicas"]), int(model.autoscaling["max_replicas"])
        return max(low, min(model.replicas, high))
    return model.replicas


class _Planner:
    def __init__(self, desired: Desired, running: Running, prune: bool, recreate: bool) -> None:
        self.desired = desired
        self.running = running
        self.prune = prune
        self.recreate = recreate
        self.plan = Plan()
        self.recreated: set[str] = set()
        self.deployed: dict[str, ModelSpec] = {}
        """New versions by ``name:version``."""

    def error(self, spec: AppSpec | ModelSpec | LinkSpec, message: str, key: str | None = None) -> None:
        if spec.where is None:
            self.plan.errors.append(Problem(self.desired.file, 0, key or "", message))
        else:
            self.plan.errors.append(spec.where.problem(message, key))

    def add(self, kind: str, target: str, detail: str = "", **args: Any) -> None:
        self.plan.actions.append(Action(kind, target, detail, args))

    # -- applications ---------------------------------------------------------------------------------
    def apps(self) -> None:
        for app in self.desired.apps:
            have = self.running.apps.get(app.name)
            target = f"application {app.name}"
            if have is None:
                self.add("add_app", target, f"{app.input_type}, slo_micros {app.slo_micros}, default_output "
                                            f"{app.default_output!r}, policy {app.policy}", spec=app)
                continue
            fixed = [(key, getattr(have, key), getattr(app, key))
                     for key in ("input_type", "slo_micros", "default_output", "cache")
                     if getattr(have, key) != getattr(app, key)]
            if fixed and self.recreate:
                self.recreated.add(app.name)
                self.add("recreate_app", target, "delete and register again: " + ", ".join(
                    f"{key} {old!r} -> {new!r}" for key, old, new in fixed), spec=app)
                continue
            for key, old, new in fixed:
                self.error(app, f"fixed once registered (running: {old!r}, file: {new!r}); give the application "
                                "another name, or apply --recreate to delete it and register it again (its links "
                                "are made again, what its policy learned is lost)", key)
            if (have.policy, have.policy_config) != (app.policy, app.policy_config):
                self.add("set_policy", target, f"policy {have.policy} {have.policy_config} -> {app.policy} "
                                               f"{app.policy_config}", spec=app)

    # -- models ---------------------------------------------------------------------------------------
    def models(self) -> None:
        waits: list[tuple[str, int]] = []
        for model in self.desired.models:
            have = self.running.models.get(model.key)
            target = f"model {model.key}"
            if have is None:
                make_current = model.current and self.running.current(model.name) is None
                self.deployed[model.key] = model
                detail = f"deploy {_source_text(model)}, {initial_replicas(model)} replica(s)"
                if model.autoscaling is not None:
                    detail += f", autoscaling {_autoscaling_text(model.autoscaling)}"
                if not make_current:
                    detail += ", without traffic"
                self.add("deploy", target, detail, spec=model, make_current=make_current,
                         replicas=initial_replicas(model))
                if initial_replicas(model):
                    waits.append((model.key, initial_replicas(model)))
                continue
            self.compare_model(model, have, target, waits)
        for key, count in waits:
            self.add("wait", f"model {key}", f"{count} replica(s) ready", key=key, count=count)

    def compare_model(self, model: ModelSpec, have: RunningModel, target: str, waits: list[tuple[str, int]]) -> None:
        fixed = [("input_type", have.input_type, model.input_type), ("batch_size", have.batch_size, model.batch_size),
                 ("batch_wait_timeout_micros", have.batch_wait_timeout_micros, model.batch_wait_timeout_micros),
                 ("labels", list(have.labels), list(model.labels))]
        for key, old, new in fixed:
            if old != new:
                self.error(model, f"fixed once registered (running: {old!r}, file: {new!r}); a change needs a new "
                                  "version", key)
        if have.digest is None:
            self.plan.notes.append(f"{model.key} was registered by other means than clipper apply: its source is "
                                   "not compared with the file's")
        elif have.digest != model.source.digest:
            self.error(model, f"the model's source changed since {model.key} was registered (sha256 "
                              f"{have.digest[:12]}... running, {model.source.digest[:12]}... in the file); a changed "
                              "model needs a new version", model.source.kind)
        if have.autoscaling != model.autoscaling:
            self.add("autoscale", target, f"autoscaling {_autoscaling_text(have.autoscaling)} -> "
                                          f"{_autoscaling_text(model.autoscaling)}", spec=model)
        if model.autoscaling is not None:
            if have.num_replicas != model.replicas:
                self.plan.notes.append(f"{model.key}: {have.num_replicas} replica(s), not the file's "
                                       f"{model.replicas}: the autoscaler sizes it")
            return
        if have.num_replicas != model.replicas and have.container_name != NO_CONTAINER:
            self.add("scale", target, f"replicas {have.num_replicas} -> {model.replicas}", spec=model)
            if model.replicas > have.num_replicas:
                waits.append((model.key, model.replicas))

    def current_versions(self) -> None:
        names = list(dict.fromkeys(m.name for m in self.desired.models))
        for name in names:
            declared = next((m for m in self.desired.models if m.name == name and m.current), None)
            have = self.running.current(name)
            if self.desired.rolled_out(name):  # the rollout flips the current version
                if have is not None and declared is not None and have.version != declared.version:
                    self.plan.notes.append(f"model {name}: version {have.version} is current, not the file's "
                                           f"{declared.version}: model {name} is rolled out, its rollout decides")
                continue
            if declared is None:
                continue
            new = self.deployed.get(declared.key)
            if have is None and new is not None:
                continue  # deployed as the current version
            if have is None or have.version != declared.version:
                self.add("set_current", f"model {name}", f"current version {have.version if have else 'none'} -> "
                                                         f"{declared.version}", name=name, version=declared.version)

    # -- links ----------------------------------------------------------------------------------------
    def links(self) -> None:
        desired = {(link.app, link.model) for link in self.desired.links}
        apps = {app.name: app for app in self.desired.apps}
        if self.prune:
            for running in self.running.apps.values():
                if running.name in self.recreated:
                    continue
                for model in running.links:
                    if (running.name, model) not in desired:
                        self.add("unlink", f"link {model} -> {running.name}", "not in the file", app=running.name,
                                 model=model)
        for link in self.desired.links:
            app = apps.get(link.app)
            have_app = self.running.apps.get(link.app)
            if app is None and have_app is None:
                self.error(link, f"no application {link.app!r} in the file or in clipper", "app")
                continue
            types = [m.input_type for m in self.desired.models if m.name == link.model] or \
                [m.input_type for m in self.running.versions(link.model)]
            if not types:
                self.error(link, f"no model {link.model!r} in the file or in clipper", "model")
                continue
            app_type = app.input_type if app is not None else have_app.input_type if have_app is not None else ""
            wrong = [t for t in types if t != app_type]
            if wrong:
                self.error(link, f"model {link.model} takes {wrong[0]}, application {link.app} takes {app_type}",
                           "model")
                continue
            if not any(m.current for m in self.desired.models if m.name == link.model) and \
                    self.running.current(link.model) is None:
                self.error(link, f"model {link.model} has no current version to answer {link.app}'s queries; "
                                 "declare one current", "model")
                continue
            if link.app in self.recreated or have_app is None or link.model not in have_app.links:
                self.add("link", f"link {link.model} -> {link.app}", app=link.app, model=link.model)

    # -- rollouts -------------------------------------------------------------------------------------
    def rollouts(self) -> None:
        for model in self.desired.models:
            if model.rollout is None:
                continue
            rollout = self.running.rollouts.get(model.name)
            if rollout is not None and str(rollout.get("candidate")) == model.version:
                self.plan.notes.append(f"model {model.key}: its rollout has started ({rollout.get('state')}: "
                                       f"{rollout.get('reason', '')})")
                continue
            if rollout is not None and rollout.get("state") in ACTIVE:
                self.error(model, f"model {model.name} has a {rollout['state']} rollout of version "
                                  f"{rollout.get('candidate')}: wait for it to end or abort it "
                                  f"(clipper rollout abort {model.name})", "rollout")
                continue
            have = self.running.models.get(model.key)
            if have is not None and have.current:
                self.plan.notes.append(f"model {model.key} is current already: no rollout to start")
                continue
            baseline = self.running.current(model.name) or next(
                (m for m in self.desired.models if m.name == model.name and m.current), None)
            if baseline is None or baseline.version == model.version:
                self.error(model, f"a rollout needs a current version of {model.name} to roll out against; "
                                  "declare one (another version, current)", "rollout")
                continue
            settings = model.rollout
            steps = ",".join(f"{s:g}" for s in settings.get("steps", ())) or "default steps"
            self.add("start_rollout", f"rollout {model.key}", f"{settings.get('mode', 'canary')} against "
                                                               f"{baseline.version}, {steps}", spec=model)

    # -- prune ----------------------------------------------------------------------------------------
    def prune_objects(self) -> None:
        if not self.prune:
            return
        declared = {m.key for m in self.desired.models}
        by_name: dict[str, list[str]] = {}
        for model in self.running.models.values():
            if model.key in declared:
                continue
            rollout = self.running.rollouts.get(model.name)
            if rollout is not None and rollout.get("state") in ACTIVE and model.version in (
                    str(rollout.get("candidate")), str(rollout.get("baseline"))):
                self.plan.errors.append(Problem(self.desired.file, 0, "", f"{model.key} is not in the file but is in "
                                                f"a {rollout['state']} rollout: end the rollout first"))
                continue
            kept = [m for m in self.desired.models if m.name == model.name]
            if model.current and kept and not any(m.current or self.desired.rolled_out(m.name) for m in kept):
                self.plan.errors.append(Problem(self.desired.file, 0, "", f"{model.key} is current and not in the "
                                                "file, which declares no other current version of it"))
                continue
            by_name.setdefault(model.name, []).append(model.version)
        for name, versions in by_name.items():
            for version in versions:
                self.add("delete_model", f"model {name}:{version}", "not in the file", name=name, version=version)
        apps = {a.name for a in self.desired.apps}
        for app in self.running.apps.values():
            if app.name not in apps:
                self.add("delete_app", f"application {app.name}", "not in the file", name=app.name)

    def make(self) -> Plan:
        self.apps()
        self.models()
        self.current_versions()
        self.links()
        self.rollouts()
        self.prune_objects()
        return self.plan


def make_plan(desired: Desired, running: Running, *, prune: bool = False, recreate: bool = False) -> Plan:
    """The actions that make ``running`` what ``desired`` declares, in a safe order; errors for what cannot change.

    :param prune: delete what the file does not declare (links, model versions, applications)
    :param recreate: delete and register again an application whose fixed fields changed
    """
    return _Planner(desired, running, prune, recreate).make()
