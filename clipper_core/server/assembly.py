"""The embedded clipper server: query frontend, management frontend, RPC server, local replica supervisor
and state store in one process. ``clipper start --foreground`` runs :func:`run`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from clipper_core.config import Config, ConfigError
from clipper_core.context import ServerContext
from clipper_core.frontend import create_query_app
from clipper_core.http_api import HANDLE_EXCEPTION
from clipper_core.plugins import PluginRegistry, make_plugin_manager
from clipper_core.rpc import ReplicaConnection, RpcServer
from clipper_core.server.local_replicas import LocalReplicaSupervisor
from clipper_core.serving.router import Router
from clipper_core.state import Replica, StateStore

__all__ = ["RunningServer", "open_store", "run", "start_server"]

log = logging.getLogger(__name__)


def open_store(config: Config) -> StateStore:
    """The state store the config names: ``sqlite`` (default, under $CLIPPER_HOME), ``memory``, or a
    ``redis://host:port/db`` URL (shared by several frontends)."""
    kind = config.state_store
    if kind.startswith(("redis://", "rediss://", "unix://")):
        from clipper_core.state.redis_store import RedisStateStore

        return RedisStateStore(kind)
    if kind == "sqlite":
        from clipper_core.state.sqlite import SqliteStateStore

        return SqliteStateStore(config.state_path)
    if kind == "memory":
        from clipper_core.state.memory import MemoryStateStore

        return MemoryStateStore()
    raise ConfigError(f"unknown state store {kind!r}; use 'sqlite' or 'memory'")


@dataclass
class RunningServer:
    ctx: ServerContext
    rpc: RpcServer | None
    runners: list[web.AppRunner]
    stopped: asyncio.Event
    query_addr: str
    admin_addr: str
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self) -> None:
        """Graceful stop: refuse new connections, finish in-flight requests, stop replicas, close the store."""
        ctx = self.ctx
        if ctx.router is not None:
            await ctx.router.drain(timeout=30.0)
        for runner in self.runners:
            await runner.cleanup()
        for task in self.tasks:
            task.cancel()
        if ctx.supervisor is not None:
            await ctx.supervisor.stop_all()  # type: ignore[attr-defined]
        if self.rpc is not None:
            with contextlib.suppress(Exception):
                await ctx.store.unregister_frontend(ctx.rpc_addr)
            await self.rpc.stop()
        if ctx.router is not None:
            await ctx.router.close()
        await ctx.store.close()
        with contextlib.suppress(FileNotFoundError):
            if _runtime_pid(ctx.config) == os.getpid():
                ctx.config.runtime_file.unlink()
        self.stopped.set()


def _previous_rpc_port(config: Config) -> int:
    try:
        return int(json.loads(config.runtime_file.read_text())["rpc_addr"].rsplit(":", 1)[1])
    except (OSError, ValueError, KeyError, IndexError):
        return 0


