"""The container's I/O side: ZeroMQ DEALER sessions with clipper query frontends (docs/rpc.md, "Session").

The main thread owns one DEALER socket per frontend and polls them together with an inproc PAIR socket fed by
the :class:`~clipper_container.worker.Worker` thread and a wake-up socket written by signal handlers. Per
frontend it says HELLO, queues PREDICTs for the (single) worker, forwards RESULTs to the frontend that sent the
batch, and heartbeats every ``heartbeat_interval`` whatever the worker is doing, so a long batch never looks
like death. The frontends given at start are kept forever: after ``3 * heartbeat_interval + 1.5`` s of silence
the socket is thrown away and a new one connects (a restarted frontend is rejoined without help). Frontends
announced in WELCOME/PEERS are joined too, and forgotten when they fall silent or leave the announced set, so a
frontend joining or leaving is picked up without restarting the container. SIGTERM/SIGINT stop it gracefully:
DRAINING to every frontend (no new batch comes), the batches it holds finish and their RESULTs go out, then
GOODBYE to every frontend, exit status 0. A REJECT gives
exit status 3.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import platform
import queue
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import zmq

from clipper_container.loading import Predictor
from clipper_container.peers import plan_peers
from clipper_container.protocol import PROTOCOL_VERSION, MsgType, ProtocolError, pack, unpack
from clipper_container.worker import DONE, Job, Worker

__all__ = ["EXIT_CRASHED", "EXIT_OK", "EXIT_REJECTED", "ContainerRuntime"]

log = logging.getLogger("clipper_container")

EXIT_OK = 0
EXIT_CRASHED = 1
EXIT_REJECTED = 3
_GOODBYE_LINGER_MS = 2000
DEFAULT_DRAIN_SECONDS = 8.0
"""How long a stopping container finishes the batches it holds before it abandons those not started (the
frontends re-queue them at GOODBYE): within Docker's and the local supervisor's 10 s stop timeout."""
_MAX_READS_PER_WAKE = 1000


class _Session:
    """One frontend: its socket and its session bookkeeping."""

    __slots__ = ("address", "bootstrap", "canonical", "dealer", "last_hello", "last_recv", "next_heartbeat",
                 "number", "replica_id", "welcomed")

    def __init__(self, address: str, bootstrap: bool, dealer: zmq.Socket[Any], number: int, now: float,
                 heartbeat_interval: float, canonical: str) -> None:
        self.address = address
        self.canonical = canonical
        """The frontend's TCP address as the registry lists it (WELCOME's ``address``); ``address`` may be IPC."""
        self.bootstrap = bootstrap
        self.dealer = dealer
        self.number = number
        self.welcomed = False
        self.replica_id: int | None = None
        self.last_hello = 0.0
        self.last_recv = now
        self.next_heartbeat = now + heartbeat_interval


class ContainerRuntime:
    """Serve ``predictor`` as ``model_name:model_version`` to the frontend(s) at ``frontend``
    (``tcp://host:port``, several separated by commas), and to every frontend they announce.

    :meth:`run` blocks until the container stops and returns the process exit status. ``heartbeat_interval`` is
    used until a frontend's WELCOME says otherwise. ``ready_file`` is written (JSON with the replica id) when
    the first WELCOME arrives and removed on exit.
    """

    def __init__(self, predictor: Predictor, *, frontend: str, model_name: str, model_version: str,
                 input_type: str, heartbeat_interval: float = 0.5, max_batch_size: int = -1,
                 ready_file: str | os.PathLike[str] | None = None,
                 drain_seconds: float = DEFAULT_DRAIN_SECONDS) -> None:
        if heartbeat_interval <= 0:
            raise ValueError(f"heartbeat_interval must be positive, got {heartbeat_interval}")
        self.predictor = predictor
        self.frontend = frontend
        self.bootstrap = [addr.strip() for addr in frontend.split(",") if addr.strip()]
        self.model_name = model_name
        self.model_version = str(model_version)
        self.input_type = input_type
        self.heartbeat_interval = float(heartbeat_interval)
        self.max_batch_size = max_batch_size
        self.ready_file = Path(ready_file) if ready_file is not None else None
        self.drain_seconds = max(0.0, float(drain_seconds))
        self._drain_until = math.inf
        """While stopping: when the batches not yet started are abandoned."""
        self.instance = secrets.token_hex(8)
        self.replica_id: int | None = None
        self._numbers = itertools.count(1)
        self._sessions: dict[str, _Session] = {}
        self._by_number: dict[int, _Session] = {}
        self._by_socket: dict[zmq.Socket[Any], _Session] = {}
        self._stop_requested = False
        self._stopping = False
        self._context: zmq.Context[Any] = zmq.Context()
        self._poller = zmq.Poller()
        self._wake_r, self._wake_w = socket.socketpair()
        for sock in (self._wake_r, self._wake_w):
            sock.setblocking(False)

    # -- control --------------------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask for a graceful stop; safe from signal handlers and other threads."""
        self._stop_requested = True
        with contextlib.suppress(OSError):  # buffer full: a wake-up is already pending
            self._wake_w.send(b"\0")

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stop_requested:
            log.info("%s again: still finishing the batches held", signal.Signals(signum).name)
        else:
            log.info("%s: DRAINING, finishing the batches held, then GOODBYE", signal.Signals(signum).name)
        self.request_stop()

    @property
    def dead_after(self) -> float:
        """Seconds of silence from a frontend after which the container reconnects (or forgets it)."""
        return 3 * self.heartbeat_interval + 1.5

    @property
    def frontends(self) -> list[str]:
        """The frontends this container currently has a session with."""
        return sorted(self._sessions)

    # -- main loop ------------------------------------------------------------------------------------------

    def run(self) -> int:
        """Connect, serve until stopped or rejected, and return the exit status (0, 1 or 3)."""
        restore = self._install_signal_handlers()
        pair = self._context.socket(zmq.PAIR)
        address = f"inproc://clipper-worker-{id(self):x}"
        pair.bind(address)
        worker = Worker(self.predictor, self._context, address, lambda number: number in self._by_number)
        worker.start()
        self._poller.register(pair, zmq.POLLIN)
        self._poller.register(self._wake_r.fileno(), zmq.POLLIN)
        code = EXIT_CRASHED
        try:
            for addr in self.bootstrap:
                self._connect(addr, bootstrap=True)
            code = self._loop(pair, worker)
        finally:
            restore()
            if worker.is_alive():
                worker.jobs.put(None)
                worker.join(timeout=0.5)
            for session in list(self._sessions.values()):
                session.dealer.close(linger=0 if code == EXIT_REJECTED else _GOODBYE_LINGER_MS)
            pair.close(linger=0)
            if not worker.is_alive():  # term() would wait for the worker's socket forever
                self._context.term()
            self._wake_r.close()
            self._wake_w.close()
            if self.ready_file is not None:
                self.ready_file.unlink(missing_ok=True)
        return code

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        old_fd = signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)

        def restore() -> None:
            signal.set_wakeup_fd(old_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return restore

    def _wake_at(self) -> float:
        times = [s.next_heartbeat for s in self._sessions.values()]
        if not self._stopping:
            times += [s.last_recv + self.dead_after for s in self._sessions.values()]
        elif self._drain_until < math.inf:
            times.append(self._drain_until)
        return min(times) if times else time.monotonic() + self.heartbeat_interval

    def _loop(self, pair: zmq.Socket[Any], worker: Worker) -> int:
        while True:
            if self._stop_requested and not self._stopping:
                self._begin_stop(worker)
            now = time.monotonic()
            if now >= self._drain_until:
                self._abandon_queued(worker)
            events = dict(self._poller.poll(math.ceil(max(0.0, self._wake_at() - now) * 1000)))
            if self._wake_r.fileno() in events:
                self._drain_wakeups()
            if pair in events:
                done = self._forward_results(pair)
                if done:
                    if not self._stopping:
                        log.error("the worker thread stopped unexpectedly")
                    for session in self._sessions.values():
                        self._send(session, {"t": int(MsgType.GOODBYE)})
                    log.info("GOODBYE sent; exiting")
                    return EXIT_OK if self._stopping else EXIT_CRASHED
            for sock, session in list(self._by_socket.items()):
                if sock in events:
                    code = self._read_frontend(session, worker)
                    if code is not None:
                        return code
            now = time.monotonic()
            for session in list(self._sessions.values()):
                if now >= session.next_heartbeat:
                    self._send(session, {"t": int(MsgType.HEARTBEAT)})
                    session.next_heartbeat = now + self.heartbeat_interval
                if not self._stopping and now - session.last_recv > self.dead_after:
                    if session.bootstrap:
                        (log.warning if session.welcomed else log.info)(
                            "nothing from the frontend at %s for %.1f s; reconnecting", session.address,
                            now - session.last_recv)
                        self._connect(session.address, bootstrap=True)
                    else:
                        log.warning("the frontend at %s is silent; leaving it", session.address)
                        self._close(session)

    def _begin_stop(self, worker: Worker) -> None:
        """DRAINING to every frontend (they send no new batch), then the worker finishes every batch it holds
        (the one in hand and those queued behind it) before it stops."""
        self._stopping = True
        self._drain_until = time.monotonic() + self.drain_seconds
        for session in self._sessions.values():
            self._send(session, {"t": int(MsgType.DRAINING)})
        held = worker.jobs.qsize()
        if held:
            log.info("finishing %d queued batches besides the one in hand (for up to %.0f s)", held,
                     self.drain_seconds)
        worker.jobs.put(None)

    def _abandon_queued(self, worker: Worker) -> None:
        """The drain took too long: the batches not started are dropped (the frontends re-queue them at GOODBYE,
        which follows the batch in hand)."""
        self._drain_until = math.inf
        dropped = 0
        while True:
            try:
                if worker.jobs.get_nowait() is not None:
                    dropped += 1
            except queue.Empty:
                break
        worker.jobs.put(None)
        if dropped:
            log.warning("drain took over %.0f s: %d queued batches abandoned", self.drain_seconds, dropped)

    def _drain_wakeups(self) -> None:
        with contextlib.suppress(OSError):  # BlockingIOError: drained
            while self._wake_r.recv(4096):
                pass

    # -- frontend sessions ----------------------------------------------------------------------------------

    def _connect(self, address: str, bootstrap: bool, canonical: str | None = None) -> None:
        """(Re)create the DEALER for ``address``, connect it and say HELLO; a new session begins."""
        old = self._sessions.get(address)
        if old is not None:
            bootstrap = bootstrap or old.bootstrap
            canonical = canonical or old.canonical
            self._close(old)
        dealer = self._context.socket(zmq.DEALER)
        dealer.connect(address)
        session = _Session(address, bootstrap, dealer, next(self._numbers), time.monotonic(),
                           self.heartbeat_interval, canonical or address)
        self._sessions[address] = session
        self._by_number[session.number] = session
        self._by_socket[dealer] = session
        self._poller.register(dealer, zmq.POLLIN)
        self._hello(session)

    def _close(self, session: _Session) -> None:
        self._sessions.pop(session.address, None)
        self._by_number.pop(session.number, None)  # its queued batches are abandoned: the frontend re-queues
        self._by_socket.pop(session.dealer, None)
        self._poller.unregister(session.dealer)
        session.dealer.close(linger=0)

    def _hello(self, session: _Session) -> None:
        # A new session number: batches of the previous one are abandoned (the frontend re-queued them).
        self._by_number.pop(session.number, None)
        session.number = next(self._numbers)
        self._by_number[session.number] = session
        session.welcomed = False
        session.last_hello = time.monotonic()
        log.info("HELLO to %s as %s:%s (%s)", session.address, self.model_name, self.model_version,
                 self.input_type)
        self._send(session, {
            "t": int(MsgType.HELLO), "v": PROTOCOL_VERSION, "model": self.model_name,
            "version": self.model_version, "input_type": self.input_type, "pid": os.getpid(),
            "instance": self.instance, "runtime": f"python-{platform.python_version()}",
            "max_batch_size": self.max_batch_size, "frontend": session.address,
        })

    def _send(self, session: _Session, header: dict[str, Any] | zmq.Frame) -> None:
        data = header if isinstance(header, zmq.Frame) else pack(header)
        try:
            session.dealer.send(data, zmq.NOBLOCK, copy=False)
        except zmq.Again:
            log.warning("send queue to %s is full; message dropped", session.address)

    def _forward_results(self, pair: zmq.Socket[Any]) -> bool:
        """Forward the worker's RESULTs to the sessions they belong to; True once the worker has stopped."""
        while True:
            try:
                number, result = pair.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return False
            if number.bytes == DONE:
                return True
            session = self._by_number.get(int.from_bytes(number.bytes, "little"))
            if session is not None:
                self._send(session, result)
            else:
                log.info("dropping a RESULT from an abandoned session")

    def _read_frontend(self, session: _Session, worker: Worker) -> int | None:
        for _ in range(_MAX_READS_PER_WAKE):
            if self._sessions.get(session.address) is not session:
                return None  # replaced or closed while handling an earlier message
            try:
                frames = session.dealer.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return None
            session.last_recv = time.monotonic()
            try:
                header = unpack(frames[0].buffer)
            except ProtocolError as exc:
                log.warning("malformed message from %s dropped: %s", session.address, exc)
                continue
            code = self._handle(session, header, frames[1:], worker)
            if code is not None:
                return code
        return None

    def _handle(self, session: _Session, header: dict[str, Any], payload: list[Any], worker: Worker) -> int | None:
        kind = header["t"]
        if kind == MsgType.HEARTBEAT:
            if header.get("unknown") and not self._stopping and (
                session.welcomed or time.monotonic() - session.last_hello >= max(2 * self.heartbeat_interval, 1.0)
            ):  # (a stopping container does not join a frontend anew: it would be sent new work)
                log.warning("the frontend at %s does not know this container (restarted?); saying HELLO again",
                            session.address)
                self._hello(session)
        elif kind == MsgType.PREDICT:
            if self._stopping:
                log.info("stopping: batch %s not taken", header.get("id"))
            elif not isinstance(header.get("id"), int):
                log.warning("PREDICT without an integer 'id' dropped")
            else:
                worker.jobs.put(Job(session.number, header, payload))
        elif kind == MsgType.WELCOME:
            self._welcome(session, header)
        elif kind == MsgType.PEERS:
            self._peers(header.get("frontends"), header.get("local"))
        elif kind == MsgType.REJECT:
            log.error("the frontend at %s rejected %s:%s: %s", session.address, self.model_name,
                      self.model_version, header.get("reason", "(no reason given)"))
            return EXIT_REJECTED
        else:
            log.warning("unexpected message type %r from %s dropped", kind, session.address)
        return None

    def _peers(self, frontends: Any, local: Any) -> None:
        """Join announced frontends we have no session with (over IPC where ``local`` names a socket we can
        reach); leave announced-only ones no longer listed."""
        sessions = [(s.address, s.canonical, s.bootstrap) for s in self._sessions.values()]
        plan = plan_peers(sessions, frontends, local)
        if plan is None or self._stopping:
            return
        for addr, canonical in plan.join:
            log.info("joining frontend %s%s", canonical, f" over {addr}" if addr != canonical else "")
            self._connect(addr, bootstrap=False, canonical=canonical)
        for addr in plan.leave:
            log.info("frontend %s left; closing its session", addr)
            self._close(self._sessions[addr])

    def _welcome(self, session: _Session, header: dict[str, Any]) -> None:
        if header.get("v", PROTOCOL_VERSION) != PROTOCOL_VERSION:
            log.warning("frontend speaks protocol %r, this container %d", header.get("v"), PROTOCOL_VERSION)
        interval = header.get("heartbeat_interval")
        if isinstance(interval, (int, float)) and not isinstance(interval, bool) and interval > 0:
            self.heartbeat_interval = float(interval)
            session.next_heartbeat = min(session.next_heartbeat, time.monotonic() + self.heartbeat_interval)
        if isinstance(header.get("address"), str):
            session.canonical = header["address"]
            for twin in [o for o in self._sessions.values() if o is not session and not o.bootstrap
                         and o.canonical == session.canonical]:  # the same frontend, joined over another address
                self._close(twin)
        replica_id = header.get("replica_id")
        session.replica_id = replica_id if isinstance(replica_id, int) else None
        first = not any(s.welcomed for s in self._sessions.values())
        session.welcomed = True
        if first or self.replica_id is None:
            self.replica_id = session.replica_id
        log.info("WELCOME from %s: replica %s of %s:%s (heartbeat every %.3g s)", session.address,
                 session.replica_id, self.model_name, self.model_version, self.heartbeat_interval)
        if first and self.ready_file is not None:
            self._write_ready_file(self.ready_file, session)
        self._peers(header.get("frontends"), header.get("local"))

    def _write_ready_file(self, path: Path, session: _Session) -> None:
        data = {"replica_id": session.replica_id, "pid": os.getpid(), "instance": self.instance,
                "model": self.model_name, "version": self.model_version, "frontend": session.address}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            log.error("cannot write the ready file %s: %s", path, exc)
