"""End to end through the query frontend: a real server, real replica processes, real ZeroMQ."""

from __future__ import annotations

import base64
import concurrent.futures

import pytest

from clipper_core.serving.prediction import NO_MODELS, SLO_MISSED
from clipper_core.testing import ServerThread
from tests import models
from tests.conftest import Deploy


def test_quickstart_model_sums_its_input(clipper_server: ServerThread, deploy: Deploy) -> None:
    deploy.app("hello-world", slo_micros=2_000_000)
    deploy("sum-model", 1, models.feature_sum, app="hello-world")
    status, answer = clipper_server.predict("hello-world", {"input": [1.1, 2.2, 3.3]})
    assert status == 200
    assert answer["default"] is False
    assert answer["output"] == pytest.approx(6.6)
    assert isinstance(answer["query_id"], int)


def test_integers_are_accepted_for_a_doubles_app(clipper_server: ServerThread, deploy: Deploy) -> None:
    deploy.app("ints-ok")
    deploy("sum-model", 1, models.feature_sum, app="ints-ok")
    status, answer = clipper_server.predict("ints-ok", {"input": [1, 2, 3]})
    assert (status, answer["output"], answer["default"]) == (200, 6.0, False)


def test_input_batch_answers_in_order_and_one_element_batch_stays_wrapped(
        clipper_server: ServerThread, deploy: Deploy) -> None:
    deploy.app("batch")
    deploy("sum-model", 1, models.feature_sum, app="batch")
    status, answer = clipper_server.predict("batch", {"input_batch": [[1.0], [2.0, 3.0], [4.0], [5.0, 5.0]]})
    assert status == 200
    assert [p["output"] for p in answer["batch_predictions"]] == [1.0, 5.0, 4.0, 10.0]
    assert len({p["query_id"] for p in answer["batch_predictions"]}) == 4
    status, answer = clipper_server.predict("batch", {"input_batch": [[1.0]]})
    assert answer == {"batch_predictions": [{"query_id": answer["batch_predictions"][0]["query_id"],
                                             "output": 1.0, "default": False}]}


def test_unlinked_app_answers_the_default_output_at_once(clipper_server: ServerThread, deploy: Deploy) -> None:
    deploy.app("lonely", default_output="-1.0")
    status, answer = clipper_server.predict("lonely", {"input": [1.0]})
    assert status == 200
    assert answer["default"] is True
    assert answer["output"] == -1.0
    assert answer["default_explanation"] == NO_MODELS


def test_slow_model_gets_the_default_at_the_slo(clipper_server: ServerThread, deploy: Deploy) -> None:
    deploy.app("hurry", slo_micros=100_000)
    deploy("slow", 1, models.slow_model, app="hurry")
    _, answer = clipper_server.predict("hurry", {"input": [1.0]})
    assert answer["default"] is True
    assert answer["default_explanation"] == SLO_MISSED


def test_model_errors_become_defaults_naming_the_error(clipper_server: ServerThread, deploy: Deploy) -> None:
    deploy.app("partial")
    deploy("picky", 1, models.error_on_negative, app="partial")
    _, answer = clipper_server.predict("partial", {"input_batch": [[1.0], [-2.0], [3.0]]})
    good, bad, also_good = answer["batch_predictions"]
    assert (good["output"], good["default"]) == (1.0, False)
    assert bad["default"] is True and "negative input -2.0" in bad["default_explanation"]
    assert (also_good["output"], also_good["default"]) == (3.0, False)
    deploy.app("broken")
    deploy("broken-model", 1, models.error_model, app="broken")
    _, answer = clipper_server.predict("broken", {"input": [1.0]})
    assert answer["default"] is True
    assert "this model always fails" in answer["default_explanation"]
    # the replica survived: the first app still answers
    assert clipper_server.predict("partial", {"input": [4.0]})[1]["output"] == 4.0


def test_strings_and_bytes_apps(clipper_server: ServerThread, deploy: Deploy) -> None:
    deploy.app("shout", input_type="strings", default_output="")
    deploy("upper", 1, models.echo_strings, input_type="strings", app="shout")
    assert clipper_server.predict("shout", {"input": "héllo"})[1]["output"] == "HÉLLO"
    deploy.app("blob", input_type="bytes", default_output="0")
    deploy("blen", 1, models.bytes_length, input_type="bytes", app="blob")
    payload = base64.b64encode(b"\x00\x01\x02abc").decode()
    assert clipper_server.predict("blob", {"input": payload})[1]["output"] == 6


