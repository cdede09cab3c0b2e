"""``clipper start --frontends N|auto``: one admin process (management API + replica supervisor) and N query
frontend processes sharing the query port with SO_REUSEPORT, over one shared state store.

The default store, SQLite (``$CLIPPER_HOME/state.db``, or ``sqlite:///path``), is shared by the processes of
this host: each follows the others' changes through the file's change feed (:mod:`clipper_core.state.sqlite_feed`),
so nothing else runs. A ``redis://`` store is used as given (frontends on several hosts). Only a store that
cannot be shared (``memory``) gets a managed ``redis-server`` under ``$CLIPPER_HOME/redis`` with the append-only
file on (``appendfsync always``), so registrations and feedback survive restarts. Frontend processes that die
are restarted with back-off; stopping the admin process stops everything.

``auto`` is :func:`auto_frontends`: one frontend up to two usable cores, else ``cores - 1``, at most
:data:`AUTO_MAX`. A frontend is one event loop, about one core at full load; the core left over runs the
replicas, the admin process and the kernel's network work. On two cores a second frontend competes with them:
``bench/frontends.py`` (noop model, wrk on the same host) measured 0.73-0.82x the requests of one frontend at 16
connections and 1.02-1.29x at 64, over SQLite and Redis alike. The cap: every replica holds a session with every
frontend, and each frontend has its own prediction cache, so these costs grow with the count (argued, not
measured beyond two).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

from clipper_core.config import Config, ConfigError
from clipper_core.plugins import PluginRegistry, make_plugin_manager
from clipper_core.server.assembly import freeze_heap, start_server
from clipper_core.tracing import setup_logging

__all__ = ["AUTO_MAX", "ManagedRedis", "auto_frontends", "free_port", "run_multi"]

log = logging.getLogger(__name__)

AUTO_MAX = 8
"""The most query frontends ``--frontends auto`` starts."""


def auto_frontends(cores: int | None = None) -> int:
    """How many query frontends ``--frontends auto`` starts for ``cores`` usable cores (default: this process's
    CPU affinity): ``cores - 1`` from three cores on (one core is left to the replicas, the admin process and
    the kernel's network work), at most :data:`AUTO_MAX`, and 1 up to two cores."""
    if cores is None:
        cores = len(os.sched_getaffinity(0))
    return 1 if cores <= 2 else min(cores - 1, AUTO_MAX)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ManagedRedis:
    """A redis-server owned by clipper: loopback only, AOF on, data under ``directory``."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self, timeout: float = 20.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ConfigError("redis-server is not installed (Debian: apt-get install redis-server); it is needed "
                              "for several frontends over a store that is not shared; use --state-store sqlite "
                              "(the default) or redis://host:port/db")
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        log_fd = os.open(self.directory / "redis.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self.process = await asyncio.create_subprocess_exec(
                binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory),
                "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "yes",
                stdin=asyncio.subprocess.DEVNULL, stdout=log_fd, stderr=log_fd)
        finally:
            os.close(log_fd)
        deadline = time.monotonic() + timeout
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.write(b"PING\r\n")
                await writer.drain()
                answer = await reader.readline()
                writer.close()
                if answer.startswith(b"+PONG"):
                    return
            except OSError:
                pass
            if self.process.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start; see {self.directory / 'redis.log'}")
            await asyncio.sleep(0.05)  # polling another process's readiness, bounded

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.process.wait(), 10)
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()


class FrontendProcess:
    def __init__(self, index: int, command: list[str], log_path: Path) -> None:
        self.index = index
        self.command = command
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self.stopping = False

    async def supervise(self) -> None:
        backoff = 0.5
        while not self.stopping:
            fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                self.process = await asyncio.create_subprocess_exec(*self.command, stdin=asyncio.subprocess.DEVNULL,
                                                                    stdout=fd, stderr=fd)
            finally:
                os.close(fd)
            started = time.monotonic()
            code = await self.process.wait()
            if self.stopping:
                return
            backoff = 0.5 if time.monotonic() - started > 30 else min(30.0, backoff * 2)
            log.warning("query frontend %d exited with %s; restarting in %.1f s", self.index, code, backoff)
            await asyncio.sleep(backoff)  # restart back-off

    async def stop(self) -> None:
        self.stopping = True
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except asyncio.TimeoutError:
                self.process.kill()
                await self.process.wait()


async def serve_multi(config: Config, frontends: int) -> None:
    redis: ManagedRedis | None = None
    store_url = config.state_store
    registry = PluginRegistry.create(make_plugin_manager(disabled=config.disabled_plugins))
    if not registry.state_store_class(store_url).shared:
        redis = ManagedRedis(config.home / "redis")
        await redis.start()
        store_url = redis.url
    try:
        await _serve_multi(config, frontends, store_url)
    finally:
        if redis is not None:
            await redis.stop()


async def _serve_multi(config: Config, frontends: int, store_url: str) -> None:
    query_port = config.query_port or free_port(config.query_host)
    config = config.replace(state_store=store_url, query_port=query_port)
    config.logs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    children = []
    for i in range(frontends):
        # Each frontend keeps its RPC port across restarts: its replicas' ZeroMQ sockets reconnect to the same
        # address (and IPC path) by themselves, even when every frontend they knew died at once, and the
        # restarted frontend's clear_replicas finds the rows its predecessor left.
        rpc_port = free_port(config.rpc_host)
        command = [sys.executable, "-m", "clipper_core.cli", "frontend", "--home", str(config.home),
                   "--state-store", store_url, "--host", config.query_host, "--query-port", str(query_port),
                   "--reuse-port", "--rpc-port", str(rpc_port), "--cache-size", str(config.cache_size_bytes)]
        children.append(FrontendProcess(i, command, config.logs_dir / f"frontend_{i}.log"))
    tasks = [asyncio.get_running_loop().create_task(child.supervise()) for child in children]
    try:
        server = await start_server(config.replace(advertise_query=f"{config.query_host}:{query_port}"),
                                    roles=("admin",))
        freeze_heap()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, server.request_stop)
        await server.stopped.wait()
    finally:
        await asyncio.gather(*(child.stop() for child in children))
        for task in tasks:
            task.cancel()


def run_multi(config: Config, frontends: int) -> None:
    setup_logging(os.environ.get("CLIPPER_LOG_LEVEL", "INFO"))
    import uvloop

    uvloop.run(serve_multi(config, frontends))
