"""The rollout endpoints (/admin/start_rollout, get_rollout, get_rollouts, pause_rollout, resume_rollout,
abort_rollout, promote_rollout), ``/admin/add_model``'s ``make_current`` and the ``ClipperConnection`` methods
over them, against a real server (ServerThread; its rollout controller judges every 0.05 s). The versions are
Python closures deployed with ``deploy_python_closure`` (the candidates with ``make_current=False``), one replica
each; queries to a candidate that fails every input roll it back for real. Every answer is checked against the
OpenAPI document's Rollout schema, every refusal is a JSON 4xx naming what was wrong."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator

from clipper_core import ClipperConnection, LocalContainerManager
from clipper_core.deployers.python import deploy_python_closure
from clipper_core.errors import ClipperException
from clipper_core.management.openapi import admin_openapi
from clipper_core.testing import ServerThread, http_json, wait_until
from tests import models
from tests.management.admin_calls import ok, refused, resolved

_names = itertools.count(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    with ServerThread(tmp_path_factory.mktemp("rollouts"), rollout_interval=0.05) as server:
        yield server


@pytest.fixture(scope="module")
def conn(server: ServerThread) -> ClipperConnection:
    connection = ClipperConnection(LocalContainerManager(clipper_home=str(server.config.home)))
    connection.connect()
    return connection




def register(server: ServerThread, name: str, version: str, make_current: bool | None = None) -> None:
    body: dict[str, Any] = {"model_name": name, "model_version": version, "input_type": "doubles",
                            "batch_size": -1}
    if make_current is not None:
        body["make_current"] = make_current
    assert ok(server, "add_model", body) == f"Successfully added model with name '{name}' and input type 'doubles'"


def fresh(prefix: str = "m") -> str:
    return f"{prefix}{next(_names)}"


def model(server: ServerThread, conn: ClipperConnection, candidates: int = 1, candidate: Any = None,
          prefix: str = "m") -> str:
    """A fresh model: version 1 deployed (current, answering 1), then ``candidates`` more (2, 3...; answering 2,
    or with ``candidate``) deployed with make_current=False; each with one connected replica."""
    name = fresh(prefix)
    deploy_python_closure(conn, name, 1, "doubles", models.version_one)
    for version in range(2, 2 + candidates):
        deploy_python_closure(conn, name, version, "doubles", candidate or models.version_two, make_current=False)
    for version in range(1, 2 + candidates):
        server.wait_replicas(name, str(version), 1)
    return name


def current(server: ServerThread, name: str) -> list[str]:
    return [m["model_version"] for m in ok(server, "get_all_models", {"verbose": True})
            if m["model_name"] == name and m["is_current_version"]]


# -- the OpenAPI document's Rollout schema, checked against every answer -------------------------------

DOC = admin_openapi()
ROLLOUT = OAS30Validator(resolved(DOC["components"]["schemas"]["Rollout"], DOC))


def documented(view: Any) -> dict[str, Any]:
    """``view``, once it is checked to be what the OpenAPI document says a rollout is."""
    ROLLOUT.validate(view)  # the required keys included
    return dict(view)


def test_every_rollout_endpoint_is_documented_with_its_request_and_answer() -> None:
    for endpoint in ("start_rollout", "get_rollout", "get_rollouts", "pause_rollout", "resume_rollout",
                     "abort_rollout", "promote_rollout"):
        post = DOC["paths"][f"/admin/{endpoint}"]["post"]
        assert post["requestBody"]["content"]["application/json"]["schema"]["type"] == "object"
        schema = post["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema == ({"type": "array", "items": {"$ref": "#/components/schemas/Rollout"}}
                          if endpoint == "get_rollouts" else {"$ref": "#/components/schemas/Rollout"}), endpoint
        assert "400" in post["responses"], endpoint
    start = DOC["paths"]["/admin/start_rollout"]["post"]["requestBody"]["content"]["application/json"]
    assert set(start["schema"]["properties"]) == {
        "model_name", "version", "mode", "steps", "step_seconds", "min_queries_per_step", "max_error_rate",
        "max_p99_ms", "max_default_rate", "min_feedback_reward", "min_feedback", "reward", "min_agreement",
        "agreement_tolerance"}
    assert start["schema"]["additionalProperties"] is False and start["schema"]["required"] == ["model_name",
                                                                                               "version"]


# -- add_model's make_current -----------------------------------------------------------------------------

def test_add_model_with_make_current_false_keeps_the_current_version(server: ServerThread) -> None:
    name = fresh()
    register(server, name, "1")
    register(server, name, "2", make_current=False)
    assert current(server, name) == ["1"]
    assert ok(server, "get_model", {"model_name": name, "model_version": "2"})["is_current_version"] is False
    register(server, name, "3", make_current=True)
    assert current(server, name) == ["3"]
    register(server, name, "4")  # Clipper's request: the new version becomes current
    assert current(server, name) == ["4"]
    refused(server, "add_model", {"model_name": name, "model_version": "5", "input_type": "doubles",
                                  "batch_size": -1, "make_current": "no"},
            400, "'make_current' is a string; expected a boolean")
    assert ok(server, "get_model", {"model_name": name, "model_version": "5"}) == {}


def test_a_first_version_registered_without_make_current_leaves_nothing_to_roll_out_against(
        server: ServerThread) -> None:
    name = fresh()
    register(server, name, "1", make_current=False)
    register(server, name, "2", make_current=False)
    assert current(server, name) == []
    refused(server, "start_rollout", {"model_name": name, "version": "2"}, 400,
            f"model '{name}' has no current version for the candidate to replace; make one current first")


# -- a canary through every operation ---------------------------------------------------------------------

def test_a_canary_is_started_read_paused_resumed_and_promoted(server: ServerThread, conn: ClipperConnection
                                                              ) -> None:
    name = model(server, conn)
    view = documented(ok(server, "start_rollout", {"model_name": name, "version": 2, "steps": [10, 50, 100],
                                                   "step_seconds": 30, "min_queries_per_step": 5,
                                                   "max_p99_ms": 80, "max_error_rate": None}))
    assert (view["model"], view["candidate"], view["baseline"], view["state"], view["step"], view["step_id"]) == (
        name, "2", "1", "running", 0, 1)
    assert view["weights"] == {"2": 0.1, "1": 0.9} and "mirrored" not in view
    assert view["settings"] == {"mode": "canary", "steps": [10, 50, 100], "step_seconds": 30,
                                "min_queries_per_step": 5, "max_error_rate": None, "max_p99_ms": 80,
                                "max_default_rate": 0.05, "min_feedback_reward": None, "min_feedback": 20,
                                "reward": "match", "min_agreement": None, "agreement_tolerance": 1e-6}
    assert view["reason"] == f"started: 2 takes 10% of the queries of {name} (current: 1)"
    assert view["ended_at"] is None and view["figures"] == {}
    assert [e["event"] for e in view["history"]] == ["start"]
    assert view["started_at"] == view["step_started_at"] == view["history"][0]["at"]
    assert current(server, name) == ["1"]  # a canary leaves the current version as it is

    def judged() -> dict[str, Any]:
        return documented(ok(server, "get_rollout", {"model_name": name}))

    wait_until(lambda: "judged_at" in judged(), 10, what="the controller's first look")
    live = judged()
    assert live["reason"].startswith("step 1 of 3 (10%): ") and live["reason"].endswith(" of 30 s, 0 queries")
    assert live["figures"]["candidate"]["queries"] == 0 and live["figures"]["baseline"]["queries"] == 0
    assert live["figures"]["candidate"]["p99_ms"] is None
    assert name in [r["model"] for r in map(documented, ok(server, "get_rollouts", {}))]

    paused = documented(ok(server, "pause_rollout", {"model_name": name}))
    assert paused["state"] == "paused" and paused["weights"] == {"2": 0.1, "1": 0.9}
    assert paused["history"][-1]["event"] == "pause"
    assert paused["history"][-1]["reason"] == "paused by an operator at step 1"
    refused(server, "pause_rollout", {"model_name": name}, 400, f"the rollout of model '{name}' is paused already")
    wait_until(lambda: judged()["reason"] == "paused at step 1 of 3 (10%)", 10, what="the controller to hold it")

    resumed = documented(ok(server, "resume_rollout", {"model_name": name}))
    assert (resumed["state"], resumed["step_id"]) == ("running", 2)
    assert resumed["reason"] == "resumed by an operator: step 1 starts over"
    assert resumed["step_started_at"] > view["step_started_at"]
    refused(server, "resume_rollout", {"model_name": name}, 400,
            f"the rollout of model '{name}' is not paused (running)")

    promoted = documented(ok(server, "promote_rollout", {"model_name": name}))
    assert promoted["state"] == "promoted" and promoted["weights"] == {"2": 1.0, "1": 0.0}
    assert promoted["reason"] == "promoted by an operator at step 1: 2 is the current version"
    assert promoted["ended_at"] is not None
    assert [e["event"] for e in promoted["history"]] == ["start", "pause", "resume", "promote"]
    assert current(server, name) == ["2"]

    # an ended rollout stays readable, and nothing more can be done to it
    assert documented(ok(server, "get_rollout", {"model_name": name}))["state"] == "promoted"
    for change in ("pause", "resume", "abort", "promote"):
        refused(server, f"{change}_rollout", {"model_name": name}, 400,
                f"the rollout of model '{name}' has ended (promoted: promoted by an operator at step 1: 2 is the "
                f"current version); there is nothing to {change}")

    # the next rollout may start: version 1 is now the candidate against 2
    again = documented(ok(server, "start_rollout", {"model_name": name, "version": "1"}))
    assert (again["candidate"], again["baseline"], again["settings"]["steps"]) == ("1", "2", [5, 25, 50, 100])
    aborted = documented(ok(server, "abort_rollout", {"model_name": name}))
    assert aborted["state"] == "aborted" and aborted["weights"] == {"1": 0.0, "2": 1.0}
    assert aborted["reason"] == "aborted by an operator at step 1; 2 keeps every query"
    assert current(server, name) == ["2"]


def app_of(server: ServerThread, name: str) -> str:
    """An app answering with ``name``'s versions."""
    app = f"{name}-app"
    ok(server, "add_app", {"name": app, "input_type": "doubles", "default_output": "-1",
                           "latency_slo_micros": 2_000_000})
    ok(server, "add_model_links", {"app_name": app, "model_names": [name]})
    return app


