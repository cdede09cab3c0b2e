"""Autoscaling with real processes: the embedded server's autoscaler sizes a sleep-based model under load (up
while the queue target is exceeded, back to the minimum once the load is gone, no query answered by default
meanwhile, downscales included), scales an idle version to zero, and the first query after that starts a replica:
answered when the SLO leaves time for it, else the default with the explanation "scaling model 'm' from zero"."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clipper_core import ClipperConnection, LocalContainerManager
from clipper_core.deployers import python as python_deployer
from clipper_core.testing import ServerThread, http_json, wait_until

pytestmark = pytest.mark.timeout(300)


def _slow() -> Any:
    def slow(xs: Any) -> list[str]:
        time.sleep(0.02 * len(xs))  # 50 inputs/s per replica, however they are batched
        return [str(sum(x)) for x in xs]

    return slow


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[ClipperConnection]:
    with ServerThread(tmp_path, autoscale_interval=0.1):
        connection = ClipperConnection(LocalContainerManager(clipper_home=str(tmp_path)))
        connection.connect()
        yield connection


class Load:
    """``clients`` threads posting to ``app`` in a closed loop until stopped (each bounded by ``limit`` s)."""

    def __init__(self, conn: ClipperConnection, app: str, clients: int, limit: float = 60.0,
                 pause: float = 0.0) -> None:
        self.pause = pause
        self.url = f"http://{conn.get_query_addr()}/{app}/predict"
        self.answers: list[tuple[int, Any]] = []
        self.counter = itertools.count()
        self.stop = threading.Event()
        self.deadline = time.monotonic() + limit
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            # inputs all differ: none is answered from the prediction cache
            self.answers.append(http_json(self.url, {"input": [1.0, next(self.counter)]}, timeout=10))
            if self.pause:
                self.stop.wait(self.pause)

    def end(self) -> list[tuple[int, Any]]:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)
        return self.answers


def _wait_for_answers(conn: ClipperConnection, app: str) -> None:
    """The link reaches the query path through the store a moment after link_model_to_app returns."""
    url = f"http://{conn.get_query_addr()}/{app}/predict"
    wait_until(lambda: http_json(url, {"input": [0.5]})[1].get("default") is False, 30, what=f"{app} answering")


def _defaults(answers: list[tuple[int, Any]]) -> list[Any]:
    return [a for status, a in answers if status != 200 or a.get("default")]


def test_load_adds_replicas_until_the_target_holds_and_they_go_back_without_defaults(
        conn: ClipperConnection) -> None:
    conn.register_application("auto", "doubles", "-1.0", 5_000_000)
    python_deployer.deploy_python_closure(conn, "slow", 1, "doubles", _slow(), num_replicas=1)
    conn.link_model_to_app("auto", "slow")
    settings = conn.set_autoscaling("slow", min_replicas=1, max_replicas=3, target_inflight_per_replica=2,
                                    upscale_delay_s=0.5, downscale_delay_s=2.0, smoothing_window_s=1.0)
    assert settings is not None and settings["max_replicas"] == 3
    _wait_for_answers(conn, "auto")
    load = Load(conn, "auto", clients=8)
    try:
        wait_until(lambda: conn.get_num_replicas("slow") == 3, 60, interval=0.2, what="3 replicas under load")
        status = conn.get_autoscaling("slow")["status"]
        assert status["desired"] == 3 and "replicas" in status["reason"], status
    finally:
        answers = load.end()
    assert answers and not _defaults(answers), _defaults(answers)[:3]
    # A light load (~8 inputs/s, a sixth of one replica) while replicas are removed: every query is still
    # answered by the model.
    light = Load(conn, "auto", clients=1, pause=0.1)
    try:
        wait_until(lambda: conn.get_num_replicas("slow") == 1, 60, interval=0.2, what="back to 1 replica")
    finally:
        answers = light.end()
    assert answers and not _defaults(answers), _defaults(answers)[:3]
    metrics = conn.inspect_instance()
    assert any(key.startswith("clipper_autoscaler_changes") for key in metrics), sorted(metrics)[:20]


def test_an_idle_version_scales_to_zero_and_the_first_query_starts_a_replica(conn: ClipperConnection) -> None:
    conn.register_application("patient", "doubles", "-1.0", 20_000_000)
    conn.register_application("hurried", "doubles", "-1.0", 50_000)
    python_deployer.deploy_python_closure(conn, "cold", 1, "doubles", _slow(), num_replicas=1)
    conn.link_model_to_app("patient", "cold")
    conn.link_model_to_app("hurried", "cold")
    conn.set_autoscaling("cold", min_replicas=0, max_replicas=2, upscale_delay_s=5, downscale_delay_s=1.0,
                         smoothing_window_s=0.5)
    wait_until(lambda: conn.get_num_replicas("cold") == 0 and not conn.get_all_model_replicas(), 30, interval=0.2,
               what="the idle version at 0 replicas, none connected")
    # 50 ms cannot start a process: the default, saying why
    status, answer = http_json(f"http://{conn.get_query_addr()}/hurried/predict", {"input": [1.0]})
    assert status == 200 and answer["default"] is True, answer
    assert answer["default_explanation"] == "scaling model 'cold' from zero", answer
    # 20 s can: the query waits for the replica its arrival started
    status, answer = http_json(f"http://{conn.get_query_addr()}/patient/predict", {"input": [1.0, 2.0]}, timeout=30)
    assert status == 200 and answer["default"] is False and answer["output"] == 3.0, answer
    assert conn.get_num_replicas("cold") == 1


def test_stopping_an_autoscaled_model_turns_its_autoscaling_off_first(conn: ClipperConnection) -> None:
    python_deployer.deploy_python_closure(conn, "brief", 1, "doubles", _slow(), num_replicas=1)
    conn.set_autoscaling("brief", min_replicas=1, max_replicas=2)
    conn.stop_models(["brief"])
    assert conn.get_all_models() == []
    wait_until(lambda: not conn.get_all_model_replicas(), 30, interval=0.2, what="no replica left")
