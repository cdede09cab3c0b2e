"""`python -m clipper_container` as a real subprocess against a test-owned ROUTER (docs/rpc.md, "Session").

Every wait is bounded and ordered by polling the ROUTER (or the process), never by sleeping.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest
import zmq
from clipper_container.loaders import python_closure
from clipper_container.protocol import MsgType, encode_inputs, pack, unpack
from clipper_container.worker import to_wire
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


# -- fixtures ---------------------------------------------------------------------------------------------------

@pytest.fixture
def ctx() -> Iterator[zmq.Context[Any]]:
    context: zmq.Context[Any] = zmq.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture
def frontend(ctx: zmq.Context[Any]) -> Iterator[FakeFrontend]:
    ff = FakeFrontend(ctx)
    yield ff
    ff.close()


@pytest.fixture
def model_dir(tmp_path: Path) -> Callable[..., Path]:
    def write(func: Callable[[Any], Any], input_type: str = "doubles", name: str = "m", **extra: Any) -> Path:
        directory = tmp_path / f"model-{name}"
        python_closure.save(directory, func, input_type=input_type, name=name, version="1", **extra)
        return directory
    return write


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(model: Path | None, port: int | None, *args: str, env: dict[str, str] | None = None
              ) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "clipper_container", "--heartbeat-interval", str(HB), "--log-level", "DEBUG"]
        if model is not None:
            cmd += ["--model-dir", str(model)]
        if port is not None:
            cmd += ["--frontend", f"tcp://127.0.0.1:{port}"]
        log_path = tmp_path / f"container-{len(procs)}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen([*cmd, *args], stdout=log, stderr=subprocess.STDOUT,
                                    env={**os.environ, **(env or {})})
        procs.append((proc, log_path))
        return proc

    yield start
    for proc, log_path in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        print(f"---- {log_path.name} (exit {proc.returncode}) ----\n{log_path.read_text(errors='replace')}")


def log_text(tmp_path: Path, index: int = 0) -> str:
    return (tmp_path / f"container-{index}.log").read_text(errors="replace")


# -- the session ------------------------------------------------------------------------------------------------

def test_session_hello_welcome_predict_result(frontend: FakeFrontend, model_dir: Callable[..., Path],
                                              container: Callable[..., subprocess.Popen[bytes]],
                                              tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    proc = container(model_dir(sum_model, name="sum-model"), frontend.port, "--ready-file", str(ready))
    ident, hello = frontend.expect(MsgType.HELLO, timeout=15.0)
    assert hello["v"] == 1 and hello["model"] == "sum-model" and hello["version"] == "1"
    assert hello["input_type"] == "doubles" and hello["pid"] == proc.pid and hello["max_batch_size"] == -1
    assert hello["runtime"].startswith("python-3.") and int(hello["instance"], 16) >= 0
    frontend.welcome(ident, replica_id=42)

    frontend.predict(ident, 7, [[1, 2, 3], [4, 5, 6]])
    _, result = frontend.expect(MsgType.RESULT)
    assert result["id"] == 7 and result["n"] == 2 and result["out"] == ["6.0", "15.0"]
    assert "errs" not in result and "error" not in result and result["compute_ms"] >= 0
    # WELCOME was handled before the PREDICT behind it, so the ready file exists by now
    assert json.loads(ready.read_text())["replica_id"] == 42

    # pipelining: several batches in flight (one ragged), one RESULT each
    frontend.predict(ident, 8, [[1.5]])
    frontend.predict(ident, 9, [[1, 2], [3]])
    frontend.predict(ident, 10, [[0, 0, 0]] * 5)
    outs = {}
    for _ in range(3):
        _, r = frontend.expect(MsgType.RESULT)
        outs[r["id"]] = r["out"]
    assert outs == {8: ["1.5"], 9: ["3.0", "3.0"], 10: ["0.0"] * 5}
    assert proc.poll() is None


def test_strings_unicode(frontend: FakeFrontend, model_dir: Callable[..., Path],
                         container: Callable[..., subprocess.Popen[bytes]]) -> None:
    container(model_dir(upper_model, input_type="strings"), frontend.port)
    ident = frontend.handshake()
    frontend.predict(ident, 1, ["héllo wörld", "日本語", "", "😀 ok"], dtype=None)
    _, result = frontend.expect(MsgType.RESULT)
    assert result["out"] == ["HÉLLO WÖRLD", "日本語", "", "😀 OK"]


def test_heartbeats_continue_during_a_long_batch(frontend: FakeFrontend, model_dir: Callable[..., Path],
                                                 container: Callable[..., subprocess.Popen[bytes]],
                                                 tmp_path: Path) -> None:
    seconds = 5 * HB  # longer than 3 heartbeat intervals
    container(model_dir(make_slow_model(seconds, tmp_path / "started")), frontend.port)
    ident = frontend.handshake()
    frontend.predict(ident, 1, [[1, 2]])
    sent = time.monotonic()
    _, result = frontend.expect(MsgType.RESULT, timeout=seconds + 5)
    done = time.monotonic()
    assert result["out"] == ["3.0"] and done - sent >= seconds
    beats = [t for t in frontend.heartbeats if sent <= t <= done]
    assert len(beats) >= 3, beats
    gaps = np.diff([sent, *beats, done])
    assert gaps.max() < 3 * HB, gaps  # never silent for 3 intervals while the model runs


def test_model_errors_become_results(frontend: FakeFrontend, model_dir: Callable[..., Path],
                                     container: Callable[..., subprocess.Popen[bytes]]) -> None:
    proc = container(model_dir(tricky_model), frontend.port)
    ident = frontend.handshake()

    def run(batch_id: int, items: list[Any]) -> dict[str, Any]:
        frontend.predict(ident, batch_id, items)
        _, result = frontend.expect(MsgType.RESULT)
        assert result["id"] == batch_id
        return result

    raised = run(1, [[1.0], [-1.0]])
    assert raised["error"] == "ValueError: negative input" and "out" not in raised and raised["n"] == 2
    wrong = run(2, [[99.0], [1.0]])
    assert "3" in wrong["error"] and "2" in wrong["error"] and "out" not in wrong
    assert wrong["error"] == "model returned 3 outputs for a batch of 2 inputs"
    not_list = run(3, [[98.0]])
    assert not_list["error"] == "model returned str, expected a list of 1 outputs"
    items = run(4, [[13.0], [2.0], [13.0]])
    assert items["out"] == [None, 2.0, None]
    assert items["errs"] == [[0, "ValueError: unlucky 13"], [2, "ValueError: unlucky 13"]]
    as_array = run(5, [[97.0, 1.0], [2.0, 3.0]])
    assert as_array["out"] == [98.0, 5.0] and "errs" not in as_array

    # a payload that does not match its header: a batch error, not a crash
    frontend.send(ident, {"t": int(MsgType.PREDICT), "id": 6, "kind": "array", "dtype": "<f8", "shape": [2, 3]},
                  b"\0" * 8)
    _, bad = frontend.expect(MsgType.RESULT)
    assert bad["id"] == 6 and bad["error"].startswith("ProtocolError: ")
    # garbage headers and unknown types are dropped
    frontend.sock.send_multipart([ident, b"\xc1"])
    frontend.send(ident, {"t": 99})
    assert run(7, [[4.0]])["out"] == [4.0]
    assert proc.poll() is None


def test_numpy_outputs_are_converted(frontend: FakeFrontend, model_dir: Callable[..., Path],
                                     container: Callable[..., subprocess.Popen[bytes]]) -> None:
    container(model_dir(numpy_model), frontend.port)
    ident = frontend.handshake()
    frontend.predict(ident, 1, [[0.0]] * 5)
    _, result = frontend.expect(MsgType.RESULT)
    assert result["out"] == [0.5, [0, 1, 2], 7, {"k": True, 3: 2.5}, "weird"]


def test_to_wire() -> None:
    assert to_wire(np.float64(1.5)) == 1.5 and type(to_wire(np.int32(3))) is int
    assert to_wire((np.arange(2), None, "s")) == [[0, 1], None, "s"]
    assert to_wire({(1, 2): np.bool_(False)}) == {"[1, 2]": False}
    assert to_wire(2**70) == str(2**70) and to_wire(b"x") == "b'x'"


# -- session recovery -------------------------------------------------------------------------------------------

def test_unknown_heartbeat_answer_triggers_hello(frontend: FakeFrontend, model_dir: Callable[..., Path],
                                                 container: Callable[..., subprocess.Popen[bytes]]) -> None:
    container(model_dir(sum_model), frontend.port)
    ident = frontend.handshake()
    frontend.expect(MsgType.HEARTBEAT)
    frontend.answer = "unknown"
    again, hello = frontend.expect(MsgType.HELLO, timeout=DEAD_AFTER)  # well before a reconnect would happen
    assert again == ident and hello["model"] == "m"
    frontend.answer = "known"
    frontend.welcome(ident, replica_id=2)
    frontend.predict(ident, 1, [[2, 2]])
    assert frontend.expect(MsgType.RESULT)[1]["out"] == ["4.0"]


@pytest.mark.parametrize("answer", ["unknown", None], ids=["restarted-frontend", "silent-frontend"])
def test_reconnects_after_frontend_restart(ctx: zmq.Context[Any], frontend: FakeFrontend, answer: str | None,
                                           model_dir: Callable[..., Path],
                                           container: Callable[..., subprocess.Popen[bytes]]) -> None:
    proc = container(model_dir(sum_model), frontend.port)
    first = frontend.handshake()
    frontend.expect(MsgType.HEARTBEAT)
    frontend.close_and_free_port()
    restarted = FakeFrontend(ctx, port=frontend.port)
    try:
        restarted.answer = answer  # None: say nothing, so the container must replace its socket
        ident, hello = restarted.expect(MsgType.HELLO, timeout=DEAD_AFTER + 5)
        assert ident != first and hello["pid"] == proc.pid
        restarted.answer = "known"
        restarted.welcome(ident, replica_id=1)
        restarted.predict(ident, 1, [[5, 5]])
        assert restarted.expect(MsgType.RESULT)[1]["out"] == ["10.0"]
    finally:
        restarted.close()


def test_results_of_an_abandoned_session_are_dropped(ctx: zmq.Context[Any], frontend: FakeFrontend,
                                                     model_dir: Callable[..., Path], tmp_path: Path,
                                                     container: Callable[..., subprocess.Popen[bytes]]) -> None:
    marker = tmp_path / "started"
    container(model_dir(make_slow_model(8 * HB, marker)), frontend.port)
    ident = frontend.handshake()
    frontend.predict(ident, 1, [[1, 1]])
    frontend.pump(marker.exists)
    frontend.close_and_free_port()
    restarted = FakeFrontend(ctx, port=frontend.port)  # a new frontend numbers its batches from 1 again
    try:
        restarted.answer = "unknown"
        new_ident, _ = restarted.expect(MsgType.HELLO, timeout=DEAD_AFTER + 5)
        restarted.answer = "known"
        restarted.welcome(new_ident)
        restarted.predict(new_ident, 1, [[20, 20]])
        _, result = restarted.expect(MsgType.RESULT, timeout=16 * HB + 5)
        assert result["id"] == 1 and result["out"] == ["40.0"]  # not the old session's ["2.0"]
    finally:
        restarted.close()


def test_hello_reaches_a_frontend_that_starts_later(ctx: zmq.Context[Any], model_dir: Callable[..., Path],
                                                    container: Callable[..., subprocess.Popen[bytes]]) -> None:
    probe = FakeFrontend(ctx)
    port = probe.port
    probe.close_and_free_port()
    container(model_dir(sum_model), port)
    late = FakeFrontend(ctx, port=port)
    try:
        ident = late.handshake()
        late.predict(ident, 3, [[1]])
        assert late.expect(MsgType.RESULT)[1]["out"] == ["1.0"]
    finally:
        late.close()


# -- stopping ---------------------------------------------------------------------------------------------------

def test_sigterm_finishes_the_batch_in_hand_then_goodbye(frontend: FakeFrontend, model_dir: Callable[..., Path],
                                                         container: Callable[..., subprocess.Popen[bytes]],
                                                         tmp_path: Path) -> None:
    marker = tmp_path / "started"
    proc = container(model_dir(make_slow_model(4 * HB, marker)), frontend.port)
    ident = frontend.handshake()
    frontend.predict(ident, 1, [[1, 2]])
    frontend.predict(ident, 2, [[3, 4]])  # queued behind batch 1: not taken once stopping
    frontend.pump(marker.exists)
    proc.send_signal(signal.SIGTERM)
    _, result = frontend.expect(MsgType.RESULT)
    assert result["id"] == 1 and result["out"] == ["3.0"]
    frontend.expect(MsgType.GOODBYE)
    assert proc.wait(timeout=10) == 0
    assert [m["id"] for m in frontend.seen if m["t"] == MsgType.RESULT] == [1]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_idle_signal_goodbye_exit_0(frontend: FakeFrontend, model_dir: Callable[..., Path], sig: int,
                                    container: Callable[..., subprocess.Popen[bytes]], tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    proc = container(model_dir(sum_model), frontend.port, "--ready-file", str(ready))
    frontend.handshake()
    frontend.pump(ready.exists)
    proc.send_signal(sig)
    frontend.expect(MsgType.GOODBYE)
    assert proc.wait(timeout=10) == 0
    assert not ready.exists()


def test_reject_exits_3(frontend: FakeFrontend, model_dir: Callable[..., Path], tmp_path: Path,
                        container: Callable[..., subprocess.Popen[bytes]]) -> None:
    proc = container(model_dir(sum_model), frontend.port)
    ident, _ = frontend.expect(MsgType.HELLO, timeout=15.0)
    frontend.send(ident, {"t": int(MsgType.REJECT), "reason": "no model m:1 is registered"})
    assert proc.wait(timeout=10) == 3
    assert "no model m:1 is registered" in log_text(tmp_path)


# -- configuration ----------------------------------------------------------------------------------------------

def test_environment_fallbacks(frontend: FakeFrontend, model_dir: Callable[..., Path],
                               container: Callable[..., subprocess.Popen[bytes]]) -> None:
    env = {"CLIPPER_MODEL_PATH": str(model_dir(sum_model)), "CLIPPER_IP": "127.0.0.1",
           "CLIPPER_PORT": str(frontend.port), "CLIPPER_MODEL_NAME": "env-model", "CLIPPER_MODEL_VERSION": "7",
           "CLIPPER_INPUT_TYPE": "floats"}
    container(None, None, env=env)
    _, hello = frontend.expect(MsgType.HELLO, timeout=15.0)
    assert (hello["model"], hello["version"], hello["input_type"]) == ("env-model", "7", "floats")


def test_options_override_the_manifest(frontend: FakeFrontend, model_dir: Callable[..., Path],
                                       container: Callable[..., subprocess.Popen[bytes]]) -> None:
    directory = model_dir(sum_model, max_batch_size=16)
    container(directory, frontend.port, "--name", "other", "--version", "3")
    _, hello = frontend.expect(MsgType.HELLO, timeout=15.0)
    assert (hello["model"], hello["version"], hello["max_batch_size"]) == ("other", "3", 16)


def test_incompatible_model_exits_4(model_dir: Callable[..., Path], tmp_path: Path,
                                    container: Callable[..., subprocess.Popen[bytes]]) -> None:
    directory = model_dir(sum_model)
    manifest = json.loads((directory / "clipper_model.json").read_text())
    manifest["requirements"]["cloudpickle"] = "1.0.0"
    (directory / "clipper_model.json").write_text(json.dumps(manifest))
    proc = container(directory, 1)
    assert proc.wait(timeout=15) == 4
    text = log_text(tmp_path)
    assert "cloudpickle 1.0.0" in text and "install cloudpickle==1.0.0" in text


def test_runtime_imports_only_its_own_dependencies() -> None:
    code = ("import sys, clipper_container.__main__, clipper_container.loaders.python_closure; "
            "bad = sorted({m.split('.')[0] for m in sys.modules} & {'clipper_core', 'aiohttp', 'pluggy'}); "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr


def test_help_and_missing_model_dir() -> None:
    cmd = [sys.executable, "-m", "clipper_container"]
    assert subprocess.run([*cmd, "--help"], capture_output=True, timeout=30).returncode == 0
    env = {k: v for k, v in os.environ.items() if k != "CLIPPER_MODEL_PATH"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 2 and "CLIPPER_MODEL_PATH" in done.stderr