def test_a_shadow_rollout_mirrors_and_is_rolled_back_when_the_candidate_disagrees(server: ServerThread,
                                                                                  conn: ClipperConnection) -> None:
    name = model(server, conn)  # version 1 answers 1, version 2 answers 2
    view = documented(ok(server, "start_rollout", {"model_name": name, "version": "2", "mode": "shadow",
                                                   "min_agreement": 0.99, "agreement_tolerance": 1e-4}))
    assert view["settings"]["mode"] == "shadow" and view["settings"]["steps"] == [100.0]
    assert (view["settings"]["min_agreement"], view["settings"]["agreement_tolerance"]) == (0.99, 1e-4)
    assert view["weights"] == {"2": 0.0, "1": 1.0} and view["mirrored"] == 1.0
    assert view["reason"] == f"started: 2 mirrored 100% of the queries of {name} (current: 1)"
    aborted = documented(ok(server, "abort_rollout", {"model_name": name}))
    assert aborted["state"] == "aborted" and aborted["mirrored"] == 0.0

    app = app_of(server, name)
    ok(server, "start_rollout", {"model_name": name, "version": "2", "mode": "shadow", "min_agreement": 0.9,
                                 "min_queries_per_step": 5})
    for uid in range(1, 21):  # the current version answers every query; the candidate's outputs differ
        status, answer = server.predict(app, {"input": [float(uid)], "uid": uid})
        assert (status, answer["output"], answer["default"]) == (200, 1, False), answer
    wait_until(lambda: ok(server, "get_rollout", {"model_name": name})["state"] != "running", 10,
               what="the rollback")
    view = documented(ok(server, "get_rollout", {"model_name": name}))
    candidate = view["figures"]["candidate"]
    assert view["state"] == "rolled_back" and candidate["agreement"] == 0.0 and candidate["compared"] >= 5, view
    assert view["reason"] == (f"rolled back: min_agreement: 0 of {candidate['compared']} outputs agree with the "
                              "current version's (0.0% < 90.0%) in step 1 (100%)")
    assert view["mirrored"] == 0.0 and current(server, name) == ["1"]


