"""Rollouts with real replicas (the embedded server, local processes, the controller on a 0.1 s tick): a candidate
failing on a fifth of its inputs is rolled back in its first step with the guard named; a good one is promoted
after its steps, each user staying on one version within a step; shadow answers are those of serving without the
shadow, and a shadow candidate sleeping 1 s adds nothing measurable to the served latency; a management server
restarted mid-rollout resumes it."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from clipper_core import ClipperConnection, LocalContainerManager
from clipper_core.deployers import python as python_deployer
from clipper_core.testing import ServerThread, http_json, wait_until

pytestmark = pytest.mark.timeout(300)


def _tagged(tag: str, fail_every: int = 0, sleep_s: float = 0.0) -> Callable[[Any], list[Any]]:
    """A model answering ``"<tag>:<sum>"``; every ``fail_every``-th input (by its first value) fails."""

    def model(xs: Any) -> list[Any]:
        if sleep_s:
            time.sleep(sleep_s)
        return [ValueError(f"{tag} cannot take {x[0]}") if fail_every and int(x[0]) % fail_every == 0
                else f"{tag}:{float(sum(x))}" for x in xs]

    return model


def _start(home: Path) -> ServerThread:
    return ServerThread(home, rollout_interval=0.1)


def _conn(home: Path) -> ClipperConnection:
    conn = ClipperConnection(LocalContainerManager(clipper_home=str(home)))
    conn.connect()
    return conn


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[ClipperConnection]:
    with _start(tmp_path):
        yield _conn(tmp_path)


def _deploy(conn: ClipperConnection, candidate: Callable[[Any], list[Any]], slo_micros: int = 2_000_000) -> str:
    conn.register_application("shop", "doubles", "-1.0", slo_micros)
    python_deployer.deploy_python_closure(conn, "ranker", 1, "doubles", _tagged("v1"))
    conn.link_model_to_app("shop", "ranker")
    python_deployer.deploy_python_closure(conn, "ranker", 2, "doubles", candidate, make_current=False)
    url = f"http://{conn.get_query_addr()}/shop/predict"
    wait_until(lambda: http_json(url, {"input": [0.5]})[1].get("default") is False, 30, what="v1 answering")
    wait_until(lambda: any(r["model_version"] == "2" for r in conn.get_all_model_replicas(verbose=True)), 30,
               what="v2's replica connected")
    assert conn.get_current_model_version("ranker") == "1"
    return url


class Queries:
    """Queries in turn from users 1..``users``, every input different (the cache answers none). The number of
    users is prime, so a user's inputs (``i`` with ``i % users`` fixed) fail as often as anybody's under
    ``_tagged(fail_every=5)``: which users the split gives the candidate does not change its error rate."""

    def __init__(self, url: str, users: int = 97) -> None:
        self.url = url
        self.users = users
        self.counter = itertools.count(1)
        self.answers: list[tuple[int, float, Any]] = []

    def send(self, n: int) -> list[tuple[int, float, Any]]:
        sent = []
        for _ in range(n):
            i = next(self.counter)
            uid = 1 + i % self.users
            status, answer = http_json(self.url, {"input": [float(i), 0.5], "uid": uid}, timeout=10)
            assert status == 200, answer
            sent.append((uid, float(i), answer))
        self.answers += sent
        return sent

    def until(self, conn: ClipperConnection, state: str, seconds: float = 60.0) -> dict[str, Any]:
        """Query until the rollout is in ``state`` (for at most ``seconds``); the rollout then."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.send(10)
            rollout = conn.get_rollout("ranker")
            if rollout["state"] == state:
                return rollout
        raise AssertionError(f"not {state} after {seconds} s: {rollout['state']}, {rollout['reason']}")


def _version(answer: dict[str, Any]) -> str:
    output = answer["output"]
    return output.split(":")[0] if isinstance(output, str) and ":" in output else "default"


def test_a_candidate_failing_on_a_fifth_of_its_inputs_is_rolled_back_in_its_first_step(
        conn: ClipperConnection) -> None:
    url = _deploy(conn, _tagged("v2", fail_every=5))
    started = conn.start_rollout("ranker", 2, steps=[25, 100], step_seconds=60, min_queries_per_step=30,
                                 max_error_rate=0.05)
    assert started["state"] == "running" and started["weights"] == {"2": 0.25, "1": 0.75}
    queries = Queries(url)
    rollout = queries.until(conn, "rolled_back")
    assert "max_error_rate" in rollout["reason"] and "in step 1 (25%)" in rollout["reason"], rollout["reason"]
    assert rollout["figures"]["candidate"]["error_rate"] > 0.05
    assert conn.get_current_model_version("ranker") == "1"
    after = queries.send(40)  # every user back on the current version
    assert {_version(a) for _, _, a in after} == {"v1"}


