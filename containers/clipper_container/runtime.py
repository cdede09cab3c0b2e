"""The container's I/O side: a ZeroMQ DEALER session with a clipper frontend (docs/rpc.md, "Session").

The main thread owns the DEALER socket and polls it together with an inproc PAIR socket fed by the
:class:`~clipper_container.worker.Worker` thread and a wake-up socket written by signal handlers. It says HELLO,
queues PREDICTs for the worker, forwards RESULTs, and heartbeats every ``heartbeat_interval`` whatever the
worker is doing, so a long batch never looks like death. When nothing arrives from the frontend for
``3 * heartbeat_interval + 1.5`` s it throws the socket away and starts again with a new one (forever), so a
restarted frontend is rejoined without help. SIGTERM/SIGINT stop it gracefully: the batch in hand finishes, its
RESULT goes out, then GOODBYE, exit status 0. A REJECT gives exit status 3.
"""

from __future__ import annotations

import contextlib
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
from clipper_container.protocol import PROTOCOL_VERSION, MsgType, ProtocolError, pack, unpack
from clipper_container.worker import DONE, Job, Worker

__all__ = ["EXIT_CRASHED", "EXIT_OK", "EXIT_REJECTED", "ContainerRuntime"]

log = logging.getLogger("clipper_container")

EXIT_OK = 0
EXIT_CRASHED = 1
EXIT_REJECTED = 3
_GOODBYE_LINGER_MS = 2000
_MAX_READS_PER_WAKE = 1000


