"""Server health as probes read it: liveness while the process serves; readiness (``/health``,
``/v2/health/ready``) false with a reason while the server drains or its state store is unreachable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clipper_core.testing import RedisServer, ServerThread, http_json, wait_until
from tests.conftest import SlowQueryInFlight


def probes(server: ServerThread) -> dict[str, tuple[int, Any]]:
    return {path: http_json(f"{server.query_url}{path}") for path in ("/health", "/v2/health/ready",
                                                                       "/v2/health/live")}


def test_a_serving_server_is_live_and_ready(clipper_server: ServerThread) -> None:
    answers = probes(clipper_server)
    assert answers["/health"] == (200, {"status": "ok", "apps": 0, "replicas": 0})
    assert answers["/v2/health/ready"] == (200, {"ready": True})
    assert answers["/v2/health/live"] == (200, {"live": True})


def test_a_draining_server_is_live_but_not_ready(tmp_path: Path) -> None:
    server = ServerThread(tmp_path / "home").start()
    try:
        stopping = SlowQueryInFlight(server, tmp_path)
        stopping.begin()
        answers = probes(server)  # the slow query (0.5 s) is still in flight: the server still answers
        assert answers["/health"][0] == 503
        assert answers["/health"][1]["error"] == "Not ready"
        assert "draining" in answers["/health"][1]["cause"]
        assert answers["/v2/health/ready"][0] == 503
        assert answers["/v2/health/ready"][1]["ready"] is False
        assert "draining" in answers["/v2/health/ready"][1]["reason"]
        assert answers["/v2/health/live"] == (200, {"live": True})
        stopping.finish()
        assert stopping.results[0][0] == 200
    finally:
        server.stop()


def test_readiness_follows_the_state_store(tmp_path: Path, redis_server: RedisServer) -> None:
    with ServerThread(tmp_path / "home", state_store=redis_server.url, manage_replicas=False) as server:
        assert probes(server)["/health"][0] == 200
        redis_server.stop()
        answers = probes(server)
        assert answers["/health"][0] == 503
        assert "state store is unreachable" in answers["/health"][1]["cause"]
        assert answers["/v2/health/ready"][0] == 503
        assert "state store is unreachable" in answers["/v2/health/ready"][1]["reason"]
        assert answers["/v2/health/live"] == (200, {"live": True})
        redis_server.start()
        wait_until(lambda: probes(server)["/health"][0] == 200, 20, interval=0.2, what="ready again")
        assert probes(server)["/v2/health/ready"] == (200, {"ready": True})