def test_a_candidate_that_fails_is_rolled_back_by_its_error_rate(server: ServerThread,
                                                               conn: ClipperConnection) -> None:
    name = model(server, conn, candidate=models.error_model)
    app = app_of(server, name)
    ok(server, "start_rollout", {"model_name": name, "version": "2", "steps": [50, 100],
                                 "min_queries_per_step": 5})
    outputs = [server.predict(app, {"input": [float(uid)], "uid": uid})[1]["output"] for uid in range(1, 41)]
    assert 1 in outputs and -1 in outputs  # the baseline's answers, and the default for the candidate's users
    wait_until(lambda: ok(server, "get_rollout", {"model_name": name})["state"] == "rolled_back", 10,
               what="the rollback")
    view = documented(ok(server, "get_rollout", {"model_name": name}))
    candidate, baseline = view["figures"]["candidate"], view["figures"]["baseline"]
    n = candidate["queries"]
    assert n >= 5 and candidate["errors"] == n and candidate["error_rate"] == 1.0 and candidate["p99_ms"] is None
    assert baseline["queries"] > 0 and baseline["errors"] == 0 and baseline["p99_ms"] is not None
    assert view["reason"] == (f"rolled back: max_error_rate: {n} of {n} queries failed (100.0% > 1.0%) in step 1 "
                              "(50%)")
    assert view["weights"] == {"2": 0.0, "1": 1.0} and view["ended_at"] is not None
    assert [e["event"] for e in view["history"]] == ["start", "rollback"]
    assert view["history"][-1]["figures"]["errors"] == n
    assert current(server, name) == ["1"]
    assert {server.predict(app, {"input": [0.5], "uid": uid})[1]["output"] for uid in range(1, 41)} == {1}
    refused(server, "pause_rollout", {"model_name": name}, 400,
            f"the rollout of model '{name}' has ended (rolled_back: rolled back: max_error_rate")


