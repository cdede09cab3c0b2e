"""Carry a :class:`.plan.Plan` out through ``ClipperConnection``, one action at a time in the plan's order, and
wait for replicas with a progress line (on a terminal only)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from clipper_core.client.connection import ClipperConnection
from clipper_core.declarative.plan import Action, Plan
from clipper_core.declarative.running import ready_replicas
from clipper_core.declarative.sources import model_directory
from clipper_core.declarative.spec import DIGEST_LABEL, AppSpec, ModelSpec
from clipper_core.errors import ClipperException
from clipper_core.names import NO_CONTAINER
from clipper_core.plugins import PluginRegistry
from clipper_core.progress import Progress

__all__ = ["ApplyFailed", "apply_plan", "deploy_version", "wait_for_replicas"]


class ApplyFailed(ClipperException):
    """An action failed: ``done`` lists those carried out before it."""

    def __init__(self, action: Action, cause: Exception, done: list[Action]) -> None:
        self.action = action
        self.done = done
        super().__init__(f"{action.target}: {action.kind} failed: {cause} ({len(done)} earlier change(s) were "
                         "made; run clipper diff to see what is left)")


def wait_for_replicas(conn: ClipperConnection, name: str, version: str, count: int, *, timeout: float,
                      progress: Progress, interval: float = 0.25, clock: Callable[[], float] = time.monotonic,
                      sleep: Callable[[float], None] = time.sleep) -> None:
    """Return once ``count`` replicas of ``name:version`` are connected; ClipperException after ``timeout`` s."""
    key = f"{name}:{version}"
    start = clock()
    while True:
        ready = ready_replicas(conn).get(key, 0)
        waited = clock() - start
        if ready >= count:
            progress.done(f"{key}: {ready}/{count} replica(s) ready ({waited:.0f} s)")
            return
        if waited >= timeout:
            progress.done()
            raise ClipperException(f"{key}: {ready} of {count} replica(s) connected after {timeout:g} s; the "
                                   "replicas' logs say why (clipper logs)")
        progress.update(f"{key}: waiting for replicas, {ready}/{count} ready ({waited:.0f} s)")
        sleep(interval)


def deploy_version(conn: ClipperConnection, registry: PluginRegistry, model: ModelSpec, *, make_current: bool,
                   replicas: int, progress: Progress) -> None:
    """Build ``model``'s source into what the container manager runs, register the version (with its labels,
    batching, autoscaling and the digest label) and start its replicas."""
    source = model.source
    labels = [*model.labels, DIGEST_LABEL + source.digest]
    register: dict[str, Any] = {"labels": labels, "batch_size": model.batch_size, "autoscaling": model.autoscaling,
                                "make_current": make_current,
                                "batch_wait_timeout_micros": model.batch_wait_timeout_micros}
    if source.kind == "image":
        image = None if source.value == NO_CONTAINER else source.value
    else:
        with model_directory(registry, source.kind, source.value, source.deployer, name=model.name,
                             version=model.version, input_type=model.input_type, options=source.options,
                             pkgs_to_install=list(source.pkgs_to_install)) as directory:
            progress.update(f"{model.key}: building from {source.value}")
            image = conn.build_model(model.name, model.version, directory, source.base_image,
                                     pkgs_to_install=list(source.pkgs_to_install) or None)
    conn.register_model(model.name, model.version, model.input_type, image=image, **register)
    if image is not None and replicas:
        progress.update(f"{model.key}: starting {replicas} replica(s)")
        conn.cm.deploy_model(model.name, model.version, model.input_type, image, replicas)
    progress.done()


def _settings(autoscaling: dict[str, Any] | None) -> dict[str, Any]:
    if autoscaling is None:
        return {"off": True}
    keys = ("min_replicas", "max_replicas", "target_inflight_per_replica", "target_latency_fraction",
            "upscale_delay_s", "downscale_delay_s", "smoothing_window_s")
    return {key: autoscaling[key] for key in keys if key in autoscaling}


def _run(action: Action, conn: ClipperConnection, registry: PluginRegistry, progress: Progress,
         timeout: float) -> None:
    args = action.args
    spec: Any = args.get("spec")
    if action.kind in ("add_app", "recreate_app"):
        app: AppSpec = spec
        if action.kind == "recreate_app":
            conn.unregister_application(app.name)
        conn.register_application(app.name, app.input_type, app.default_output, app.slo_micros, policy=app.policy,
                                  policy_config=app.policy_config, cache_enabled=app.cache)
    elif action.kind == "set_policy":
        conn.set_app_policy(spec.name, spec.policy, spec.policy_config)
    elif action.kind == "deploy":
        deploy_version(conn, registry, spec, make_current=args["make_current"], replicas=args["replicas"],
                       progress=progress)
    elif action.kind == "scale":
        conn.set_num_replicas(spec.name, spec.replicas, spec.version)
    elif action.kind == "autoscale":
        conn.set_autoscaling(spec.name, spec.version, **_settings(spec.autoscaling))
        if spec.autoscaling is None:
            conn.set_num_replicas(spec.name, spec.replicas, spec.version)
    elif action.kind == "wait":
        name, _, version = args["key"].partition(":")
        wait_for_replicas(conn, name, version, args["count"], timeout=timeout, progress=progress)
    elif action.kind == "set_current":
        conn.set_model_version(args["name"], args["version"])
    elif action.kind == "unlink":
        conn.unlink_model_from_app(args["app"], args["model"])
    elif action.kind == "link":
        conn.link_model_to_app(args["app"], args["model"])
    elif action.kind == "start_rollout":
        conn.start_rollout(spec.name, spec.version, **spec.rollout)
    elif action.kind == "delete_model":
        conn.stop_versioned_models({args["name"]: [args["version"]]})
    elif action.kind == "delete_app":
        conn.unregister_application(args["name"])
    else:
        raise ClipperException(f"unknown action {action.kind!r}")


def apply_plan(plan: Plan, conn: ClipperConnection, registry: PluginRegistry, *,
               report: Callable[[Action], None] = lambda action: None, progress: Progress | None = None,
               timeout: float = 300.0) -> list[Action]:
    """Carry out every action of ``plan`` in order, calling ``report`` after each; return them.

    :raises ClipperException: the plan has errors (nothing is done)
    :raises ApplyFailed: an action failed (those before it were carried out)
    :param timeout: seconds to wait for a version's replicas
    """
    if plan.errors:
        raise ClipperException("\n".join(str(e) for e in plan.errors))
    progress = progress or Progress()
    done: list[Action] = []
    for action in plan.actions:
        try:
            _run(action, conn, registry, progress, timeout)
        except Exception as exc:
            progress.done()
            raise ApplyFailed(action, exc, done) from exc
        done.append(action)
        report(action)
    return done