class ContainerRuntime:
    """Serve ``predictor`` to the frontend at ``frontend`` (``tcp://host:port``) as ``model_name:model_version``.

    :meth:`run` blocks until the container stops and returns the process exit status. ``heartbeat_interval`` is
    used until the frontend's WELCOME says otherwise. ``ready_file`` is written (JSON with the replica id) when
    a WELCOME arrives and removed on exit.
    """

    def __init__(self, predictor: Predictor, *, frontend: str, model_name: str, model_version: str,
                 input_type: str, heartbeat_interval: float = 0.5, max_batch_size: int = -1,
                 ready_file: str | os.PathLike[str] | None = None) -> None:
        if heartbeat_interval <= 0:
            raise ValueError(f"heartbeat_interval must be positive, got {heartbeat_interval}")
        self.predictor = predictor
        self.frontend = frontend
        self.model_name = model_name
        self.model_version = str(model_version)
        self.input_type = input_type
        self.heartbeat_interval = float(heartbeat_interval)
        self.max_batch_size = max_batch_size
        self.ready_file = Path(ready_file) if ready_file is not None else None
        self.instance = secrets.token_hex(8)
        self.replica_id: int | None = None
        self._session = 0
        self._welcomed = False
        self._stop_requested = False
        self._stopping = False
        self._last_hello = self._last_recv = self._next_heartbeat = 0.0
        self._context: zmq.Context[Any] = zmq.Context()
        self._poller = zmq.Poller()
        self._dealer: zmq.Socket[Any] | None = None
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
            log.info("%s again: still finishing the batch in hand", signal.Signals(signum).name)
        else:
            log.info("%s: finishing the batch in hand, then GOODBYE", signal.Signals(signum).name)
        self.request_stop()

    @property
    def dead_after(self) -> float:
        """Seconds of silence from the frontend after which the container reconnects."""
        return 3 * self.heartbeat_interval + 1.5

    # -- main loop ------------------------------------------------------------------------------------------

    def run(self) -> int:
        """Connect, serve until stopped or rejected, and return the exit status (0, 1 or 3)."""
        restore = self._install_signal_handlers()
        pair = self._context.socket(zmq.PAIR)
        address = f"inproc://clipper-worker-{id(self):x}"
        pair.bind(address)
        worker = Worker(self.predictor, self._context, address, lambda: self._session)
        worker.start()
        self._poller.register(pair, zmq.POLLIN)
        self._poller.register(self._wake_r.fileno(), zmq.POLLIN)
        code = EXIT_CRASHED
        try:
            self._connect()
            code = self._loop(pair, worker)
        finally:
            restore()
            if worker.is_alive():
                worker.jobs.put(None)
                worker.join(timeout=0.5)
            if self._dealer is not None:
                self._dealer.close(linger=0 if code == EXIT_REJECTED else _GOODBYE_LINGER_MS)
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

    def _loop(self, pair: zmq.Socket[Any], worker: Worker) -> int:
        while True:
            if self._stop_requested and not self._stopping:
                self._begin_stop(worker)
            now = time.monotonic()
            wake_at = self._next_heartbeat if self._stopping else min(
                self._next_heartbeat, self._last_recv + self.dead_after)
            events = dict(self._poller.poll(math.ceil(max(0.0, wake_at - now) * 1000)))
            if self._wake_r.fileno() in events:
                self._drain_wakeups()
            if pair in events:
                done = self._forward_results(pair)
                if done:
                    if not self._stopping:
                        log.error("the worker thread stopped unexpectedly")
                    self._send({"t": int(MsgType.GOODBYE)})
                    log.info("GOODBYE sent; exiting")
                    return EXIT_OK if self._stopping else EXIT_CRASHED
            if self._dealer in events:
                code = self._read_frontend(worker)
                if code is not None:
                    return code
            now = time.monotonic()
            if now >= self._next_heartbeat:
                self._send({"t": int(MsgType.HEARTBEAT)})
                self._next_heartbeat = now + self.heartbeat_interval
            if not self._stopping and now - self._last_recv > self.dead_after:
                (log.warning if self._welcomed else log.info)(
                    "nothing from the frontend at %s for %.1f s; reconnecting", self.frontend, now - self._last_recv)
                self._connect()

    def _begin_stop(self, worker: Worker) -> None:
        self._stopping = True
        dropped = 0
        while True:
            try:
                if worker.jobs.get_nowait() is not None:
                    dropped += 1
            except queue.Empty:
                break
        if dropped:
            log.info("dropping %d queued batches; the frontend re-queues them after GOODBYE", dropped)
        worker.jobs.put(None)

    def _drain_wakeups(self) -> None:
        with contextlib.suppress(OSError):  # BlockingIOError: drained
            while self._wake_r.recv(4096):
                pass

    # -- the frontend session -------------------------------------------------------------------------------

    def _connect(self) -> None:
        """(Re)create the DEALER, connect it and say HELLO; a new session begins."""
        if self._dealer is not None:
            self._poller.unregister(self._dealer)
            self._dealer.close(linger=0)
        self._dealer = self._context.socket(zmq.DEALER)
        self._dealer.connect(self.frontend)
        self._poller.register(self._dealer, zmq.POLLIN)
        now = time.monotonic()
        self._last_recv = now
        self._next_heartbeat = now + self.heartbeat_interval
        self._hello()

    def _hello(self) -> None:
        self._session += 1  # batches of the previous session are abandoned: the frontend re-queued them
        self._welcomed = False
        self._last_hello = time.monotonic()
        log.info("HELLO to %s as %s:%s (%s)", self.frontend, self.model_name, self.model_version, self.input_type)
        self._send({
            "t": int(MsgType.HELLO), "v": PROTOCOL_VERSION, "model": self.model_name,
            "version": self.model_version, "input_type": self.input_type, "pid": os.getpid(),
            "instance": self.instance, "runtime": f"python-{platform.python_version()}",
            "max_batch_size": self.max_batch_size,
        })

    def _send(self, header: dict[str, Any] | zmq.Frame) -> None:
        assert self._dealer is not None
        data = header if isinstance(header, zmq.Frame) else pack(header)
        try:
            self._dealer.send(data, zmq.NOBLOCK, copy=False)
        except zmq.Again:
            log.warning("send queue to %s is full; message dropped", self.frontend)

    def _forward_results(self, pair: zmq.Socket[Any]) -> bool:
        """Forward the worker's RESULTs of the current session; True once the worker has stopped."""
        while True:
            try:
                session, result = pair.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return False
            if session.bytes == DONE:
                return True
            if int.from_bytes(session.bytes, "little") == self._session:
                self._send(result)
            else:
                log.info("dropping a RESULT from an abandoned session")

    def _read_frontend(self, worker: Worker) -> int | None:
        assert self._dealer is not None
        for _ in range(_MAX_READS_PER_WAKE):
            try:
                frames = self._dealer.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return None
            self._last_recv = time.monotonic()
            try:
                header = unpack(frames[0].buffer)
            except ProtocolError as exc:
                log.warning("malformed message from the frontend dropped: %s", exc)
                continue
            code = self._handle(header, frames[1:], worker)
            if code is not None:
                return code
        return None

    def _handle(self, header: dict[str, Any], payload: list[Any], worker: Worker) -> int | None:
        kind = header["t"]
        if kind == MsgType.HEARTBEAT:
            if header.get("unknown") and (
                self._welcomed or time.monotonic() - self._last_hello >= max(2 * self.heartbeat_interval, 1.0)
            ):
                log.warning("the frontend does not know this container (restarted?); saying HELLO again")
                self._hello()
        elif kind == MsgType.PREDICT:
            if self._stopping:
                log.info("stopping: batch %s not taken", header.get("id"))
            elif not isinstance(header.get("id"), int):
                log.warning("PREDICT without an integer 'id' dropped")
            else:
                worker.jobs.put(Job(self._session, header, payload))
        elif kind == MsgType.WELCOME:
            self._welcome(header)
        elif kind == MsgType.REJECT:
            log.error("the frontend rejected %s:%s: %s", self.model_name, self.model_version,
                      header.get("reason", "(no reason given)"))
            return EXIT_REJECTED
        else:
            log.warning("unexpected message type %r from the frontend dropped", kind)
        return None

    def _welcome(self, header: dict[str, Any]) -> None:
        if header.get("v", PROTOCOL_VERSION) != PROTOCOL_VERSION:
            log.warning("frontend speaks protocol %r, this container %d", header.get("v"), PROTOCOL_VERSION)
        interval = header.get("heartbeat_interval")
        if isinstance(interval, (int, float)) and not isinstance(interval, bool) and interval > 0:
            self.heartbeat_interval = float(interval)
            self._next_heartbeat = min(self._next_heartbeat, time.monotonic() + self.heartbeat_interval)
        replica_id = header.get("replica_id")
        self.replica_id = replica_id if isinstance(replica_id, int) else None
        self._welcomed = True
        log.info("WELCOME: replica %s of %s:%s (heartbeat every %.3g s)", self.replica_id, self.model_name,
                 self.model_version, self.heartbeat_interval)
        if self.ready_file is not None:
            self._write_ready_file(self.ready_file)

    def _write_ready_file(self, path: Path) -> None:
        data = {"replica_id": self.replica_id, "pid": os.getpid(), "instance": self.instance,
                "model": self.model_name, "version": self.model_version, "frontend": self.frontend}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            log.error("cannot write the ready file %s: %s", path, exc)