# -- refusals ---------------------------------------------------------------------------------------------

START_REFUSALS = [
    ("no model_name", {"version": "2"}, 400, "JSON object does not have required key: model_name"),
    ("no version", {}, 400, "JSON object does not have required key: version"),
    ("a boolean version", {"version": True}, 400, "'version' is a boolean; expected a string"),
    ("unknown model", {"model_name": "ghost-model"}, 400, "No model with name 'ghost-model' exists"),
    ("unknown version", {"version": "9"}, 404, "model with name '{name}' and version '9' does not exist"),
    ("the current version", {"version": 1}, 400,
     "version '1' is already the current version of model '{name}'; roll out a version that is not current "
     "(deploy it with make_current=False)"),
    ("decreasing steps", {"steps": [50, 10]}, 400, "'steps' is [50, 10]; expected increasing percentages"),
    ("no steps", {"steps": []}, 400, "'steps' is []; expected a non-empty list of percentages"),
    ("steps as text", {"steps": "5,25"}, 400, "'steps' is '5,25'; expected a non-empty list of percentages"),
    ("a zero step", {"steps": [0, 50]}, 400, "'steps' is 0; expected a number above 0 and at most 100"),
    ("a step beyond 100", {"steps": [50, 150]}, 400, "'steps' is 150; expected a number above 0 and at most 100"),
    ("an error rate beyond 1", {"max_error_rate": 2}, 400,
     "'max_error_rate' is 2; expected a number at least 0 and at most 1"),
    ("a negative default rate", {"max_default_rate": -0.1}, 400, "'max_default_rate' is -0.1; expected a number"),
    ("step seconds as text", {"step_seconds": "60"}, 400, "'step_seconds' is '60'; expected a number"),
    ("no queries per step", {"min_queries_per_step": 0}, 400,
     "'min_queries_per_step' is 0; expected 1 to 1000000000"),
    ("fractional queries", {"min_queries_per_step": 1.5}, 400,
     "'min_queries_per_step' is float; expected an integer"),
    ("a zero p99", {"max_p99_ms": 0}, 400, "'max_p99_ms' is 0; expected a number above 0"),
    ("an unknown mode", {"mode": "blue"}, 400, "'mode' is 'blue'; expected one of canary, shadow"),
    ("an unknown reward", {"reward": "rmse"}, 400,
     "'reward' is 'rmse'; expected one of match, abs_error, squared_error"),
    ("agreement in a canary", {"min_agreement": 0.9}, 400,
     "'min_agreement' is a shadow rollout's guard; expected mode 'shadow' or no 'min_agreement'"),
    ("an unknown key", {"stepz": [5]}, 400,
     "unknown key(s) 'stepz'; expected model_name, version and any of the rollout settings agreement_tolerance, "
     "max_default_rate, max_error_rate, max_p99_ms, min_agreement, min_feedback, min_feedback_reward, "
     "min_queries_per_step, mode, reward, step_seconds, steps"),
]


