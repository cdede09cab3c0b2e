"""Deploy Python closures, as Clipper's ``clipper_admin.deployers.python`` did."""

from __future__ import annotations

from typing import Any

from clipper_core.default_plugins.closure_deployer import PythonClosureDeployer
from clipper_core.deployers.target import deploy_target

__all__ = ["create_endpoint", "deploy_python_closure"]


def deploy_python_closure(clipper_conn: Any, name: str, version: Any, input_type: str, func: Any,
                          base_image: str = "default", labels: list[str] | None = None, registry: str | None = None,
                          num_replicas: int = 1, batch_size: int = -1,
                          pkgs_to_install: list[str] | None = None, *, make_current: bool = True) -> None:
    """Serialize ``func`` (a function of a batch returning one output per input) with what it captures, build
    it into a model the container manager runs, register it as the current version (unless
    ``make_current=False``) and start its replicas.

    :param clipper_conn: a started or connected ``ClipperConnection``
    :param func: ``func(inputs) -> list``; numeric inputs arrive as a 2-D numpy array (rows of equal length)
        or a list of 1-D arrays, strings as ``str``, bytes as ``bytes``
    :param make_current: False: register the version without making it current (its replicas start, the
        current version keeps every query), e.g. to roll it out with ``start_rollout``
    """
    target = deploy_target(clipper_conn, make_current)
    PythonClosureDeployer().deploy(target, name, version, input_type, func, base_image=base_image,
                                   labels=labels, registry=registry, num_replicas=num_replicas,
                                   batch_size=batch_size, pkgs_to_install=pkgs_to_install)


def create_endpoint(clipper_conn: Any, name: str, input_type: str, func: Any, default_output: str = "None",
                    version: Any = 1, slo_micros: int = 3000000, labels: list[str] | None = None,
                    registry: str | None = None, base_image: str = "default", num_replicas: int = 1,
                    batch_size: int = -1, pkgs_to_install: list[str] | None = None) -> None:
    """Register an app named ``name``, deploy ``func`` as model ``name`` and link the two."""
    clipper_conn.register_application(name, input_type, default_output, slo_micros)
    deploy_python_closure(clipper_conn, name, version, input_type, func, base_image, labels, registry,
                          num_replicas, batch_size, pkgs_to_install)
    clipper_conn.link_model_to_app(name, name)
