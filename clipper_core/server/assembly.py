"""Assembling a clipper server process from its roles: ``query`` (query path, RPC server, query REST API) and
``admin`` (management REST API and, with ``manage_replicas``, the local replica supervisor). The embedded
server (``clipper start --foreground``) runs both; :func:`run` runs one until SIGTERM/SIGINT or
``POST /admin/shutdown``.

Every long-lived resource is an async generator in :mod:`clipper_core.server.resources`; :func:`start_server`
starts them in order and :meth:`RunningServer.stop` unwinds them in reverse (draining queries first).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from clipper_core.config import Config
from clipper_core.context import ServerContext
from clipper_core.frontend import create_query_app
from clipper_core.frontend.front_door import RequestHandler, front_door
from clipper_core.interfaces import PredictionCache
from clipper_core.plugins import PluginRegistry, make_plugin_manager
from clipper_core.rpc import RpcServer
from clipper_core.server import resources
from clipper_core.server.lifecycle import Lifecycle
from clipper_core.server.local_replicas import LocalReplicaSupervisor
from clipper_core.serving.snapshot import Snapshot
from clipper_core.tracing import setup_logging

__all__ = ["RunningServer", "Site", "run", "serve", "start_server"]

log = logging.getLogger(__name__)
Roles = tuple[str, ...]


@dataclass
class Site:
    """One HTTP API of the server and where it listens."""

    role: str
    app: web.Application
    host: str
    port: int
    reuse_port: bool = False
    wrap_handler: Callable[[RequestHandler], RequestHandler] | None = None
    """Put in front of the application's request handler (the query port's front door)."""
    cancel_on_disconnect: bool = False
    """Cancel a handler whose client disconnected (aiohttp's ``handler_cancellation``): the query port's, so a
    query whose client left takes its tasks out of the queues (issue #18)."""
    bound: str = ""
    """``host:port`` actually bound, once started."""


@dataclass
class RunningServer:
    ctx: ServerContext
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    cache: PredictionCache | None = None
    rpc: RpcServer | None = None
    local_supervisor: LocalReplicaSupervisor | None = None
    sites: list[Site] = field(default_factory=list)
    runners: list[web.AppRunner] = field(default_factory=list)
    grpc_addr: str = ""
    """``host:port`` of the V2 gRPC endpoint, once bound (empty: off, ``CLIPPER_GRPC_PORT`` unset)."""
    _stopping: asyncio.Task[None] | None = None

    def _addr(self, role: str) -> str:
        return next((s.bound for s in self.sites if s.role == role), "")

    @property
    def query_addr(self) -> str:
        return self._addr("query")

    @property
    def admin_addr(self) -> str:
        return self._addr("admin")

    async def stop(self) -> None:
        """Graceful stop: drain the queries in flight, close the HTTP APIs, stop replicas, RPC and store."""
        if self._stopping is None:
            self._stopping = asyncio.get_running_loop().create_task(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        try:
            await self.lifecycle.stop()
        finally:
            self.stopped.set()

    def request_stop(self) -> None:
        """Start a graceful stop without waiting for it (signal handlers, ``POST /admin/shutdown``)."""
        if self._stopping is None:
            self._stopping = asyncio.get_running_loop().create_task(self._stop())


async def start_server(config: Config, roles: Roles = ("query", "admin")) -> RunningServer:
    """Start the given roles on the running loop. Returns once every port is bound (and runtime.json is
    written, with ``write_runtime``); a resource that fails to start stops the ones started before it."""
    config.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    registry = PluginRegistry.create(make_plugin_manager(disabled=config.disabled_plugins))
    ctx = ServerContext(config=config, store=registry.open_state_store(config), registry=registry)
    server = RunningServer(ctx)
    ctx.request_shutdown = server.request_stop
    try:
        await _start(server, roles)
    except BaseException:
        await server.lifecycle.stop()
        raise
    log.info("clipper %s up: queries on %s, admin on %s, RPC on %s, gRPC on %s", "+".join(roles),
             server.query_addr or "-", server.admin_addr or "-", ctx.rpc_addr or "-", server.grpc_addr or "-")
    return server


async def _start(server: RunningServer, roles: Roles) -> None:
    ctx, config = server.ctx, server.ctx.config
    start = server.lifecycle.start
    await start("tracing", resources.tracing(server))
    await start("state store", resources.state_store(server))
    if "query" in roles:
        await start("prediction cache", resources.cache(server))
        await start("query path", resources.query_path(server))
        await start("RPC server", resources.rpc_server(server))
        query_app = create_query_app(ctx)
        server.sites.append(Site("query", query_app, config.query_host, config.query_port, config.reuse_port,
                                 wrap_handler=front_door(query_app), cancel_on_disconnect=True))
    if "admin" in roles:
        if config.manage_replicas:
            await start("replica supervisor", resources.supervisor(server))
        # Before the admin API serves (and stopped after it): every rollout operation is under its lock.
        await start("rollout controller", resources.rollout_controller(server))
        server.sites.append(Site("admin", _admin_app(ctx), config.admin_host, config.admin_port))
    await start("web APIs", resources.web_sites(server))
    if "query" in roles and config.grpc_port is not None:
        await start("gRPC API", resources.grpc_api(server))
    ctx.extra.update(query_addr=server.query_addr, admin_addr=server.admin_addr, metrics_addr=server.query_addr,
                     grpc_addr=server.grpc_addr)
    await start("frontend registry", resources.frontend_registry(server))
    await start("restored replicas", resources.restored_replicas(server))
    if "admin" in roles and (config.manage_replicas or config.autoscale_manager):
        await start("autoscaler", resources.autoscaler(server))
    await start("drain", resources.drain(server))
    if config.write_runtime:
        await start("runtime file", resources.runtime_file(server))


def _admin_app(ctx: ServerContext) -> web.Application:
    from clipper_core.management import create_admin_app

    app = create_admin_app(ctx)
    if ctx.query_path is not None:
        app.middlewares.append(_synced(ctx.query_path.snapshot))
    return app


def _synced(snapshot: Snapshot) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Admin writes return only once the query path sees them (in-process store notifications)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
        response = await handler(request)
        await snapshot.sync()
        return response

    return middleware


async def serve(config: Config, roles: Roles = ("query", "admin")) -> None:
    """A server process: start the roles, then serve until told to stop."""
    server = await start_server(config, roles)
    freeze_heap()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.request_stop)
    await server.stopped.wait()


def freeze_heap() -> None:
    """Put what the process holds once it serves (modules, plugins, the loaded state: about 200,000 objects)
    out of the garbage collector's reach, so that a full collection walks only what serving allocates. Measured
    with noop at 64 connections: the full collections of the whole heap held one query in 200 for 20-100 ms (p99
    44 ms with them, 5.7 ms with the collector off); the same with this freeze in bench/README.md."""
    gc.collect()
    gc.freeze()
    log.info("%d objects held since start-up frozen out of the garbage collector's reach", gc.get_freeze_count())


def run(config: Config, roles: Roles = ("query", "admin")) -> None:
    """Run the server (by default the embedded one: every role) until SIGTERM/SIGINT or POST /admin/shutdown."""
    setup_logging(os.environ.get("CLIPPER_LOG_LEVEL", "INFO"))
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        asyncio.run(serve(config, roles))
    else:
        uvloop.run(serve(config, roles))