@pytest.fixture(scope="module")
def refusing(server: ServerThread, conn: ClipperConnection) -> str:
    """A model whose start_rollout requests below are all refused (version 1 current, 2 not current)."""
    return model(server, conn)


@pytest.mark.parametrize("case, change, status, cause", START_REFUSALS, ids=[c[0] for c in START_REFUSALS])
def test_start_rollout_refuses_what_is_wrong_saying_what_is_expected(server: ServerThread, refusing: str, case: str,
                                                                     change: dict[str, Any], status: int,
                                                                     cause: str) -> None:
    body = {"model_name": refusing, "version": "2", **change}
    if case == "no version":
        del body["version"]
    if case == "no model_name":
        del body["model_name"]
    refused(server, "start_rollout", body, status, cause.format(name=refusing))
    refused(server, "get_rollout", {"model_name": refusing}, 404,
            f"model '{refusing}' has no rollout; start one with start_rollout")


def test_a_second_active_rollout_of_a_model_is_refused_naming_the_active_one(server: ServerThread,
                                                                             conn: ClipperConnection) -> None:
    name = model(server, conn, candidates=2)
    ok(server, "start_rollout", {"model_name": name, "version": "2"})
    for version in ("3", "2"):
        refused(server, "start_rollout", {"model_name": name, "version": version}, 400,
                f"model '{name}' already has an active rollout (of version '2', running); abort or promote it "
                "first")
    ok(server, "pause_rollout", {"model_name": name})
    refused(server, "start_rollout", {"model_name": name, "version": "3"}, 400, "(of version '2', paused)")
    ok(server, "abort_rollout", {"model_name": name})
    assert documented(ok(server, "start_rollout", {"model_name": name, "version": "3"}))["candidate"] == "3"
    ok(server, "abort_rollout", {"model_name": name})


@pytest.mark.parametrize("endpoint", ["get_rollout", "pause_rollout", "resume_rollout", "abort_rollout",
                                      "promote_rollout"])
def test_the_model_endpoints_refuse_a_model_without_a_rollout_and_bad_bodies(server: ServerThread,
                                                                             endpoint: str) -> None:
    name = fresh()
    register(server, name, "1")
    register(server, name, "2", make_current=False)
    refused(server, endpoint, {"model_name": name}, 404, f"model '{name}' has no rollout; start one with "
                                                         "start_rollout")
    refused(server, endpoint, {"model_name": "never-registered"}, 404, "model 'never-registered' has no rollout")
    refused(server, endpoint, {}, 400, "JSON object does not have required key: model_name")
    refused(server, endpoint, {"model_name": 7}, 400, "'model_name' is a number; expected a string")
    refused(server, endpoint, {"model_name": "../x"}, 400, "'model_name'")
    refused(server, endpoint, ["m"], 400, "expected a JSON object")
    assert current(server, name) == ["1"]


def test_get_rollouts_lists_every_rollout_and_wants_an_object(server: ServerThread, conn: ClipperConnection
                                                              ) -> None:
    names = [model(server, conn) for _ in range(2)]
    for name in names:
        ok(server, "start_rollout", {"model_name": name, "version": "2"})
    ok(server, "abort_rollout", {"model_name": names[1]})
    listed = {r["model"]: r for r in map(documented, ok(server, "get_rollouts", {}))}
    assert (listed[names[0]]["state"], listed[names[1]]["state"]) == ("running", "aborted")
    ok(server, "abort_rollout", {"model_name": names[0]})
    refused(server, "get_rollouts", [], 400, "expected a JSON object")
    refused(server, "get_rollouts", "", 400, "expected a JSON object")


# -- ClipperConnection ------------------------------------------------------------------------------------

