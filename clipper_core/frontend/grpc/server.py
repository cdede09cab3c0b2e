"""Starting and stopping the V2 gRPC endpoint (``grpc.aio``) on the running event loop.

grpcio is an optional dependency (``clipper-core[grpc]``) and the protocol's modules are generated when the
package is built, so both are imported only here, when a server is started with ``CLIPPER_GRPC_PORT``; a
missing one fails the start with a :class:`~clipper_core.config.ConfigError` saying what to install.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from clipper_core.config import ConfigError
from clipper_core.context import ServerContext

__all__ = ["STOP_GRACE", "GrpcEndpoint", "start_grpc_endpoint"]

STOP_GRACE = 5.0
"""Seconds a stop lets the RPCs in flight finish (the drain before it has answered the queries already)."""


@dataclass
class GrpcEndpoint:
    server: Any
    """The ``grpc.aio.Server``."""
    address: str
    """``host:port`` bound."""

    async def stop(self, grace: float = STOP_GRACE) -> None:
        await self.server.stop(grace)


def _require_grpc() -> Any:
    try:
        return importlib.import_module("grpc.aio")
    except ImportError as exc:
        raise ConfigError(f"CLIPPER_GRPC_PORT is set but grpcio cannot be imported ({exc}): the gRPC endpoint needs "
                          "the grpc extra, pip install 'clipper-core[grpc]' (or unset CLIPPER_GRPC_PORT)") from None


def _service_module() -> Any:
    try:
        return importlib.import_module("clipper_core.frontend.grpc.service")
    except ImportError as exc:
        if "grpc_predict_v2_pb2" not in str(exc):
            raise
        raise ConfigError(f"the V2 gRPC modules were not generated ({exc}): they are compiled from "
                          "grpc_predict_v2.proto when clipper-core is built; reinstall it (pip install -e . or "
                          "pip install 'clipper-core[grpc]')") from None


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


async def start_grpc_endpoint(ctx: ServerContext, host: str, port: int, *, reuse_port: bool = False,
                              max_message_bytes: int = 16 * 1024 * 1024) -> GrpcEndpoint:
    """Serve ``inference.GRPCInferenceService`` for ``ctx`` on ``host:port`` (0: any free port). The largest
    request is ``max_message_bytes`` (the REST body limit; larger: RESOURCE_EXHAUSTED); the port is shared with
    other processes (SO_REUSEPORT) only with ``reuse_port``, as the query port is, else a port in use fails."""
    aio = _require_grpc()
    service = _service_module()
    server = aio.server(options=[("grpc.so_reuseport", 1 if reuse_port else 0),
                                 ("grpc.max_receive_message_length", max_message_bytes),
                                 ("grpc.max_send_message_length", -1)])
    service.add_to_server(server, service.InferenceService(ctx))
    try:
        bound = server.add_insecure_port(_address(host, port))
    except RuntimeError as exc:
        raise ConfigError(f"the gRPC endpoint cannot listen on {_address(host, port)}: {exc}") from None
    if not bound:  # older grpcio answers 0 instead of raising
        raise ConfigError(f"the gRPC endpoint cannot listen on {_address(host, port)} (in use?)")
    await server.start()
    return GrpcEndpoint(server, _address(host, bound))
