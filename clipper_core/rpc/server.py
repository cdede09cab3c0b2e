"""The frontend's RPC server: one ROUTER socket on the event loop, one :class:`ReplicaConnection` per
connected container. The query path's model runtimes call :meth:`ReplicaConnection.predict`; results resolve
its future on the loop thread (no thread hops)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, cast

import zmq
from clipper_container.protocol import PROTOCOL_VERSION, MsgType, ProtocolError, pack, unpack

from clipper_core.inputs import InputType, parse_input_type
from clipper_core.rpc.ipc import IpcEndpoint, prepare

__all__ = ["BatchFailed", "ReplicaConnection", "ReplicaLost", "RpcServer"]

log = logging.getLogger(__name__)


class ReplicaLost(Exception):
    """The replica died or left while a batch was in flight; the batch may be re-queued."""


class BatchFailed(Exception):
    """The model raised for the whole batch; carries the container's message."""


class ReplicaConnection:
    """One connected container: its identity on the ROUTER and its in-flight batches."""

    __slots__ = ("_server", "alive", "draining", "identity", "info", "input_type", "last_seen", "model_name",
                 "model_version", "pending", "replica_id", "sent_at", "stuck_reported", "via")

    def __init__(self, server: RpcServer, identity: bytes, model_name: str, model_version: str,
                 input_type: InputType, replica_id: int, info: dict[str, Any]) -> None:
        self._server = server
        self.identity = identity
        self.model_name = model_name
        self.model_version = model_version
        self.input_type = input_type
        self.replica_id = replica_id
        self.info = info
        self.last_seen = time.monotonic()
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.sent_at: dict[int, float] = {}
        self.stuck_reported = False
        self.alive = True
        self.draining = False
        """The container said DRAINING: it takes no new batch (it is no longer dispatched to) and answers those
        it holds, then says GOODBYE."""
        self.via = str(info.get("via") or "")
        """The address the container dialled (HELLO's ``frontend``; empty from containers that do not say)."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.model_name, self.model_version)

    def predict(self, fields: dict[str, Any], buffers: list[Any]) -> asyncio.Future[dict[str, Any]]:
        """Send one PREDICT; the future resolves to the RESULT header, or fails with ReplicaLost."""
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if not self.alive or self.draining:  # a draining container takes no new batch: re-queued at once
            fut.set_exception(ReplicaLost(f"replica {self.replica_id} of {self.model_name}:{self.model_version}"
                                          f" is {'draining' if self.alive else 'gone'}"))
            return fut
        msg_id = self._server.next_id()
        fields["t"] = MsgType.PREDICT
        fields["id"] = msg_id
        self.pending[msg_id] = fut
        if self._server.stuck_after:
            self.sent_at[msg_id] = time.monotonic()
        self._server.send(self.identity, [pack(fields), *buffers])
        return fut

    def fail_pending(self, reason: str) -> None:
        pending, self.pending = self.pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(ReplicaLost(reason))


ReplicaCallback = Callable[[ReplicaConnection], Awaitable[None]]


class RpcServer:
    """Accepts containers (HELLO → WELCOME), routes RESULTs to futures, answers heartbeats, and declares a
    replica dead after ``3 × heartbeat_interval + 1.5 s`` of silence.

    ``on_ready`` is called once a replica is welcomed; ``on_gone`` once it stops serving: at DRAINING (its
    session stays, so the RESULTs of the batches it holds still arrive), else when it is dropped (GOODBYE,
    silence)."""

    def __init__(self, host: str, port: int, *, heartbeat_interval: float = 0.5,
                 assign_replica_id: Callable[[str, str], Awaitable[int]],
                 on_ready: ReplicaCallback, on_gone: ReplicaCallback,
                 stuck_after: float = 0.0, on_stuck: Callable[[ReplicaConnection], None] | None = None,
                 any_port_fallback: bool = False, advertise: str = "", ipc_home: Path | None = None) -> None:
        self.host = host
        self.port = port
        self.heartbeat_interval = heartbeat_interval
        self.dead_after = 3 * heartbeat_interval + 1.5
        self.stuck_after = stuck_after
        self._on_stuck = on_stuck
        self.any_port_fallback = any_port_fallback
        self.peers: list[str] = []
        """Every live query frontend's RPC address (this one included), announced to replicas."""
        self.local_peers: dict[str, str] = {}
        """Peers' IPC addresses by RPC address (those on this host), announced to replicas on this host only."""
        self.advertise = advertise
        self.ipc_home = ipc_home
        self.ipc: IpcEndpoint | None = None
        self._assign_replica_id = assign_replica_id
        self._on_ready = on_ready
        self._on_gone = on_gone
        self._ctx: zmq.Context[zmq.Socket[bytes]] | None = None
        self._sock: zmq.Socket[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fd = -1
        self._read_scheduled = False
        self._background: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        # Start batch ids at a random offset so a RESULT computed for a previous frontend process cannot
        # match a new batch with the same id.
        self._msg_id = int.from_bytes(os.urandom(6), "little")
        self.replicas: dict[bytes, ReplicaConnection] = {}
        self._greeting: set[bytes] = set()
        self._said_early: dict[bytes, int] = {}
        """DRAINING or GOODBYE from a container whose HELLO is still being answered: applied once it is."""
        self.address = ""

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def next_id(self) -> int:
        self._msg_id += 1
        return self._msg_id

    async def start(self) -> str:
        self._ctx = zmq.Context()
        sock = self._ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        if self.port != 0:
            try:
                sock.bind(f"tcp://{self.host}:{self.port}")
            except zmq.ZMQError:
                if not self.any_port_fallback:
                    sock.close(linger=0)
                    raise
                log.info("RPC port %d is taken; binding another", self.port)
                self.port = 0
        if self.port == 0:
            self.port = sock.bind_to_random_port(f"tcp://{self.host}")
        self._sock = sock
        self.address = f"tcp://{self.host}:{self.port}"
        self.advertise = self.advertise or self.address
        if self.ipc_home is not None:
            self._bind_ipc(sock, self.ipc_home)
        loop = self._loop = asyncio.get_running_loop()
        # ZeroMQ's FD is edge-triggered: read until EVENTS has no POLLIN, and re-check after every send.
        self._fd = cast(int, sock.getsockopt(zmq.FD))
        loop.add_reader(self._fd, self._on_readable)
        self._tasks = [loop.create_task(self._liveness_loop())]
        loop.call_soon(self._on_readable)
        return self.address

    def _bind_ipc(self, sock: zmq.Socket[bytes], home: Path) -> None:
        """Also bind the IPC endpoint (docs/rpc.md, "Transports"); without it replicas use TCP."""
        try:
            ipc = prepare(home, self.advertise)
            sock.bind(ipc.address)
            ipc.publish(self.advertise)
        except (OSError, zmq.ZMQError) as exc:
            log.warning("no IPC endpoint (local replicas use TCP): %s", exc)
            return
        self.ipc = ipc
        self.local_peers = {self.advertise: ipc.address}

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for replica in list(self.replicas.values()):
            await self._drop(replica, "the frontend is stopping")
        if self._sock is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._fd)
            self._sock.close(linger=0)
            self._sock = None
        if self.ipc is not None:
            self.ipc.remove()
        if self._ctx is not None:
            self._ctx.term()

    def send(self, identity: bytes, frames: list[Any]) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            sock.send_multipart([identity, *frames], flags=zmq.NOBLOCK, copy=False)
        except zmq.ZMQError as exc:
            replica = self.replicas.get(identity)
            log.warning("send to %s failed: %s", replica.replica_id if replica else identity.hex(), exc)
            if replica is not None:
                self._spawn(self._drop(replica, f"send failed: {exc}"))
        if not self._read_scheduled and self._loop is not None:
            self._read_scheduled = True
            self._loop.call_soon(self._on_readable)

    def _on_readable(self) -> None:
        self._read_scheduled = False
        sock = self._sock
        if sock is None:
            return
        for _ in range(10_000):  # bounded, so a flood cannot starve the HTTP side of the loop
            if not cast(int, sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
                return
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) < 2:
                continue
            identity = frames[0]
            try:
                self._dispatch(identity, unpack(frames[1]), frames[2:])
            except (ProtocolError, KeyError, TypeError, ValueError) as exc:
                log.warning("dropping malformed message from %s: %s", identity.hex(), exc)
        if not self._read_scheduled and self._loop is not None:
            self._read_scheduled = True
            self._loop.call_soon(self._on_readable)

    def _dispatch(self, identity: bytes, header: dict[str, Any], payload: list[Any]) -> None:
        kind = header["t"]
        replica = self.replicas.get(identity)
        if replica is not None:
            replica.last_seen = time.monotonic()
        if kind == MsgType.RESULT:
            if replica is None:
                log.warning("RESULT from unknown sender %s dropped", identity.hex())
                return
            replica.sent_at.pop(header["id"], None)
            fut = replica.pending.pop(header["id"], None)
            if fut is None:
                log.warning("RESULT with unknown id %s from replica %s dropped", header["id"], replica.replica_id)
            elif not fut.done():
                fut.set_result(header)
        elif kind == MsgType.HEARTBEAT:
            known = replica is not None or identity in self._greeting
            self.send(identity, [pack({"t": MsgType.HEARTBEAT, "unknown": not known})])
        elif kind == MsgType.HELLO:
            if replica is not None:  # a repeated HELLO from a known replica: answer it again, idempotently
                self.send(identity, [pack(self._welcome(replica))])
            elif identity not in self._greeting:
                self._greeting.add(identity)
                self._spawn(self._hello(identity, header))
        elif kind == MsgType.DRAINING:
            if replica is not None and not replica.draining:
                self._draining(replica)
            elif replica is None and identity in self._greeting:  # said while its HELLO is being answered
                self._said_early[identity] = MsgType.DRAINING
        elif kind == MsgType.GOODBYE:
            if replica is not None:
                self._spawn(self._drop(replica, "the container said goodbye"))
            elif identity in self._greeting:
                self._said_early[identity] = MsgType.GOODBYE
        else:
            log.warning("message type %r from %s ignored", kind, identity.hex())

    async def _hello(self, identity: bytes, header: dict[str, Any]) -> None:
        try:
            version = header.get("v")
            if version != PROTOCOL_VERSION:
                raise ProtocolError(f"protocol version {version!r} is not supported; this frontend speaks "
                                    f"{PROTOCOL_VERSION}")
            name, model_version = str(header["model"]), str(header["version"])
            input_type = parse_input_type(header["input_type"])
        except Exception as exc:
            self._greeting.discard(identity)
            reason = getattr(exc, "message", None) or str(exc)
            log.warning("rejecting container %s: %s", identity.hex(), reason)
            self.send(identity, [pack({"t": MsgType.REJECT, "reason": reason})])
            return
        try:
            replica_id = await self._assign_replica_id(name, model_version)
            info = {k: header.get(k) for k in ("pid", "instance", "runtime", "max_batch_size")}
            if isinstance(header.get("frontend"), str):
                info["via"] = header["frontend"]
            replica = ReplicaConnection(self, identity, name, model_version, input_type, replica_id, info)
            self.replicas[identity] = replica
            self.send(identity, [pack(self._welcome(replica))])
            log.info("replica %s of %s:%s connected (pid %s%s)", replica_id, name, model_version, info["pid"],
                     f", via {replica.via}" if replica.via else "")
            await self._on_ready(replica)
            early = self._said_early.pop(identity, None)
            if early == MsgType.DRAINING and not replica.draining:
                self._draining(replica)
            elif early == MsgType.GOODBYE:
                await self._drop(replica, "the container said goodbye")
        finally:
            self._greeting.discard(identity)
            self._said_early.pop(identity, None)

    def _draining(self, replica: ReplicaConnection) -> None:
        replica.draining = True
        log.info("replica %s of %s:%s is draining: no new batches, answering the %d it holds",
                 replica.replica_id, replica.model_name, replica.model_version, len(replica.pending))
        self._spawn(self._stopped_serving(replica))

    def _welcome(self, replica: ReplicaConnection) -> dict[str, Any]:
        welcome = {"t": MsgType.WELCOME, "v": PROTOCOL_VERSION, "replica_id": replica.replica_id,
                   "heartbeat_interval": self.heartbeat_interval, "frontends": self.peers, "address": self.advertise}
        if replica.via.startswith("ipc://"):
            welcome["local"] = self.local_peers
        return welcome

    def announce_peers(self, frontends: list[str], local: dict[str, str] | None = None) -> None:
        """Tell every connected replica which frontends exist now (they join new ones, leave gone ones); those
        that came over IPC (so on this host) also learn ``local``, the IPC addresses of the peers on this host."""
        local = {**(local or {}), **({self.advertise: self.ipc.address} if self.ipc else {})}
        if frontends == self.peers and local == self.local_peers:
            return
        self.peers, self.local_peers = list(frontends), local
        remote = pack({"t": MsgType.PEERS, "frontends": self.peers})
        here = pack({"t": MsgType.PEERS, "frontends": self.peers, "local": self.local_peers})
        for identity, replica in list(self.replicas.items()):
            self.send(identity, [here if replica.via.startswith("ipc://") else remote])

    async def _stopped_serving(self, replica: ReplicaConnection) -> None:
        await self._on_gone(replica)

    async def _drop(self, replica: ReplicaConnection, reason: str) -> None:
        if self.replicas.get(replica.identity) is not replica:
            return
        del self.replicas[replica.identity]
        replica.alive = False
        log.info("replica %s of %s:%s removed: %s", replica.replica_id, replica.model_name,
                 replica.model_version, reason)
        replica.fail_pending(reason)
        if not replica.draining:  # a draining replica was reported gone when it said DRAINING
            await self._on_gone(replica)

    async def _liveness_loop(self) -> None:
        interval = min(0.5, self.heartbeat_interval)
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for replica in list(self.replicas.values()):
                if now - replica.last_seen > self.dead_after:
                    await self._drop(replica, f"no message for {now - replica.last_seen:.1f} s")
                elif (self.stuck_after and replica.sent_at and not replica.stuck_reported
                      and now - min(replica.sent_at.values()) > self.stuck_after):
                    replica.stuck_reported = True
                    log.warning("replica %s of %s:%s has held a batch for more than %.1f s", replica.replica_id,
                                replica.model_name, replica.model_version, self.stuck_after)
                    if self._on_stuck is not None:
                        self._on_stuck(replica)