def _runtime_pid(config: Config) -> int | None:
    try:
        return int(json.loads(config.runtime_file.read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def _bound_addr(runner: web.AppRunner) -> str:
    host, port = runner.addresses[0][:2]
    return f"{host}:{port}"


async def _start_site(app: web.Application, host: str, port: int, reuse_port: bool = False) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=1024, reuse_port=reuse_port or None).start()
    return runner


async def start_server(config: Config, roles: tuple[str, ...] = ("query", "admin")) -> RunningServer:
    """Start the given roles on the running loop: ``query`` (router, RPC server, query REST API) and/or
    ``admin`` (management REST API and, with ``manage_replicas``, the local replica supervisor). Returns once
    every port is bound (and runtime.json written, with ``write_runtime``)."""
    config.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    registry = PluginRegistry.create(make_plugin_manager(disabled=config.disabled_plugins))
    store = open_store(config)
    await store.open()
    ctx = ServerContext(config=config, store=store, registry=registry)
    runners: list[web.AppRunner] = []
    rpc: RpcServer | None = None
    query_addr = admin_addr = ""
    if "query" in roles:
        rpc = await _start_query_role(ctx)
        query_app = create_query_app(ctx)
        _prepare(query_app, registry)
        runners.append(await _start_site(query_app, config.query_host, config.query_port, config.reuse_port))
        query_addr = _bound_addr(runners[-1])
    if "admin" in roles:
        from clipper_core.management import create_admin_app

        if config.manage_replicas:
            ctx.supervisor = LocalReplicaSupervisor(config.logs_dir, ctx.rpc_addr,
                                                    heartbeat_interval=config.heartbeat_interval)
        admin_app = create_admin_app(ctx)
        if ctx.router is not None:
            admin_app.middlewares.append(_synced(ctx.router))
        _prepare(admin_app, registry)
        runners.append(await _start_site(admin_app, config.admin_host, config.admin_port))
        admin_addr = _bound_addr(runners[-1])
    ctx.extra.update(query_addr=query_addr, admin_addr=admin_addr, metrics_addr=query_addr)
    server = RunningServer(ctx, rpc, runners, asyncio.Event(), query_addr, admin_addr)
    background: set[asyncio.Task[None]] = set()

    def spawn(coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        background.add(task)
        task.add_done_callback(background.discard)

    ctx.request_shutdown = lambda: spawn(_stop_once(server))
    await _sync_frontends(ctx, rpc)
    if store.shared:  # one process owns a non-shared store: there are no other frontends to follow
        server.tasks.append(asyncio.get_running_loop().create_task(_frontends_loop(ctx, rpc)))
    if ctx.supervisor is not None:
        await ctx.supervisor.restore(await store.list_models())  # type: ignore[attr-defined]
    if config.write_runtime:
        _write_runtime(config, {"pid": os.getpid(), "query_addr": config.advertise_query or query_addr,
                                "admin_addr": admin_addr, "rpc_addr": ctx.rpc_addr,
                                "metrics_addr": config.advertise_query or query_addr, "home": str(config.home)})
    log.info("clipper %s up: queries on %s, admin on %s, RPC on %s", "+".join(roles), query_addr or "-",
             admin_addr or "-", ctx.rpc_addr or "-")
    return server


async def _start_query_role(ctx: ServerContext) -> RpcServer:
    config, store, registry = ctx.config, ctx.store, ctx.registry
    cache = None
    if config.cache_size_bytes > 0:
        cache_config: dict[str, Any] = {"size_bytes": config.cache_size_bytes}
        if config.state_store.startswith(("redis://", "rediss://", "unix://")):
            cache_config["url"] = os.environ.get("CLIPPER_CACHE_REDIS_URL") or config.state_store
        cache = registry.caches.get(config.cache_backend)(cache_config)
        await cache.start()
    router = ctx.router = Router(store, registry, cache, inflight=config.batches_in_flight,
                                 max_queue_length=config.max_queue_length)

    async def assign(name: str, version: str) -> int:
        return await store.next_replica_id(name, version)

    async def ready(replica: ReplicaConnection) -> None:
        await router.on_replica_ready(replica)
        await store.add_replica(Replica(replica.model_name, replica.model_version, replica.replica_id,
                                        replica.input_type, frontend=ctx.rpc_addr, info=dict(replica.info)))

    async def gone(replica: ReplicaConnection) -> None:
        await router.on_replica_gone(replica)
        await store.delete_replica(replica.model_name, replica.model_version, replica.replica_id)

    def stuck(replica: ReplicaConnection) -> None:
        pid = replica.info.get("pid")
        supervisor = ctx.supervisor
        if isinstance(pid, int) and isinstance(supervisor, LocalReplicaSupervisor) and supervisor.kill(pid):
            return
        log.warning("replica %s of %s:%s is stuck, but it is not a local replica this server can restart",
                    replica.replica_id, replica.model_name, replica.model_version)

    # With port 0, prefer the previous run's RPC port: replicas that outlived a killed server reconnect there.
    rpc_port = config.rpc_port or (_previous_rpc_port(config) if config.write_runtime else 0)
    rpc = RpcServer(config.rpc_host, rpc_port, heartbeat_interval=config.heartbeat_interval,
                    assign_replica_id=assign, on_ready=ready, on_gone=gone,
                    stuck_after=config.stuck_batch_seconds, on_stuck=stuck, any_port_fallback=config.rpc_port == 0)
    bound = await rpc.start()
    ctx.rpc_addr = config.rpc_advertise or bound
    await store.clear_replicas(ctx.rpc_addr)
    store.subscribe(router.on_change)
    await router.load()
    return rpc


FRONTEND_TTL = 5.0


async def _sync_frontends(ctx: ServerContext, rpc: RpcServer | None) -> None:
    """Refresh this frontend's entry in the store's registry; pass the live set to replicas and supervisor."""
    store = ctx.store
    try:
        if rpc is not None:
            await store.register_frontend(ctx.rpc_addr, ttl=FRONTEND_TTL)
        frontends = await store.list_frontends()
    except Exception as exc:  # a store outage: keep what we know, try again on the next tick
        log.warning("cannot refresh the frontend registry: %s", exc)
        return
    if rpc is not None:
        rpc.announce_peers(frontends)
    supervisor = ctx.supervisor
    if isinstance(supervisor, LocalReplicaSupervisor) and frontends:
        supervisor.rpc_addr = ",".join(frontends) if rpc is None else ctx.rpc_addr + "".join(
            f",{addr}" for addr in frontends if addr != ctx.rpc_addr)


async def _frontends_loop(ctx: ServerContext, rpc: RpcServer | None) -> None:
    while True:
        await asyncio.sleep(1.0)  # periodic registry refresh (TTL 5 s)
        await _sync_frontends(ctx, rpc)


_stopping: set[int] = set()


async def _stop_once(server: RunningServer) -> None:
    if id(server) in _stopping:
        return
    _stopping.add(id(server))
    try:
        await server.stop()
    finally:
        _stopping.discard(id(server))


def _synced(router: Router) -> Any:
    """Admin writes return only once the query path sees them (in-process store notifications)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
        response = await handler(request)
        await router.sync()
        return response

    return middleware


def _prepare(app: web.Application, registry: PluginRegistry) -> None:
    """Wire the plugin hooks into an app before it starts (a started app is frozen)."""
    handle_exception: Callable[..., Any] = registry.pm.hook.clipper_handle_exception
    app[HANDLE_EXCEPTION] = handle_exception
    app.on_startup.append(_lifecycle(registry, "clipper_startup"))
    app.on_shutdown.append(_lifecycle(registry, "clipper_shutdown"))


def _lifecycle(registry: PluginRegistry, hook: str) -> Callable[[web.Application], Awaitable[None]]:
    async def call(app: web.Application) -> None:
        getattr(registry.pm.hook, hook)(app=app)

    return call


def _write_runtime(config: Config, data: dict[str, Any]) -> None:
    tmp = config.runtime_file.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, config.runtime_file)


async def serve(config: Config, roles: tuple[str, ...] = ("query", "admin")) -> None:
    server = await start_server(config, roles)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.ctx.request_shutdown)  # type: ignore[arg-type]
    await server.stopped.wait()


def run(config: Config, roles: tuple[str, ...] = ("query", "admin")) -> None:
    """Run the server (by default the embedded one: every role) until SIGTERM/SIGINT or POST /admin/shutdown."""
    logging.basicConfig(level=os.environ.get("CLIPPER_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        asyncio.run(serve(config, roles))
    else:
        uvloop.run(serve(config, roles))