def test_the_client_starts_reads_and_changes_rollouts(server: ServerThread, conn: ClipperConnection) -> None:
    name = model(server, conn, candidates=2, prefix="client-")
    assert conn.get_current_model_version(name) == "1"
    assert conn.get_model_info(name, 2)["is_current_version"] is False  # type: ignore[index]

    view = documented(conn.start_rollout(name, 2))  # nothing but the version: the server's defaults
    assert view["settings"] == {"mode": "canary", "steps": [5.0, 25.0, 50.0, 100.0], "step_seconds": 60.0,
                                "min_queries_per_step": 100, "max_error_rate": 0.01, "max_p99_ms": None,
                                "max_default_rate": 0.05, "min_feedback_reward": None, "min_feedback": 20,
                                "reward": "match", "min_agreement": None, "agreement_tolerance": 1e-6}
    assert documented(conn.get_rollout(name))["candidate"] == "2"
    assert name in [r["model"] for r in conn.get_rollouts()]
    assert conn.pause_rollout(name)["state"] == "paused"
    assert conn.resume_rollout(name)["state"] == "running"
    with pytest.raises(ClipperException) as error:
        conn.start_rollout(name, 3)
    assert error.value.status == 400
    assert str(error.value) == (f"POST /admin/start_rollout failed with 400: model '{name}' already has an active "
                                "rollout (of version '2', running); abort or promote it first")
    assert conn.abort_rollout(name)["state"] == "aborted"

    view = documented(conn.start_rollout(name, 3, steps=(10, 100), step_seconds=5, min_queries_per_step=7,
                                         max_error_rate=None, max_p99_ms=50, max_default_rate=None,
                                         min_feedback_reward=0.5, min_feedback=4, reward="abs_error"))
    assert {k: view["settings"][k] for k in ("steps", "step_seconds", "min_queries_per_step", "max_error_rate",
                                             "max_p99_ms", "max_default_rate", "min_feedback_reward",
                                             "min_feedback", "reward")} == {
        "steps": [10, 100], "step_seconds": 5, "min_queries_per_step": 7, "max_error_rate": None,
        "max_p99_ms": 50, "max_default_rate": None, "min_feedback_reward": 0.5, "min_feedback": 4,
        "reward": "abs_error"}
    promoted = conn.promote_rollout(name)
    assert promoted["state"] == "promoted" and conn.get_current_model_version(name) == "3"

    shadow = conn.start_rollout(name, 1, mode="shadow", min_agreement=0.95, agreement_tolerance=0.01)
    assert (shadow["settings"]["steps"], shadow["mirrored"], shadow["baseline"]) == ([100.0], 1.0, "3")
    conn.abort_rollout(name)

    with pytest.raises(ClipperException, match="'steps' is \\[50, 10\\]; expected increasing percentages") as error:
        conn.start_rollout(name, 2, steps=[50, 10])
    assert error.value.status == 400
    with pytest.raises(ClipperException, match="'mode' is 'blue'"):
        conn.start_rollout(name, 2, mode="blue")
    with pytest.raises(ClipperException, match=f"model '{name}' has no rollout|has ended"):
        conn.pause_rollout(name)
    with pytest.raises(ClipperException, match="model 'nobody' has no rollout") as error:
        conn.get_rollout("nobody")
    assert error.value.status == 404


# -- the admin token ---------------------------------------------------------------------------------------

def test_with_an_admin_token_every_rollout_endpoint_needs_it(tmp_path: Path) -> None:
    token = "r0llout-token"
    with ServerThread(tmp_path, admin_token=token) as guarded:
        conn = ClipperConnection(LocalContainerManager(clipper_home=str(tmp_path), admin_token=token))
        conn.connect()
        name = model(guarded, conn)
        for endpoint, body in (("start_rollout", {"model_name": name, "version": "2"}),
                               ("get_rollout", {"model_name": name}), ("get_rollouts", {}),
                               ("pause_rollout", {"model_name": name}), ("resume_rollout", {"model_name": name}),
                               ("abort_rollout", {"model_name": name}),
                               ("start_rollout", {"model_name": name, "version": "2"}),
                               ("promote_rollout", {"model_name": name})):
            for wrong in (None, "wrong"):
                status, answer = http_json(f"{guarded.admin_url}/admin/{endpoint}", body, token=wrong)
                assert status == 401 and answer["error"] == "Unauthorized", (endpoint, answer)
            status, answer = http_json(f"{guarded.admin_url}/admin/{endpoint}", body, token=token)
            assert status == 200, (endpoint, answer)
            documented(answer[0] if endpoint == "get_rollouts" else answer)
        assert conn.get_rollout(name)["state"] == "promoted"
