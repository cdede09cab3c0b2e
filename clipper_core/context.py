"""What the query and management frontends of one server process share: the dependencies the server assembles
(config, store, plugin registry, query path, replica supervisor) and hands to each web app."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from clipper_core.config import Config
from clipper_core.plugins import PluginRegistry
from clipper_core.serving.query_path import QueryPath
from clipper_core.state import Model, StateStore

__all__ = ["AutoscalerView", "ReplicaSupervisor", "RolloutsView", "ServerContext"]


class ReplicaSupervisor(Protocol):
    """Server-side half of a container manager that runs replicas itself (the local manager)."""

    async def set_replicas(self, model: Model, num_replicas: int) -> None:
        """Start or stop replica processes of ``model`` until ``num_replicas`` run (0 stops them all)."""

    def desired(self, name: str, version: str) -> int: ...

    def running(self, name: str, version: str) -> int: ...

    def log_files(self) -> list[Path]: ...


class AutoscalerView(Protocol):
    """What the management API reads of the autoscaler running in this process."""

    def status(self, name: str, version: str) -> dict[str, Any] | None:
        """The last decision for a model version (desired count, reason, figures, when), or None."""

    def metric_rows(self) -> list[tuple[str, str, str, dict[str, str], Any]]:
        """Its Prometheus rows (:class:`clipper_core.metrics.MetricsCollector`)."""


class RolloutsView(Protocol):
    """What the management API reads of the rollout controller running in this process."""

    lock: asyncio.Lock
    """Held while a rollout record is read and changed (the controller's ticks and the admin operations)."""

    def live(self, model: str) -> dict[str, Any] | None:
        """The controller's last look at a model's active rollout (reason, figures, when), or None."""

    def forget(self, model: str) -> None:
        """Drop that look (an operation changed the rollout since)."""


@dataclass
class ServerContext:
    config: Config
    store: StateStore
    registry: PluginRegistry
    supervisor: ReplicaSupervisor | None = None
    query_path: QueryPath | None = None
    """The query path, when this process runs a query frontend."""
    rpc_addr: str = ""
    """Where model containers connect (tcp://host:port), once bound."""
    autoscaler: AutoscalerView | None = None
    """The autoscaler, when this process runs the management API and one was started."""
    rollouts: RolloutsView | None = None
    """The rollout controller, when this process runs the management API."""
    request_shutdown: Callable[[], None] | None = None
    """Ask the server process to stop gracefully (set by the server)."""
    extra: dict[str, object] = field(default_factory=dict)