def test_version_routes_to_that_version(clipper_server: ServerThread, deploy: Deploy) -> None:
    deploy.app("versions")
    deploy("m", 1, models.version_one, app="versions")
    deploy("m", 2, models.version_two)
    assert clipper_server.predict("versions", {"input": [0.0]})[1]["output"] == 2
    assert clipper_server.predict("versions", {"input": [0.0], "version": "1"})[1]["output"] == 1
    status, answer = clipper_server.predict("versions", {"input": [0.0], "version": "9"})
    assert status == 400
    assert answer["cause"] == "Requested version: 9 does not exist for model: m"


def test_cache_answers_repeated_inputs_without_the_model(clipper_server: ServerThread, deploy: Deploy) -> None:
    deploy.app("cached")
    deploy("sum-model", 1, models.feature_sum, app="cached")
    first = clipper_server.predict("cached", {"input": [7.0, 8.0]})[1]
    hits_before = clipper_server.call(lambda: clipper_server.server.ctx.query_path.cache.hits)
    second = clipper_server.predict("cached", {"input": [7.0, 8.0]})[1]
    assert first["output"] == second["output"] == 15.0
    assert clipper_server.call(lambda: clipper_server.server.ctx.query_path.cache.hits) == hits_before + 1


def test_concurrent_queries_are_batched(clipper_server: ServerThread, deploy: Deploy) -> None:
    deploy.app("busy")
    deploy("sizes", 1, models.batch_size_model, app="busy")
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda i: clipper_server.predict("busy", {"input": [float(i)]})[1], range(200)))
    assert all(not a["default"] for a in answers)
    assert max(a["output"] for a in answers) > 1


def test_unknown_app_is_404_json(clipper_server: ServerThread) -> None:
    status, answer = clipper_server.predict("nope", {"input": [1.0]})
    assert status == 404
    assert answer == {"error": "Not found", "cause": "application 'nope' does not exist"}


def test_metrics_and_health(clipper_server: ServerThread, deploy: Deploy) -> None:
    from clipper_core.testing import http_json

    deploy.app("observed")
    deploy("sum-model", 1, models.feature_sum, app="observed")
    clipper_server.predict("observed", {"input": [1.0]})
    status, text = http_json(f"{clipper_server.query_url}/metrics")
    assert status == 200
    assert 'clipper_app_predictions_total{app="observed"} 1.0' in text
    assert 'clipper_model_replicas_connected{model="sum-model",version="1"} 1.0' in text
    status, health = http_json(f"{clipper_server.query_url}/health")
    assert status == 200 and health["status"] == "ok"


def test_late_results_still_fill_the_cache(clipper_server: ServerThread, deploy: Deploy) -> None:
    from clipper_core.testing import wait_until

    deploy.app("late", slo_micros=100_000)
    deploy("slow", 1, models.slow_model, app="late")
    first = clipper_server.predict("late", {"input": [42.0]})[1]
    assert first["default"] is True
    wait_until(lambda: clipper_server.predict("late", {"input": [42.0]})[1]["default"] is False, 5,
               what="the late output to land in the cache")
    assert clipper_server.predict("late", {"input": [42.0]})[1]["output"] == "slow"


def test_identical_concurrent_misses_make_one_model_call(clipper_server: ServerThread, deploy: Deploy) -> None:
    deploy.app("flight", slo_micros=5_000_000)
    deploy("slow", 1, models.slow_model, app="flight")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: clipper_server.predict("flight", {"input": [1.0, 2.0]})[1], range(8)))
    assert all(a["output"] == "slow" and not a["default"] for a in answers)
    mr = clipper_server.server.ctx.query_path.models[("slow", "1")]
    assert clipper_server.call(lambda: mr.predictions) == 1


def test_cache_can_be_disabled_per_app(clipper_server: ServerThread, deploy: Deploy) -> None:
    deploy.app("fresh", cache_enabled=False)
    deploy("sum-model", 1, models.feature_sum, app="fresh")
    for _ in range(3):
        assert clipper_server.predict("fresh", {"input": [1.0, 1.0]})[1]["output"] == 2.0
    mr = clipper_server.server.ctx.query_path.models[("sum-model", "1")]
    assert clipper_server.call(lambda: (mr.predictions, mr.cache_hits)) == (3, 0)
