"""ContainerManager: where clipper and its model replicas run (local processes, Docker, Kubernetes).

Used by :class:`clipper_core.ClipperConnection` in the user's process. Lifecycle, in call order::

    cm = LocalContainerManager(...)
    cm.start_clipper(...)  or  cm.connect()     # start the frontends (and store), or find running ones
    cm.deploy_model(name, version, input_type, image_or_dir, num_replicas)
    cm.set_num_replicas(...); cm.get_num_replicas(...); cm.get_logs(dir)
    cm.stop_models({name: [versions]}); cm.stop_all()

The manager starts and supervises replicas (restart on crash with back-off) and reports the addresses of the
query, management and metrics endpoints.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

__all__ = ["ContainerManager"]


class ContainerManager(abc.ABC):
    name: ClassVar[str]
    supports_build: ClassVar[bool] = False
    """True when ``build_model`` makes a runnable artefact (an image) from a model directory."""

    admin_token: str | None = None

    @abc.abstractmethod
    def start_clipper(self, **options: Any) -> None: ...

    @abc.abstractmethod
    def connect(self) -> None: ...

    @abc.abstractmethod
    def deploy_model(self, name: str, version: str, input_type: str, image: str, num_replicas: int = 1) -> None:
        """Start ``num_replicas`` replicas of a registered or about-to-be-registered model version."""

    def build_model(self, name: str, version: str, model_data_path: str, base_image: str | None = None,
                    pkgs_to_install: list[str] | None = None) -> str:
        """Turn a model directory into what ``deploy_model`` runs; returns its name (an image, a directory)."""
        raise NotImplementedError(f"container manager '{self.name}' cannot build models")

    @abc.abstractmethod
    def get_num_replicas(self, name: str, version: str) -> int: ...

    @abc.abstractmethod
    def set_num_replicas(self, name: str, version: str, input_type: str, image: str, num_replicas: int) -> None: ...

    @abc.abstractmethod
    def get_logs(self, logging_dir: str) -> list[str]:
        """Copy every clipper and replica log into ``logging_dir``; return the file paths."""

    @abc.abstractmethod
    def stop_models(self, models: dict[str, list[str]]) -> None:
        """Stop every replica of the given {name: [versions]}."""

    @abc.abstractmethod
    def stop_all_model_containers(self) -> None: ...

    @abc.abstractmethod
    def stop_all(self, graceful: bool = True) -> None:
        """Stop clipper itself and every replica."""

    @abc.abstractmethod
    def get_admin_addr(self) -> str:
        """``host:port`` of the management frontend."""

    @abc.abstractmethod
    def get_query_addr(self) -> str:
        """``host:port`` of the query frontend."""

    @abc.abstractmethod
    def get_metric_addr(self) -> str:
        """``host:port`` serving Prometheus metrics."""
