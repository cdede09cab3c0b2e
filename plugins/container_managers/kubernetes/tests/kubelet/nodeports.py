"""kube-proxy, NodePorts only: an asyncio TCP forwarder (its own event loop thread) listening on
<node_address>:<nodePort> per Service port and forwarding each connection round-robin to the ready endpoints, which
:class:`NodePortsMixin` recomputes from the Services and pods every pass (a port already taken is retried every 5 s)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from typing import Any

from .util import Json, _terminating, log, pod_ready, selector_matches


class _NodePorts:
    """kube-proxy's NodePorts: an asyncio TCP forwarder per node port, round-robin per connection."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="kubelet-nodeports", daemon=True)
        self.servers: dict[int, asyncio.Server] = {}
        self.endpoints: dict[int, list[tuple[str, int]]] = {}
        self.turn: dict[int, int] = {}
        self.tasks: dict[int, set[asyncio.Task[Any]]] = {}
        self.failed: dict[int, float] = {}
        self.thread.start()

    def sync(self, wanted: dict[int, list[tuple[str, int]]]) -> None:
        asyncio.run_coroutine_threadsafe(self._sync(wanted), self.loop).result(timeout=5)

    def stop(self) -> None:
        if not self.loop.is_running():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._sync({}), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        if not self.thread.is_alive():
            self.loop.close()

    async def _sync(self, wanted: dict[int, list[tuple[str, int]]]) -> None:
        for port in list(self.servers):
            if port not in wanted:
                server = self.servers.pop(port)
                server.close()
                for task in self.tasks.pop(port, set()):
                    task.cancel()
                self.endpoints.pop(port, None)
        for port, endpoints in wanted.items():
            self.endpoints[port] = endpoints
            if port in self.servers or time.monotonic() < self.failed.get(port, 0.0):
                continue
            try:
                self.servers[port] = await asyncio.start_server(
                    functools.partial(self._accept, port), self.host, port, reuse_address=True)
                self.tasks.setdefault(port, set())
            except OSError as exc:
                log.warning("node port %s: cannot listen: %s", port, exc)
                self.failed[port] = time.monotonic() + 5.0

    async def _accept(self, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        tasks = self.tasks.setdefault(port, set())
        if task is not None:
            tasks.add(task)
        try:
            endpoints = self.endpoints.get(port) or []
            if not endpoints:
                return
            turn = self.turn.get(port, 0)
            self.turn[port] = turn + 1
            address = endpoints[turn % len(endpoints)]
            try:
                b_reader, b_writer = await asyncio.wait_for(asyncio.open_connection(*address), 5.0)
            except (OSError, asyncio.TimeoutError):
                return
            try:
                await asyncio.gather(self._pipe(reader, b_writer, writer), self._pipe(b_reader, writer, b_writer))
            finally:
                b_writer.close()
        except asyncio.CancelledError:
            pass
        finally:
            writer.close()
            if task is not None:
                tasks.discard(task)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, other: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, RuntimeError):
            writer.transport.abort()
            other.transport.abort()


class NodePortsMixin:
    """Kubelet's NodePort endpoints, fed to its :class:`_NodePorts`."""

    def _sync_nodeports(self, services: list[Json], pods: list[Json]) -> None:
        if self.nodeports is None:
            return
        wanted: dict[int, list[tuple[str, int]]] = {}
        for svc in services:
            spec = svc.get("spec") or {}
            ns = svc["metadata"]["namespace"]
            selected = [p for p in pods if p["metadata"]["namespace"] == ns and not _terminating(p)
                        and pod_ready(p) and (p.get("status") or {}).get("podIP")
                        and selector_matches(spec.get("selector"), p["metadata"].get("labels"))]
            for port in spec.get("ports") or []:
                if not port.get("nodePort") or port.get("protocol", "TCP") != "TCP":
                    continue
                target = port.get("targetPort", port.get("port"))
                endpoints = []
                for p in selected:
                    number = self._target_port(target, p)
                    if number is not None:
                        endpoints.append((p["status"]["podIP"], number))
                wanted[int(port["nodePort"])] = sorted(endpoints)
        self.nodeports.sync(wanted)

    def _target_port(self, target: Any, pod: Json) -> int | None:
        """A Service's targetPort (a number, or a containerPort name looked up in the pod's containers)."""
        for cs in (pod.get("spec") or {}).get("containers") or []:
            with contextlib.suppress(ValueError):
                return self._port(target, cs)
        return None
