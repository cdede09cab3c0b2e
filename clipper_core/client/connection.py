"""``ClipperConnection``: Clipper's ``clipper_admin`` Python API, method for method (clipper-reference §3.1).

It drives the management REST API and delegates replicas to a container manager::

    conn = ClipperConnection(LocalContainerManager())
    conn.start_clipper()
    conn.register_application("hello-world", "doubles", "-1.0", 100000)
"""

from __future__ import annotations

import inspect
import logging
import re
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np

from clipper_core.client.admin_http import AdminClient
from clipper_core.client.tenancy import TenancyMethods
from clipper_core.errors import ClipperException, UnconnectedException
from clipper_core.inputs import decode_input, parse_input_type
from clipper_core.interfaces import ContainerManager
from clipper_core.names import NO_CONTAINER

__all__ = ["CONTAINERLESS_MODEL_IMAGE", "ClipperConnection"]

log = logging.getLogger(__name__)
CONTAINERLESS_MODEL_IMAGE = NO_CONTAINER
_MODEL_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_VERSION = re.compile(r"^[A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?$")


class _ServerDefault:
    def __repr__(self) -> str:
        return "<the server's default>"


_SERVER_DEFAULT: Any = _ServerDefault()
"""A setting left out of a request, so the server's default applies (where None means something else)."""


