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
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from clipper_core.config import Config, ConfigError
from clipper_core.context import ServerContext
from clipper_core.default_plugins.local_supervisor import LocalReplicaSupervisor
from clipper_core.frontend import create_query_app
from clipper_core.plugins import PluginRegistry, make_plugin_manager
from clipper_core.router import Router
from clipper_core.rpc import ReplicaConnection, RpcServer
from clipper_core.state import Replica, StateStore
from clipper_core.web import HANDLE_EXCEPTION

__all__ = ["RunningServer", "open_store", "run", "start_server"]

log = logging.getLogger(__name__)


def open_store(config: Config) -> StateStore:
    """The state store the config names: ``sqlite`` (default, under $CLIPPER_HOME), ``memory``."""
    kind = config.state_store
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
    rpc: RpcServer
    runners: list[web.AppRunner]
    stopped: asyncio.Event
    query_addr: str
    admin_addr: str

    async def stop(self) -> None:
        """Graceful stop: refuse new connections, finish in-flight requests, stop replicas, close the store."""
        ctx = self.ctx
        if ctx.router is not None:
            await ctx.router.drain(timeout=30.0)
        for runner in self.runners:
            await runner.cleanup()
        if ctx.supervisor is not None:
            await ctx.supervisor.stop_all()  # type: ignore[attr-defined]
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


async def _start_site(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=1024).start()
    return runner


async def start_server(config: Config) -> RunningServer:
    """Start every part on the running loop; returns once all ports are bound and runtime.json is written."""
    from clipper_core.management import create_admin_app

    config.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    registry = PluginRegistry.create(make_plugin_manager(disabled=config.disabled_plugins))
    store = open_store(config)
    await store.open()
    cache = None
    if config.cache_size_bytes > 0:
        cache = registry.caches.get(config.cache_backend)({"size_bytes": config.cache_size_bytes})
        await cache.start()
    router = Router(store, registry, cache, inflight=config.batches_in_flight,
                    max_queue_length=config.max_queue_length)
    stopped = asyncio.Event()
    ctx = ServerContext(config=config, store=store, registry=registry, router=router)

    async def assign(name: str, version: str) -> int:
        return await store.next_replica_id(name, version)

    async def ready(replica: ReplicaConnection) -> None:
        await router.on_replica_ready(replica)
        await store.add_replica(Replica(replica.model_name, replica.model_version, replica.replica_id,
                                        replica.input_type, frontend=rpc.address, info=dict(replica.info)))

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
    rpc_port = config.rpc_port or _previous_rpc_port(config)
    rpc = RpcServer(config.rpc_host, rpc_port, heartbeat_interval=config.heartbeat_interval,
                    assign_replica_id=assign, on_ready=ready, on_gone=gone,
                    stuck_after=config.stuck_batch_seconds, on_stuck=stuck, any_port_fallback=config.rpc_port == 0)
    ctx.rpc_addr = await rpc.start()
    await store.clear_replicas(ctx.rpc_addr)
    store.subscribe(router.on_change)
    await router.load()
    if config.manage_replicas:
        ctx.supervisor = LocalReplicaSupervisor(config.logs_dir, ctx.rpc_addr,
                                                heartbeat_interval=config.heartbeat_interval)
    admin_app = create_admin_app(ctx)
    admin_app.middlewares.append(_synced(router))
    query_app = create_query_app(ctx)
    for app in (admin_app, query_app):
        handle_exception: Callable[..., Any] = registry.pm.hook.clipper_handle_exception
        app[HANDLE_EXCEPTION] = handle_exception
        app.on_startup.append(_lifecycle(registry, "clipper_startup"))
        app.on_shutdown.append(_lifecycle(registry, "clipper_shutdown"))
    runners = [await _start_site(query_app, config.query_host, config.query_port),
               await _start_site(admin_app, config.admin_host, config.admin_port)]
    query_addr, admin_addr = _bound_addr(runners[0]), _bound_addr(runners[1])
    ctx.extra.update(query_addr=query_addr, admin_addr=admin_addr, metrics_addr=query_addr)
    server = RunningServer(ctx, rpc, runners, stopped, query_addr, admin_addr)
    background: set[asyncio.Task[None]] = set()

    def request_shutdown() -> None:
        task = asyncio.get_running_loop().create_task(_stop_once(server))
        background.add(task)
        task.add_done_callback(background.discard)

    ctx.request_shutdown = request_shutdown
    if ctx.supervisor is not None:
        await ctx.supervisor.restore(await store.list_models())  # type: ignore[attr-defined]
    _write_runtime(config, {"pid": os.getpid(), "query_addr": query_addr, "admin_addr": admin_addr,
                            "rpc_addr": ctx.rpc_addr, "metrics_addr": query_addr, "home": str(config.home)})
    log.info("clipper serving queries on %s, admin on %s, RPC on %s", query_addr, admin_addr, ctx.rpc_addr)
    return server


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


async def serve(config: Config) -> None:
    server = await start_server(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.ctx.request_shutdown)  # type: ignore[arg-type]
    await server.stopped.wait()


def run(config: Config) -> None:
    """Run the embedded server until SIGTERM/SIGINT or POST /admin/shutdown."""
    logging.basicConfig(level=os.environ.get("CLIPPER_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        asyncio.run(serve(config))
    else:
        uvloop.run(serve(config))
