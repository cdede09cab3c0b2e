"""What the query and management frontends of one server process share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from clipper_core.config import Config
from clipper_core.plugins import PluginRegistry
from clipper_core.state import Model, StateStore

if TYPE_CHECKING:
    from clipper_core.serving.router import Router

__all__ = ["ReplicaSupervisor", "ServerContext"]


class ReplicaSupervisor(Protocol):
    """Server-side half of a container manager that runs replicas itself (the local manager)."""

    async def set_replicas(self, model: Model, num_replicas: int) -> None:
        """Start or stop replica processes of ``model`` until ``num_replicas`` run (0 stops them all)."""

    def desired(self, name: str, version: str) -> int: ...

    def running(self, name: str, version: str) -> int: ...

    def log_files(self) -> list[Path]: ...


@dataclass
class ServerContext:
    config: Config
    store: StateStore
    registry: PluginRegistry
    supervisor: ReplicaSupervisor | None = None
    router: Router | None = None
    """The query path, when this process runs a query frontend."""
    rpc_addr: str = ""
    """Where model containers connect (tcp://host:port), once bound."""
    request_shutdown: Callable[[], None] | None = None
    """Ask the server process to stop gracefully (set by the server)."""
    extra: dict[str, object] = field(default_factory=dict)