class ClipperConnection(TenancyMethods):
    """Create with a container manager, then ``start_clipper()`` or ``connect()``. API keys and an app's limits:
    :class:`~clipper_core.client.tenancy.TenancyMethods` (``create_api_key``, ``set_app_limits``, ...).

    :param container_manager: where clipper and the replicas run (``LocalContainerManager`` built in)
    """

    def __init__(self, container_manager: ContainerManager) -> None:
        self.cm = container_manager
        self.connected = False

    # -- connection ------------------------------------------------------------------------------------
    def start_clipper(self, *args: Any, **kwargs: Any) -> None:
        """Start clipper through the container manager and wait until it answers."""
        self.cm.start_clipper(*args, **kwargs)
        self.connected = True
        log.info("clipper is running: queries on %s", self.cm.get_query_addr())

    def connect(self) -> None:
        self.cm.connect()
        self.connected = True

    @property
    def _admin(self) -> AdminClient:
        if not self.connected:
            raise UnconnectedException()
        return AdminClient(f"http://{self.cm.get_admin_addr()}", self.cm.admin_token)

    def _post(self, endpoint: str, body: dict[str, Any]) -> Any:
        return self._admin.post(f"/admin/{endpoint}", body)

    # -- applications --------------------------------------------------------------------------------
    def register_application(self, name: str, input_type: str, default_output: str, slo_micros: int,
                             policy: str | None = None, policy_config: dict[str, Any] | None = None,
                             cache_enabled: bool = True) -> None:
        """Register an app; ``policy`` (default Clipper's one-model policy) picks and combines its models."""
        body: dict[str, Any] = {"name": name, "input_type": input_type, "default_output": default_output,
                                "latency_slo_micros": slo_micros, "cache_enabled": cache_enabled}
        if policy is not None:
            body["policy"] = policy
        if policy_config is not None:
            body["policy_config"] = policy_config
        self._post("add_app", body)

    def set_app_policy(self, name: str, policy: str, policy_config: dict[str, Any] | None = None) -> None:
        """Switch an app to another selection policy (registered by a plugin); learning starts afresh."""
        self._post("set_app_policy", {"name": name, "policy": policy, "policy_config": policy_config or {}})

    def unregister_application(self, name: str) -> None:
        self._post("delete_app", {"name": name})

    def delete_application(self, name: str) -> None:
        """Deprecated alias of :meth:`unregister_application` (as in Clipper)."""
        self.unregister_application(name)

    def link_model_to_app(self, app_name: str, model_name: str) -> None:
        self._post("add_model_links", {"app_name": app_name, "model_names": [model_name]})

    def unlink_model_from_app(self, app_name: str, model_name: str) -> None:
        self._post("delete_model_links", {"app_name": app_name, "model_names": [model_name]})

    def get_all_apps(self, verbose: bool = False) -> list[Any]:
        return list(self._post("get_all_applications", {"verbose": verbose}))

    def get_app_info(self, name: str) -> dict[str, Any] | None:
        info = self._post("get_application", {"name": name})
        return info or None

    def get_linked_models(self, app_name: str) -> list[str]:
        return list(self._post("get_linked_models", {"app_name": app_name}))

    # -- models ----------------------------------------------------------------------------------------
    @staticmethod
    def _check_name_version(name: str, version: str) -> None:
        if not _MODEL_NAME.match(name):
            raise ClipperException(f"Invalid value: {name}: a model name must be lower-case letters, digits and "
                                   "'-', starting and ending with a letter or digit")
        if not _VERSION.match(version):
            raise ClipperException(f"Invalid value: {version}: a model version must be letters, digits, '-', '_' "
                                   "and '.', starting and ending with a letter or digit")

    def build_and_deploy_model(self, name: str, version: Any, input_type: str, model_data_path: str,
                               base_image: str = "default", labels: list[str] | None = None,
                               container_registry: str | None = None, num_replicas: int = 1,
                               batch_size: int = -1, pkgs_to_install: list[str] | None = None, *,
                               make_current: bool = True) -> None:
        """:meth:`build_model`, then :meth:`deploy_model` (``make_current``: see there)."""
        image = self.build_model(name, version, model_data_path, base_image, container_registry, pkgs_to_install)
        self.deploy_model(name, version, input_type, image, labels, num_replicas, batch_size,
                          make_current=make_current)

    def build_model(self, name: str, version: Any, model_data_path: str, base_image: str = "default",
                    container_registry: str | None = None, pkgs_to_install: list[str] | None = None) -> str:
        """Make what the container manager runs from a model directory (an image, or a local directory)."""
        version = str(version)
        self._check_name_version(name, version)
        if not self.connected:
            raise UnconnectedException()
        if container_registry:  # only managers that push images take it (Docker, Kubernetes)
            if "container_registry" not in inspect.signature(self.cm.build_model).parameters:
                raise ClipperException(f"container manager {self.cm.name!r} does not push images to a registry; "
                                       f"build without container_registry")
            return self.cm.build_model(name, version, model_data_path, base_image, pkgs_to_install,
                                       container_registry=container_registry)  # type: ignore[call-arg]
        return self.cm.build_model(name, version, model_data_path, base_image, pkgs_to_install)

    def deploy_model(self, name: str, version: Any, input_type: str, image: str, labels: list[str] | None = None,
                     num_replicas: int = 1, batch_size: int = -1, *, make_current: bool = True) -> None:
        """Register the version and start ``num_replicas`` replicas of ``image``. It becomes the current version
        unless ``make_current=False``: then it runs but takes no traffic (a candidate for :meth:`start_rollout`,
        or for :meth:`set_model_version` later)."""
        version = str(version)
        self._check_name_version(name, version)
        parse_input_type(input_type)
        self.register_model(name, version, input_type, image=image, labels=labels, batch_size=batch_size,
                            make_current=make_current)
        self.cm.deploy_model(name, version, input_type, image, num_replicas)

    def register_model(self, name: str, version: Any, input_type: str, image: str | None = None,
                       labels: list[str] | None = None, batch_size: int = -1,
                       autoscaling: dict[str, Any] | None = None, *, make_current: bool = True,
                       batch_wait_timeout_micros: int = 0) -> None:
        """Register a model version; ``autoscaling``: its settings (see :meth:`set_autoscaling`), or None;
        ``make_current=False``: the model's current version stays as it is (Clipper's add_model always makes
        the new version current, and so does this by default); ``batch_wait_timeout_micros``: how long a batch
        may wait to fill up (0: not at all)."""
        body = {"model_name": name, "model_version": str(version), "labels": labels or [],
                "input_type": input_type, "container_name": image or CONTAINERLESS_MODEL_IMAGE,
                "model_data_path": "DEPRECATED", "batch_size": batch_size}
        if batch_wait_timeout_micros:  # sent only when set, as the other additions to Clipper's request
            body["batch_wait_timeout_micros"] = batch_wait_timeout_micros
        if autoscaling is not None:
            body["autoscaling"] = autoscaling
        if not make_current:  # sent only when false: the default request is Clipper's
            body["make_current"] = False
        self._post("add_model", body)

    def set_autoscaling(self, name: str, version: Any = None, *, min_replicas: int = 1, max_replicas: int = 4,
                        target_inflight_per_replica: float | None = None,
                        target_latency_fraction: float | None = None, upscale_delay_s: float = 3.0,
                        downscale_delay_s: float = 30.0, smoothing_window_s: float = 5.0,
                        off: bool = False) -> dict[str, Any] | None:
        """Let the management server's autoscaler size a model version (default: the current one) between
        ``min_replicas`` (0: scale to zero when idle, and back from zero on the first query) and
        ``max_replicas``, aiming at ``target_inflight_per_replica`` outstanding inputs per replica (the
        default target, 4) or at a p99 latency of ``target_latency_fraction`` of the smallest linked SLO.
        ``off=True`` turns it off. Returns the settings now in force (None when off)."""
        model = self._model(name, version)
        settings: dict[str, Any] | None = None
        if not off:
            settings = {"min_replicas": min_replicas, "max_replicas": max_replicas, "upscale_delay_s": upscale_delay_s,
                        "downscale_delay_s": downscale_delay_s, "smoothing_window_s": smoothing_window_s}
            if target_latency_fraction is not None:
                settings["target_latency_fraction"] = target_latency_fraction
                settings["target_inflight_per_replica"] = target_inflight_per_replica
            elif target_inflight_per_replica is not None:
                settings["target_inflight_per_replica"] = target_inflight_per_replica
        answer = self._post("set_autoscaling", {"model_name": name, "model_version": model["model_version"],
                                                "autoscaling": settings})
        return answer.get("autoscaling")

    def get_autoscaling(self, name: str, version: Any = None) -> dict[str, Any]:
        """``{"autoscaling": settings or None, "status": the autoscaler's last decision or None, ...}``."""
        model = self._model(name, version)
        return dict(self._post("get_autoscaling", {"model_name": name, "model_version": model["model_version"]}))

    def get_current_model_version(self, name: str) -> str:
        for model in self.get_all_models(verbose=True):
            if model["model_name"] == name and model["is_current_version"]:
                return str(model["model_version"])
        raise ClipperException(f"No model with name '{name}' exists (or it has no current version)")

    def _model(self, name: str, version: Any) -> dict[str, Any]:
        if version is None:
            version = self.get_current_model_version(name)
        info = self.get_model_info(name, str(version))
        if info is None:
            raise ClipperException(f"Model {name}:{version} does not exist")
        return info

    def get_num_replicas(self, name: str, version: Any = None) -> int:
        model = self._model(name, version)
        return self.cm.get_num_replicas(name, model["model_version"])

    def set_num_replicas(self, name: str, num_replicas: int, version: Any = None) -> None:
        model = self._model(name, version)
        if model["container_name"] == CONTAINERLESS_MODEL_IMAGE:
            raise ClipperException(f"Cannot resize the containerless model {name}:{model['model_version']}")
        self.cm.set_num_replicas(name, model["model_version"], model["input_type"], model["container_name"],
                                 num_replicas)

    def get_all_models(self, verbose: bool = False) -> list[Any]:
        return list(self._post("get_all_models", {"verbose": verbose}))

    def get_model_info(self, name: str, version: Any) -> dict[str, Any] | None:
        return self._post("get_model", {"model_name": name, "model_version": str(version)}) or None

    def get_all_model_replicas(self, verbose: bool = False) -> list[Any]:
        return list(self._post("get_all_containers", {"verbose": verbose}))

    def get_model_replica_info(self, name: str, version: Any, replica_id: int) -> dict[str, Any] | None:
        return self._post("get_container", {"model_name": name, "model_version": str(version),
                                            "replica_id": replica_id}) or None

    def set_model_version(self, name: str, version: Any, num_replicas: int | None = None) -> None:
        """Make ``version`` current (every later query uses it at once); optionally resize it."""
        self._post("set_model_version", {"model_name": name, "model_version": str(version)})
        if num_replicas is not None:
            self.set_num_replicas(name, num_replicas, version)

    # -- rollouts --------------------------------------------------------------------------------------
    def start_rollout(self, model_name: str, version: Any, *, mode: str = "canary",
                      steps: list[float] | None = None, step_seconds: float | None = None,
                      min_queries_per_step: int | None = None, max_error_rate: float | None = _SERVER_DEFAULT,
                      max_p99_ms: float | None = None, max_default_rate: float | None = _SERVER_DEFAULT,
                      min_feedback_reward: float | None = None, min_feedback: int | None = None,
                      reward: str | None = None, min_agreement: float | None = None,
                      agreement_tolerance: float | None = None) -> dict[str, Any]:
        """Roll ``version`` (registered, not current: deploy it with ``make_current=False``) out against the
        current version of ``model_name`` (docs/rollouts.md). ``mode="canary"``: it answers ``steps`` percent
        of the users (default ``[5, 25, 50, 100]``), each step lasting ``step_seconds`` (60) and
        ``min_queries_per_step`` queries (100), then it is promoted; ``mode="shadow"``: ``steps`` percent of the
        queries (default ``[100]``) are mirrored to it, the current version answering every query. The guards
        roll it back at once: ``max_error_rate`` (default 0.01), ``max_default_rate`` (0.05), ``max_p99_ms``,
        ``min_feedback_reward`` (over ``min_feedback`` feedback, ``reward`` ``match``, ``abs_error`` or
        ``squared_error``) and, in shadow mode, ``min_agreement`` (numbers within ``agreement_tolerance``).
        A setting left out takes the server's default; ``max_error_rate=None`` or ``max_default_rate=None``
        turns that guard off. Returns the rollout (see :meth:`get_rollout`)."""
        settings: dict[str, Any] = {"mode": mode, "max_error_rate": max_error_rate,
                                    "max_default_rate": max_default_rate}
        settings = {k: v for k, v in settings.items() if v is not _SERVER_DEFAULT}
        for key, value in (("steps", None if steps is None else list(steps)), ("step_seconds", step_seconds),
                           ("min_queries_per_step", min_queries_per_step), ("max_p99_ms", max_p99_ms),
                           ("min_feedback_reward", min_feedback_reward), ("min_feedback", min_feedback),
                           ("reward", reward), ("min_agreement", min_agreement),
                           ("agreement_tolerance", agreement_tolerance)):
            if value is not None:
                settings[key] = value
        return dict(self._post("start_rollout", {"model_name": model_name, "version": str(version), **settings}))

    def get_rollout(self, model_name: str) -> dict[str, Any]:
        """The model's rollout (the active one, else the last): ``state`` (``running``, ``paused``,
        ``promoted``, ``passed``, ``rolled_back``, ``aborted``), ``candidate`` and ``baseline``, ``step`` (from
        0) of ``settings["steps"]``, ``weights`` (each version's share of the answers; ``mirrored``: the share
        mirrored in shadow mode), ``reason`` (why it holds, or why it ended), ``figures`` of the step per version
        (``{"candidate": {...}, "baseline": {...}}``: queries, error_rate, default_rate, p99_ms, agreement,
        mean_reward, ...) and ``history``."""
        return dict(self._post("get_rollout", {"model_name": model_name}))

    def get_rollouts(self) -> list[dict[str, Any]]:
        """Every model's rollout (see :meth:`get_rollout`), active or ended."""
        return list(self._post("get_rollouts", {}))

    def pause_rollout(self, model_name: str) -> dict[str, Any]:
        """Hold the rollout at its step (the guards still roll it back)."""
        return dict(self._post("pause_rollout", {"model_name": model_name}))

    def resume_rollout(self, model_name: str) -> dict[str, Any]:
        """Resume a paused rollout: its step starts over."""
        return dict(self._post("resume_rollout", {"model_name": model_name}))

    def abort_rollout(self, model_name: str) -> dict[str, Any]:
        """End the rollout: the current version answers every query again."""
        return dict(self._post("abort_rollout", {"model_name": model_name}))

    def promote_rollout(self, model_name: str) -> dict[str, Any]:
        """End the rollout now, making the candidate the current version."""
        return dict(self._post("promote_rollout", {"model_name": model_name}))

    # -- stopping --------------------------------------------------------------------------------------
    def _unregister_versioned_models(self, models: dict[str, list[str]]) -> None:
        for name, versions in models.items():
            for version in versions:
                self._post("delete_versioned_model", {"model_name": name, "model_version": str(version)})

    def _stop_versions(self, grouped: dict[str, list[str]]) -> None:
        """Stop the replicas of these versions and unregister them; autoscaling off first, so that the
        management server's autoscaler does not start replicas of a version being stopped."""
        for model in self.get_all_models(verbose=True):
            if model.get("autoscaling") and model["model_version"] in grouped.get(model["model_name"], ()):
                self._post("set_autoscaling", {"model_name": model["model_name"],
                                               "model_version": model["model_version"], "autoscaling": None})
        self.cm.stop_models(grouped)
        self._unregister_versioned_models(grouped)

    def stop_models(self, model_names: list[str]) -> None:
        """Stop every replica of every version of these models and unregister the versions."""
        grouped: dict[str, list[str]] = {}
        for key in self.get_all_models(verbose=False):
            name, version = key.split(":", 1)
            if name in model_names:
                grouped.setdefault(name, []).append(version)
        self._stop_versions(grouped)

    def stop_versioned_models(self, model_versions_dict: dict[str, list[Any]]) -> None:
        grouped = {name: [str(v) for v in versions] for name, versions in model_versions_dict.items()}
        self._stop_versions(grouped)

    def stop_inactive_model_versions(self, model_names: list[str]) -> None:
        """Stop and unregister every version of these models except the current one."""
        grouped: dict[str, list[str]] = {}
        for model in self.get_all_models(verbose=True):
            if model["model_name"] in model_names and not model["is_current_version"]:
                grouped.setdefault(model["model_name"], []).append(model["model_version"])
        self._stop_versions(grouped)

    def stop_all_model_containers(self) -> None:
        grouped: dict[str, list[str]] = {}
        for key in self.get_all_models(verbose=False):
            name, version = key.split(":", 1)
            grouped.setdefault(name, []).append(version)
        self._stop_versions(grouped)

    def stop_all(self, graceful: bool = True) -> None:
        """Stop clipper and every replica (registrations stay in the state store for the next start)."""
        self.cm.stop_all(graceful=graceful)
        self.connected = False

    # -- inspection ------------------------------------------------------------------------------------
    def get_clipper_logs(self, logging_dir: str = "clipper_logs/") -> list[str]:
        if not self.connected:
            raise UnconnectedException()
        return self.cm.get_logs(logging_dir)

    def inspect_instance(self) -> dict[str, float]:
        """The query frontend's metrics, ``{"name{labels}": value}`` parsed from the Prometheus text."""
        if not self.connected:
            raise UnconnectedException()
        with urllib.request.urlopen(f"http://{self.cm.get_metric_addr()}/metrics", timeout=30) as response:
            text = response.read().decode()
        from clipper_core.metrics import parse_samples

        return parse_samples(text)

    def get_query_addr(self) -> str:
        if not self.connected:
            raise UnconnectedException()
        return self.cm.get_query_addr()

    def get_metric_addr(self) -> str:
        if not self.connected:
            raise UnconnectedException()
        return self.cm.get_metric_addr()

    def test_predict_function(self, query: dict[str, Any], func: Any, input_type: str) -> Any:
        """Run ``func`` locally the way a replica would: decoded inputs, a cloudpickle round trip."""
        kind = parse_input_type(input_type)
        if "input" in query:
            items = [decode_input(query["input"], kind)]
        elif "input_batch" in query:
            items = [decode_input(x, kind, f"input_batch[{i}]") for i, x in enumerate(query["input_batch"])]
        else:
            raise ClipperException("query must have 'input' or 'input_batch'")
        batch: Any = items
        if kind.is_numeric and len({len(x) for x in items}) == 1:
            batch = np.stack(items)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "func.pkl"
            path.write_bytes(cloudpickle.dumps(func))
            reloaded = cloudpickle.loads(path.read_bytes())
        return reloaded(batch)
