"""What the container tests (test_runtime.py, test_main.py) run ``python -m clipper_container`` with: models
pickled by value into model directories, and a fake frontend, a test-owned ROUTER (docs/rpc.md, "Session").

Every wait is bounded and ordered by polling the ROUTER (or the process), never by sleeping.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import zmq
from clipper_container.protocol import MsgType, encode_inputs, pack, unpack
from zmq.utils.monitor import recv_monitor_message

HB = 0.2  # heartbeat interval used by these tests (the frontend's WELCOME repeats it)
DEAD_AFTER = 3 * HB + 1.5
DOUBLES = np.dtype("<f8")

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the subprocess cannot import this module


# -- models (pickled by value into model directories) ---------------------------------------------------------

def sum_model(xs: Any) -> list[str]:
    return [str(float(sum(x))) for x in xs]


def upper_model(xs: list[str]) -> list[str]:
    return [s.upper() for s in xs]


def tricky_model(xs: Any) -> Any:
    firsts = [float(x[0]) for x in xs]
    if any(f < 0 for f in firsts):
        raise ValueError("negative input")
    if firsts[0] == 99:
        return [1.0] * (len(xs) + 1)
    if firsts[0] == 98:
        return "not a list"
    if firsts[0] == 97:
        return np.asarray(xs).sum(axis=1)
    return [ValueError("unlucky 13") if f == 13 else f for f in firsts]


class Weird:
    def __str__(self) -> str:
        return "weird"


def numpy_model(xs: Any) -> list[Any]:
    return [np.float32(0.5), np.arange(3), np.int64(7), {"k": np.bool_(True), 3: np.float64(2.5)}, Weird()]


def make_slow_model(seconds: float, marker: Path) -> Callable[[Any], list[str]]:
    def slow_model(xs: Any) -> list[str]:
        marker.write_text("started")
        time.sleep(seconds)
        return [str(float(sum(x))) for x in xs]
    return slow_model


# -- the fake frontend ----------------------------------------------------------------------------------------

class FakeFrontend:
    """A ROUTER that records heartbeats and answers them (``answer``: "known", "unknown" or None for silence)."""

    def __init__(self, ctx: zmq.Context[Any], port: int | None = None) -> None:
        self.sock = ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        if port is None:
            self.port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        else:
            self.sock.bind(f"tcp://127.0.0.1:{port}")
            self.port = port
        self.answer: str | None = "known"
        self.heartbeats: list[float] = []
        self.seen: list[dict[str, Any]] = []  # every other message, in arrival order

    def close(self) -> None:
        self.sock.close(linger=0)

    def close_and_free_port(self, timeout: float = 5.0) -> None:
        """Unbind, wait (bounded) until the listening socket is really closed, then close: the port is free."""
        monitor = self.sock.get_monitor_socket(zmq.EVENT_CLOSED)
        self.sock.unbind(self.sock.get_string(zmq.LAST_ENDPOINT))
        deadline = time.monotonic() + timeout
        try:
            while True:
                remaining = deadline - time.monotonic()
                assert remaining > 0 and monitor.poll(int(remaining * 1000)), "listener not closed in time"
                if recv_monitor_message(monitor)["event"] == zmq.EVENT_CLOSED:
                    break
        finally:
            self.sock.disable_monitor()
            monitor.close(linger=0)
            self.close()

    def send(self, ident: bytes, header: dict[str, Any], *frames: Any) -> None:
        self.sock.send_multipart([ident, pack(header), *frames])

    def welcome(self, ident: bytes, replica_id: int = 1) -> None:
        self.send(ident, {"t": int(MsgType.WELCOME), "v": 1, "replica_id": replica_id, "heartbeat_interval": HB})

    def predict(self, ident: bytes, batch_id: int, items: list[Any], dtype: np.dtype[Any] | None = DOUBLES) -> None:
        if dtype is not None:
            items = [np.asarray(i, dtype=dtype) for i in items]
        fields, frames = encode_inputs(items, dtype)
        self.send(ident, {"t": int(MsgType.PREDICT), "id": batch_id, **fields}, *frames)

    def _recv_one(self, timeout: float) -> tuple[bytes, dict[str, Any], list[bytes]] | None:
        if not self.sock.poll(max(1, int(timeout * 1000))):
            return None
        ident, head, *payload = self.sock.recv_multipart()
        header = unpack(head)
        if header["t"] == MsgType.HEARTBEAT:
            self.heartbeats.append(time.monotonic())
            if self.answer is not None:
                self.send(ident, {"t": int(MsgType.HEARTBEAT), "unknown": self.answer == "unknown"})
        else:
            self.seen.append(header)
        return ident, header, payload

    def expect(self, kind: MsgType, timeout: float = 5.0) -> tuple[bytes, dict[str, Any]]:
        """Serve heartbeats until a message of ``kind`` arrives; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            msg = self._recv_one(remaining)
            if msg is not None and msg[1]["t"] == kind:
                return msg[0], msg[1]
        raise AssertionError(f"no {kind.name} within {timeout} s; other messages: {self.seen}")

    def pump(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        """Serve heartbeats until ``condition()`` holds; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"condition not met within {timeout} s"
            self._recv_one(0.05)

    def handshake(self) -> bytes:
        ident, _ = self.expect(MsgType.HELLO, timeout=15.0)  # includes interpreter start-up
        self.welcome(ident)
        return ident


def log_text(tmp_path: Path, index: int = 0) -> str:
    return (tmp_path / f"container-{index}.log").read_text(errors="replace")
