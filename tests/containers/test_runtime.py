"""`python -m clipper_container` as a real subprocess against a test-owned ROUTER (docs/rpc.md, "Session"): the
session, its recovery and stopping. The models, the fake frontend and the fixtures are fakes.py's and conftest.py's;
the command line's options and exit statuses are test_main.py's.

Every wait is bounded and ordered by polling the ROUTER (or the process), never by sleeping.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq
from clipper_container.protocol import MsgType
from clipper_container.worker import to_wire

from tests.containers.fakes import (
    DEAD_AFTER,
    HB,
    FakeFrontend,
    log_text,
    make_slow_model,
    numpy_model,
    sum_model,
    tricky_model,
    upper_model,
)

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
    row = [0.5, 1.5]  # a row of a framework's float output (.tolist()) is already msgpack-safe: kept as it is
    assert to_wire(row) is row and to_wire((0.5, 1.5)) == [0.5, 1.5] and to_wire([]) == []
    assert to_wire([0.5, np.float32(1.5), 2**70]) == [0.5, 1.5, str(2**70)]
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

def test_sigterm_drains_finishes_the_batches_held_then_goodbye(frontend: FakeFrontend,
                                                               model_dir: Callable[..., Path],
                                                               container: Callable[..., subprocess.Popen[bytes]],
                                                               tmp_path: Path) -> None:
    marker = tmp_path / "started"
    proc = container(model_dir(make_slow_model(4 * HB, marker)), frontend.port)
    ident = frontend.handshake()
    frontend.predict(ident, 1, [[1, 2]])
    frontend.predict(ident, 2, [[3, 4]])  # queued behind batch 1: held, so finished too
    frontend.pump(marker.exists)
    proc.send_signal(signal.SIGTERM)
    frontend.expect(MsgType.DRAINING)  # at once, before batch 1 is done
    assert not [m for m in frontend.seen if m["t"] == MsgType.RESULT]
    frontend.predict(ident, 3, [[5, 6]])  # after DRAINING: not taken (the frontend re-queues it after GOODBYE)
    _, result = frontend.expect(MsgType.RESULT)
    assert result["id"] == 1 and result["out"] == ["3.0"]
    _, result = frontend.expect(MsgType.RESULT)
    assert result["id"] == 2 and result["out"] == ["7.0"]
    frontend.expect(MsgType.GOODBYE)
    assert proc.wait(timeout=10) == 0
    assert [m["id"] for m in frontend.seen if m["t"] == MsgType.RESULT] == [1, 2]


def test_a_drain_past_its_deadline_abandons_the_batches_not_started(frontend: FakeFrontend,
                                                                     model_dir: Callable[..., Path],
                                                                     container: Callable[..., subprocess.Popen[bytes]],
                                                                     tmp_path: Path) -> None:
    marker = tmp_path / "started"
    proc = container(model_dir(make_slow_model(4 * HB, marker)), frontend.port, "--drain-seconds", "0")
    ident = frontend.handshake()
    for msg_id in (1, 2, 3):
        frontend.predict(ident, msg_id, [[msg_id, 1]])
    frontend.pump(marker.exists)
    proc.send_signal(signal.SIGTERM)
    frontend.expect(MsgType.DRAINING)
    _, result = frontend.expect(MsgType.RESULT)
    assert result["id"] == 1  # the batch in hand finishes; 2 and 3 are abandoned (re-queued by the frontend)
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
