"""A server's long-lived resources, one async generator each (start before ``yield``, stop after), in the order
:func:`clipper_core.server.assembly.start_server` starts them; :class:`~clipper_core.server.lifecycle.Lifecycle`
stops them in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from clipper_core.http_api import HANDLE_EXCEPTION
from clipper_core.interfaces import PredictionCache
from clipper_core.plugins import PluginRegistry
from clipper_core.rpc import ReplicaConnection, RpcServer
from clipper_core.server.access_log import JsonAccessLogger, access_logger
from clipper_core.server.frontend_registry import REFRESH_INTERVAL, sync_frontends
from clipper_core.server.load_report import LOAD_REPORTER, LoadReporter, apply_shares
from clipper_core.server.local_replicas import LocalReplicaSupervisor
from clipper_core.server.runtime_file import previous_rpc_port, remove_if_ours, write_runtime
from clipper_core.serving.model_runtime import ModelRuntime
from clipper_core.serving.query_path import QueryPath
from clipper_core.serving.snapshot import Snapshot
from clipper_core.serving.tenancy import Quota
from clipper_core.state import Replica

if TYPE_CHECKING:
    from clipper_core.server.assembly import RunningServer

__all__ = ["cache", "drain", "frontend_registry", "grpc_api", "query_path", "restored_replicas", "rpc_server",
           "runtime_file", "state_store", "supervisor", "tracing", "web_sites"]

log = logging.getLogger(__name__)

DRAIN_TIMEOUT = 30.0
"""Seconds a graceful stop waits for the queries in flight (each ends by its SLO anyway)."""


async def state_store(server: RunningServer) -> AsyncIterator[None]:
    store = server.ctx.store
    await store.open()
    yield
    await store.close()


async def cache(server: RunningServer) -> AsyncIterator[None]:
    """The prediction cache the config names (none when its size is 0); a remote cache shares the state store's
    URL unless ``CLIPPER_CACHE_REDIS_URL`` names another."""
    config, registry = server.ctx.config, server.ctx.registry
    if config.cache_size_bytes <= 0:
        yield
        return
    cache_config: dict[str, Any] = {"size_bytes": config.cache_size_bytes}
    if server.ctx.store.shared:
        cache_config["url"] = config.cache_url or config.state_store
    instance: PredictionCache = registry.caches.get(config.cache_backend)(cache_config)
    await instance.start()
    server.cache = instance
    yield
    await instance.stop()


async def query_path(server: RunningServer) -> AsyncIterator[None]:
    """The snapshot (loaded, following the store's change feed) and the query path over it."""
    ctx = server.ctx
    snapshot = Snapshot(ctx.store, ctx.registry, server.cache, ctx.config)
    ctx.query_path = QueryPath(snapshot, ctx.store, server.cache, ctx.config)
    unsubscribe = ctx.store.subscribe(snapshot.on_change)
    await snapshot.load()
    yield
    unsubscribe()
    await snapshot.close()


async def rpc_server(server: RunningServer) -> AsyncIterator[None]:
    """The ROUTER socket replicas connect to; a replica that says hello joins its model's runtime."""
    ctx = server.ctx
    config, store = ctx.config, ctx.store
    path = ctx.query_path
    assert path is not None
    snapshot = path.snapshot

    async def assign(name: str, version: str) -> int:
        return await store.next_replica_id(name, version)

    async def ready(replica: ReplicaConnection) -> None:
        await snapshot.on_replica_ready(replica)
        await store.add_replica(Replica(replica.model_name, replica.model_version, replica.replica_id,
                                        replica.input_type, frontend=ctx.rpc_addr, info=dict(replica.info)))

    async def gone(replica: ReplicaConnection) -> None:
        await snapshot.on_replica_gone(replica)
        await store.delete_replica(replica.model_name, replica.model_version, replica.replica_id)

    def stuck(replica: ReplicaConnection) -> None:
        pid = replica.info.get("pid")
        local = ctx.supervisor
        if isinstance(pid, int) and isinstance(local, LocalReplicaSupervisor) and local.kill(pid):
            return
        log.warning("replica %s of %s:%s is stuck, but it is not a local replica this server can restart",
                    replica.replica_id, replica.model_name, replica.model_version)

    # With port 0, prefer the previous run's RPC port: replicas that outlived a killed server reconnect there.
    port = config.rpc_port or (previous_rpc_port(config) if config.write_runtime else 0)
    rpc = RpcServer(config.rpc_host, port, heartbeat_interval=config.heartbeat_interval,
                    assign_replica_id=assign, on_ready=ready, on_gone=gone,
                    stuck_after=config.stuck_batch_seconds, on_stuck=stuck, any_port_fallback=config.rpc_port == 0,
                    advertise=config.rpc_advertise, ipc_home=config.home if config.rpc_ipc else None)
    bound = await rpc.start()
    server.rpc = rpc
    ctx.rpc_addr = config.rpc_advertise or bound
    await store.clear_replicas(ctx.rpc_addr)
    yield
    await rpc.stop()


async def supervisor(server: RunningServer) -> AsyncIterator[None]:
    """The local replica supervisor (embedded mode): replicas as subprocesses of this server, connecting over IPC
    when this process serves queries with an IPC endpoint (the frontend registry updates the address)."""
    ctx = server.ctx
    ipc = server.rpc.ipc if server.rpc is not None else None
    local = LocalReplicaSupervisor(ctx.config.logs_dir, ipc.address if ipc is not None else ctx.rpc_addr,
                                   heartbeat_interval=ctx.config.heartbeat_interval)
    ctx.supervisor = server.local_supervisor = local
    yield
    await local.stop_all()


async def autoscaler(server: RunningServer) -> AsyncIterator[None]:
    """The autoscaler of the management API, acting through this server's local replica supervisor or, without
    one, through the container manager ``CLIPPER_AUTOSCALE_MANAGER`` names (Docker's management container runs it
    so); either way each new count is recorded in the model's record, as ``set_num_replicas`` does."""
    from clipper_core.management.autoscaler import Autoscaler, Scale, manager_scaler
    from clipper_core.management.operations import ManagementOperations

    ctx = server.ctx
    ops = ManagementOperations.of(ctx)

    scale: Scale
    if ctx.supervisor is not None:
        scale = ops.resize
    else:
        try:
            scale = manager_scaler(ctx.store, ctx.registry, ctx.config)
        except Exception as exc:  # a manager this image lacks, options it refuses: serve without autoscaling
            log.error("no autoscaler: the container manager %r cannot be made here: %s", ctx.config.autoscale_manager,
                      exc)
            yield
            return
    scaler = Autoscaler(ctx.store, scale, interval=ctx.config.autoscale_interval)
    ctx.autoscaler = scaler
    async with _in_background(scaler.run()):
        yield
    await scaler.close()
    ctx.autoscaler = None


async def rollout_controller(server: RunningServer) -> AsyncIterator[None]:
    """The rollout controller of the management API (``management.rollouts``): it resumes the active rollouts
    the store holds, and moves them on every ``CLIPPER_ROLLOUT_INTERVAL`` seconds."""
    from clipper_core.management.rollouts import RolloutController

    ctx = server.ctx
    controller = RolloutController(ctx.store, interval=ctx.config.rollout_interval)
    ctx.rollouts = controller
    async with _in_background(controller.run()):
        yield
    ctx.rollouts = None


@contextlib.asynccontextmanager
async def _in_background(loop: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run ``loop`` as a task for the duration of the block; cancelled and awaited at its end."""
    task = asyncio.get_running_loop().create_task(loop)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def restored_replicas(server: RunningServer) -> AsyncIterator[None]:
    """The replicas every registered model version asks for, brought back after a restart (adopting those that
    outlived a killed server); once the frontend registry told the supervisor every frontend. They stop with
    the supervisor."""
    if server.local_supervisor is not None:
        await server.local_supervisor.restore(await server.ctx.store.list_models())
    yield


async def tracing(server: RunningServer) -> AsyncIterator[None]:
    """OpenTelemetry tracing when the ``OTEL_*`` variables ask for it (``clipper_core.tracing``; off by default),
    flushed at the end. A process whose tracing was configured before (a test's in-memory exporter) keeps it."""
    from clipper_core import tracing as otel

    if otel.STATE.enabled or not otel.configure("clipper"):
        yield
        return
    yield
    otel.shutdown()


async def web_sites(server: RunningServer) -> AsyncIterator[None]:
    """The HTTP APIs of this server's roles, each on its own port. They stop in the order they started (the
    query API first): the lifecycle hooks see the apps in one order."""
    for site in server.sites:
        _wire_plugin_hooks(site.app, server.ctx.registry)
        options: dict[str, Any] = {"handle_signals": False, "handler_cancellation": site.cancel_on_disconnect}
        runner = (web.AppRunner(site.app, access_log=None, **options) if not server.ctx.config.access_log
                  else web.AppRunner(site.app, access_log=access_logger(), access_log_class=JsonAccessLogger,
                                     **options))
        await runner.setup()
        if site.wrap_handler is not None:
            assert runner.server is not None
            runner.server.request_handler = site.wrap_handler(runner.server.request_handler)
        server.runners.append(runner)
        await web.TCPSite(runner, site.host, site.port, backlog=1024, reuse_port=site.reuse_port or None).start()
        bound_host, bound_port = runner.addresses[0][:2]
        site.bound = f"{bound_host}:{bound_port}"
    yield
    for runner in server.runners:
        await runner.cleanup()


async def grpc_api(server: RunningServer) -> AsyncIterator[None]:
    """The V2 gRPC endpoint (``CLIPPER_GRPC_PORT``; ``grpc.aio`` on this loop, over the query path), started
    after the HTTP APIs and so stopped before them, after the drain."""
    from clipper_core.frontend.grpc.server import start_grpc_endpoint

    config = server.ctx.config
    assert config.grpc_port is not None
    endpoint = await start_grpc_endpoint(server.ctx, config.grpc_host or config.query_host, config.grpc_port,
                                         reuse_port=config.reuse_port, max_message_bytes=config.max_body_bytes)
    server.grpc_addr = endpoint.address
    yield
    await endpoint.stop()


async def frontend_registry(server: RunningServer) -> AsyncIterator[None]:
    """This frontend's entry in the registry of live frontends, refreshed while the store is shared (a store
    that is not shared has one process: nothing to follow), and its load report (:mod:`.load_report`), published
    by the same task, whatever the store, while this process serves queries."""
    ctx = server.ctx
    await sync_frontends(ctx, server.rpc)
    reporter = _load_reporter(server)
    if reporter is not None:
        await reporter.publish(ctx.store, _frontend_id(server), _runtimes(server))
    periodic = ctx.store.shared or reporter is not None
    task = asyncio.get_running_loop().create_task(_refresh(server, reporter)) if periodic else None
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    with contextlib.suppress(Exception):  # both expire by themselves if the store is unreachable
        if reporter is not None:
            await ctx.store.put_load(_frontend_id(server), {}, ttl=0.0)  # withdrawn: expired at once
        if server.rpc is not None:
            await ctx.store.unregister_frontend(ctx.rpc_addr)


def _load_reporter(server: RunningServer) -> LoadReporter | None:
    """A reporter for this process's query frontend (none without one), in ``ctx.extra``; the query path wakes it
    (``QueryPath.cold_demand``) when it queues work for a version with no replica."""
    path = server.ctx.query_path
    if path is None:
        return None
    reporter = LoadReporter()
    server.ctx.extra[LOAD_REPORTER] = reporter
    path.cold_demand = reporter.wake
    return reporter


def _frontend_id(server: RunningServer) -> str:
    """Who a load report is of: the frontend's RPC address, as in the registry of live frontends."""
    return server.ctx.rpc_addr or server.query_addr


def _runtimes(server: RunningServer) -> Iterable[ModelRuntime]:
    path = server.ctx.query_path
    return path.models.values() if path is not None else ()


async def _refresh(server: RunningServer, reporter: LoadReporter | None) -> None:
    """Every second: the registry refresh (TTL 5 s; shared stores only) and the load report; and the load report
    at once when the reporter is woken."""
    ctx = server.ctx
    loop = asyncio.get_running_loop()
    next_tick = loop.time() + REFRESH_INTERVAL
    while True:
        if reporter is None:
            await asyncio.sleep(next_tick - loop.time())
        else:
            await reporter.sleep(next_tick - loop.time())
        if loop.time() >= next_tick:
            next_tick = loop.time() + REFRESH_INTERVAL
            if ctx.store.shared:
                await sync_frontends(ctx, server.rpc)
        if reporter is not None:
            quotas = _quotas(server)
            mine = await reporter.publish(ctx.store, _frontend_id(server), _runtimes(server), quotas=quotas)
            if mine is not None and quotas and ctx.store.shared:  # several frontends: each applies its share
                await apply_shares(ctx.store, quotas, mine, ctx.query_path.snapshot.quotas.frontends
                                   if ctx.query_path is not None else 1)


def _quotas(server: RunningServer) -> list[Quota]:
    """The rate limits and quotas this frontend applies (``serving.tenancy``)."""
    path = server.ctx.query_path
    return path.snapshot.quotas.all() if path is not None else []


async def drain(server: RunningServer) -> AsyncIterator[None]:
    """On stop, before anything else closes: refuse new queries and let the ones in flight be answered."""
    yield
    if server.ctx.query_path is not None:
        await server.ctx.query_path.drain(timeout=DRAIN_TIMEOUT)


async def runtime_file(server: RunningServer) -> AsyncIterator[None]:
    """``runtime.json``, written once every port is bound (the local container manager waits for it)."""
    config = server.ctx.config
    query = config.advertise_query or server.query_addr
    write_runtime(config, {"pid": os.getpid(), "query_addr": query, "admin_addr": server.admin_addr,
                           "rpc_addr": server.ctx.rpc_addr, "metrics_addr": query, "home": str(config.home),
                           "grpc_addr": server.grpc_addr})
    yield
    remove_if_ours(config)


def _wire_plugin_hooks(app: web.Application, registry: PluginRegistry) -> None:
    """Wire the plugin hooks into an app before it starts (a started app is frozen)."""
    handle_exception: Callable[..., Any] = registry.pm.hook.clipper_handle_exception
    app[HANDLE_EXCEPTION] = handle_exception
    app.on_startup.append(_lifecycle_hook(registry, "clipper_startup"))
    app.on_shutdown.append(_lifecycle_hook(registry, "clipper_shutdown"))


def _lifecycle_hook(registry: PluginRegistry, hook: str) -> Callable[[web.Application], Awaitable[None]]:
    async def call(app: web.Application) -> None:
        getattr(registry.pm.hook, hook)(app=app)

    return call