def test_users_stay_on_one_version_within_a_step(conn: ClipperConnection) -> None:
    url = _deploy(conn, _tagged("v2"))
    conn.start_rollout("ranker", 2, steps=[30, 100], step_seconds=3600, min_queries_per_step=20)
    by_user: dict[int, set[str]] = {}
    for uid, _, answer in Queries(url, users=31).send(5 * 31):  # five queries from each of 31 users
        by_user.setdefault(uid, set()).add(_version(answer))
    assert len(by_user) == 31 and all(len(versions) == 1 for versions in by_user.values()), by_user
    on_candidate = sum(versions == {"v2"} for versions in by_user.values())
    assert 2 <= on_candidate <= 20, on_candidate  # about 30% of the users
    assert conn.get_rollout("ranker")["step"] == 0
    conn.abort_rollout("ranker")


def test_a_good_candidate_is_promoted_after_its_steps(conn: ClipperConnection) -> None:
    url = _deploy(conn, _tagged("v2"))
    conn.start_rollout("ranker", 2, steps=[30, 100], step_seconds=1.0, min_queries_per_step=20)
    queries = Queries(url)
    rollout = queries.until(conn, "promoted")
    assert [e["event"] for e in rollout["history"]] == ["start", "advance", "promote"], rollout["history"]
    assert conn.get_current_model_version("ranker") == "2"
    assert {_version(a) for _, _, a in queries.send(20)} == {"v2"}
    metrics = conn.inspect_instance()
    assert any(key.startswith("clipper_rollout_queries") for key in metrics), sorted(metrics)[:30]


def test_shadow_answers_are_those_without_the_shadow_and_disagreements_are_counted(
        conn: ClipperConnection) -> None:
    url = _deploy(conn, _tagged("v2"))
    inputs = [[float(i), 0.25] for i in range(1, 31)]
    without = [http_json(url, {"input": x, "uid": 7})[1]["output"] for x in inputs]
    conn.start_rollout("ranker", 2, mode="shadow", step_seconds=3600, min_queries_per_step=10)
    with_shadow = [http_json(url, {"input": x, "uid": 7})[1]["output"] for x in inputs]
    assert with_shadow == without and all(o.startswith("v1:") for o in without)
    wait_until(lambda: (_candidate(conn).get("compared") or 0) >= 25, 20, what="the shadow's outputs compared")
    figures = _candidate(conn)
    assert figures["agreement"] == 0.0 and figures["errors"] == 0, figures  # "v2:..." never equals "v1:..."
    assert conn.get_rollout("ranker")["state"] == "running"  # no min_agreement guard: it runs on


def _candidate(conn: ClipperConnection) -> dict[str, Any]:
    """The candidate's figures in the controller's last look (none before its first)."""
    return dict(conn.get_rollout("ranker")["figures"].get("candidate") or {})


def _p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def test_a_slow_shadow_candidate_adds_nothing_measurable_to_the_served_latency(conn: ClipperConnection) -> None:
    url = _deploy(conn, _tagged("v2", sleep_s=1.0), slo_micros=500_000)

    def served(n: int, offset: int) -> list[float]:
        latencies = []
        for i in range(n):
            begin = time.perf_counter()
            status, answer = http_json(url, {"input": [float(offset + i), 1.0], "uid": 1 + i % 10})
            latencies.append(time.perf_counter() - begin)
            assert status == 200 and answer["output"].startswith("v1:"), answer
        return latencies

    before = served(150, 0)
    conn.start_rollout("ranker", 2, mode="shadow", step_seconds=3600)
    during = served(150, 1000)
    wait_until(lambda: _candidate(conn).get("queries", 0) + _candidate(conn).get("dropped", 0) > 0, 20,
               what="the shadow mirrored to")
    # A candidate that delayed answers would add its 1 s; 50 ms leaves room for the machine's noise.
    assert _p99(during) < _p99(before) + 0.05, (_p99(before), _p99(during))


def test_a_management_server_restarted_mid_rollout_resumes_it(tmp_path: Path) -> None:
    with _start(tmp_path):
        conn = _conn(tmp_path)
        url = _deploy(conn, _tagged("v2"))
        conn.start_rollout("ranker", 2, steps=[50, 100], step_seconds=1.0, min_queries_per_step=15)
        load = Queries(url)
        wait_until(lambda: conn.get_rollout("ranker")["step"] == 1 or load.send(10) == [], 30,
                   what="the rollout in its second step")
        before = conn.get_rollout("ranker")
        assert before["state"] == "running" and before["step"] == 1
    with _start(tmp_path):  # the same home: the store, the registrations and the rollout record
        conn = _conn(tmp_path)
        resumed = conn.get_rollout("ranker")
        assert resumed["state"] == "running" and resumed["started_at"] == before["started_at"]
        assert (resumed["step"], resumed["step_id"]) == (before["step"], before["step_id"])  # where it was
        url = f"http://{conn.get_query_addr()}/shop/predict"
        wait_until(lambda: {r["model_version"] for r in conn.get_all_model_replicas(verbose=True)} == {"1", "2"},
                   60, what="both versions' replicas back after the restart")
        queries = Queries(url)
        queries.until(conn, "promoted")
        assert conn.get_current_model_version("ranker") == "2"
