"""Overload gets a fast 503 with Retry-After instead of unbounded queues; a graceful stop finishes in-flight
queries, refuses new ones with 503 and stops replicas cleanly."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

from clipper_core.testing import ServerThread
from tests import models
from tests.conftest import Deploy, SlowQueryInFlight


def test_predicted_wait_beyond_the_slo_is_refused_with_retry_after(clipper_server: ServerThread,
                                                                   deploy: Deploy) -> None:
    deploy.app("tight", slo_micros=1_000_000)
    deploy("slow", 1, models.slow_one_at_a_time, app="tight", batch_size=1)
    assert clipper_server.predict("tight", {"input": [0.0]})[1]["output"] == "ok"  # teaches it 0.2 s per input
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda i: clipper_server.predict("tight", {"input": [float(i + 1)]}), range(20)))
    refused = [body for status, body in results if status == 503]
    served = [body for status, body in results if status == 200]
    assert refused and served
    assert all("is overloaded" in body["cause"] and "SLO" in body["cause"] for body in refused)
    assert sum(1 for body in served if not body["default"]) >= 3


def test_a_full_queue_is_refused(tmp_path: Path) -> None:
    with ServerThread(tmp_path / "home", max_queue_length=3) as server:
        deploy = Deploy(server, tmp_path)
        deploy.app("small", slo_micros=30_000_000)
        deploy("slow", 1, models.slow_one_at_a_time, app="small", batch_size=1)
        status, body = server.predict("small", {"input_batch": [[float(i)] for i in range(10)]})
        assert status == 503
        assert "queue is full" in body["cause"]
        assert server.predict("small", {"input": [1.0]})[0] == 200


def test_graceful_stop_finishes_in_flight_queries_and_refuses_new_ones(tmp_path: Path) -> None:
    server = ServerThread(tmp_path / "home").start()
    try:
        stopping = SlowQueryInFlight(server, tmp_path)
        slots = server.call(lambda: list(server.server.ctx.supervisor._slots[("slow", "1")]))
        results = stopping.results
        stopping.begin()
        status, body = server.predict("slowapp", {"input": [2.0]})
        assert status == 503 and "shutting down" in body["cause"]  # type: ignore[index]
        stopping.finish()
        assert results[0][0] == 200 and results[0][1]["output"] == "slow"  # type: ignore[index]
        assert [slot.process.returncode for slot in slots] == [0]  # SIGTERM → GOODBYE → exit 0
    finally:
        server.stop()
