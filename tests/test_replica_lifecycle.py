"""Replica supervision and liveness with real processes: restart after a crash, a long batch is not death."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from clipper_core.serving.prediction import SLO_MISSED
from clipper_core.testing import ServerThread, wait_until
from tests import models
from tests.conftest import Deploy


def replica_ids(server: ServerThread, name: str, version: str) -> set[int]:
    def ids() -> set[int]:
        mr = server.server.ctx.query_path.models.get((name, version))
        return {r.replica_id for r in mr.replicas.values()} if mr else set()

    return server.call(ids)


def test_crashed_replica_is_restarted_and_serves_again(clipper_server: ServerThread, deploy: Deploy,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="clipper_core.server.local_replicas")
    deploy.app("fragile", slo_micros=1_000_000)
    deploy("crashy", 1, models.crash_on_negative, app="fragile")
    assert clipper_server.predict("fragile", {"input": [1.0]})[1]["output"] == 1.0
    assert replica_ids(clipper_server, "crashy", "1") == {0}
    status, answer = clipper_server.predict("fragile", {"input": [-1.0]})
    assert status == 200 and answer["default"] is True and answer["default_explanation"] == SLO_MISSED
    # The supervisor restarts the process; the frontend drops the dead replica (~3 s) and welcomes the new one.
    wait_until(lambda: replica_ids(clipper_server, "crashy", "1") == {1}, 15, what="replica 1 replacing replica 0")
    answer = clipper_server.predict("fragile", {"input": [3.0]})[1]
    assert (answer["output"], answer["default"]) == (3.0, False)
    assert clipper_server.server.ctx.supervisor.running("crashy", "1") == 1
    assert any("exited with 17" in r.getMessage() and "restarting in" in r.getMessage() for r in caplog.records)
    [slot] = [s for s in clipper_server.call(clipper_server.server.ctx.supervisor.slots) if s["model"] == "crashy"]
    assert (slot["slot"], slot["state"], slot["restarts"]) == (0, "running", 1)
    assert slot["pid"] > 0 and slot["uptime_s"] >= 0 and slot["log"].endswith("crashy_1_0.log")


def test_a_batch_longer_than_the_liveness_timeout_is_not_death(clipper_server: ServerThread,
                                                               deploy: Deploy) -> None:
    deploy.app("patient", slo_micros=10_000_000)
    deploy("long", 1, models.four_second_model, app="patient")
    status, answer = clipper_server.predict("patient", {"input": [1.0]})
    assert (status, answer["output"], answer["default"]) == (200, "done", False)
    assert replica_ids(clipper_server, "long", "1") == {0}  # never dropped and re-welcomed


def test_kill_9_mid_batch_requeues_to_the_other_replica(clipper_server: ServerThread, deploy: Deploy) -> None:
    import os
    import signal
    import threading
    import time

    deploy.app("sturdy", slo_micros=10_000_000)
    deploy("slowpoke", 1, models.slow_model, app="sturdy", replicas=2)
    query_path = clipper_server.server.ctx.query_path

    def busy_replica_pid() -> int | None:
        mr = query_path.models[("slowpoke", "1")]
        busy = [r for r in mr.replicas.values() if r.pending]
        return int(busy[0].info["pid"]) if busy else None

    results: list[tuple[int, object]] = []
    query = threading.Thread(target=lambda: results.append(clipper_server.predict("sturdy", {"input": [9.0]})))
    started = time.monotonic()
    query.start()
    wait_until(lambda: clipper_server.call(busy_replica_pid) is not None, 5, what="a batch in flight")
    victim = clipper_server.call(busy_replica_pid)
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    query.join(15)
    status, answer = results[0]
    assert status == 200 and answer["output"] == "slow" and answer["default"] is False  # type: ignore[index]
    # noticed within ~3 s (3 heartbeats + 1.5 s), re-queued, answered by the survivor in 0.5 s more
    assert time.monotonic() - started < 6


def test_sigterm_drains_a_replica_it_answers_what_it_holds_and_gets_nothing_new(
        clipper_server: ServerThread, deploy: Deploy, caplog: pytest.LogCaptureFixture) -> None:
    import os
    import signal
    import threading

    caplog.set_level(logging.INFO, logger="clipper_core")
    deploy.app("drained", slo_micros=10_000_000)
    deploy("slowpoke", 1, models.slow_model, app="drained", replicas=2)
    query_path = clipper_server.server.ctx.query_path
    rpc = clipper_server.server.rpc
    assert rpc is not None

    def busy() -> tuple[int, bytes] | None:
        mr = query_path.models[("slowpoke", "1")]
        held = [r for r in mr.replicas.values() if r.pending]
        return (int(held[0].info["pid"]), held[0].identity) if held else None

    results: list[tuple[int, object]] = []
    first = threading.Thread(target=lambda: results.append(clipper_server.predict("drained", {"input": [1.0]})))
    first.start()
    wait_until(lambda: clipper_server.call(busy) is not None, 5, what="a batch in flight")
    found = clipper_server.call(busy)
    assert found is not None
    pid, identity = found
    os.kill(pid, signal.SIGTERM)
    # DRAINING: no longer dispatched to, still connected (its batch's RESULT is to come)
    wait_until(lambda: clipper_server.call(lambda: identity not in query_path.models[("slowpoke", "1")].replicas),
               5, what="the replica draining")
    assert clipper_server.call(lambda: identity in rpc.replicas and rpc.replicas[identity].pending)
    second = clipper_server.predict("drained", {"input": [2.0]})  # served by the other replica meanwhile
    first.join(15)
    assert results and results[0][0] == 200 and results[0][1]["default"] is False  # type: ignore[index]
    assert second[0] == 200 and second[1]["default"] is False, second
    wait_until(lambda: clipper_server.call(lambda: identity not in rpc.replicas), 10, what="the replica's GOODBYE")
    # answered by the replica that held it, not re-queued to the other after GOODBYE
    assert not [r for r in caplog.records if "re-queued" in r.getMessage()], caplog.text[-2000:]


def test_a_stuck_replica_is_restarted_when_configured(tmp_path: Path) -> None:
    with ServerThread(tmp_path / "home", stuck_batch_seconds=1.0) as server:
        deploy = Deploy(server, tmp_path)
        deploy.app("hangs", slo_micros=500_000)
        deploy("hanger", 1, models.hang_on_negative, app="hangs")
        answer = server.predict("hangs", {"input": [-1.0]})[1]
        assert answer["default"] is True and answer["default_explanation"] == SLO_MISSED
        wait_until(lambda: replica_ids(server, "hanger", "1") == {1}, 15, what="the stuck replica replaced")
        answer = server.predict("hangs", {"input": [2.0]})[1]
        assert (answer["output"], answer["default"]) == (2.0, False)


def test_a_model_pickled_under_another_cloudpickle_is_refused_clearly(clipper_server: ServerThread,
                                                                       deploy: Deploy,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    import json

    caplog.set_level(logging.ERROR, logger="clipper_core.server.local_replicas")
    deploy.app("old", slo_micros=500_000)
    model_dir = deploy("oldpickle", 1, models.feature_sum, app="old", replicas=0, wait=False)
    manifest_path = model_dir / "clipper_model.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["requirements"]["cloudpickle"] = "0.5.3"  # what Clipper's images pinned
    manifest_path.write_text(json.dumps(manifest))
    deploy.admin("set_num_replicas", {"model_name": "oldpickle", "model_version": "1", "num_replicas": 1})
    log = clipper_server.config.logs_dir / "oldpickle_1_0.log"
    wait_until(lambda: any("not restarting" in r.getMessage() for r in caplog.records), 20,
               what="the supervisor to give up on the incompatible replica")
    text = log.read_text()
    assert "cloudpickle 0.5.3" in text and "redeploy" in text.lower()
    [slot] = [s for s in clipper_server.call(clipper_server.server.ctx.supervisor.slots) if s["model"] == "oldpickle"]
    assert (slot["state"], slot["pid"], slot["uptime_s"]) == ("failed", None, None)
    answer = clipper_server.predict("old", {"input": [1.0]})[1]
    assert answer["default"] is True
