"""Two query frontends over one Redis: an output first computed through frontend A is a cache hit on B."""

from __future__ import annotations

from pathlib import Path

from clipper_core.default_plugins.closure_deployer import PythonClosureDeployer
from clipper_core.testing import ServerThread, http_json, wait_until


def add(xs):  # type: ignore[no-untyped-def]
    return [str(sum(x)) for x in xs]


def test_hit_on_frontend_b_for_a_query_answered_on_a(tmp_path: Path, redis_url: str) -> None:
    common = {"state_store": redis_url, "cache_backend": "redis"}
    with ServerThread(tmp_path / "a", **common) as a, ServerThread(tmp_path / "b", **common) as b:
        admin = f"{a.admin_url}/admin"
        model_dir = tmp_path / "model"
        PythonClosureDeployer().save(model_dir, add, input_type="doubles", name="adder", version="1")
        for endpoint, body in (
                ("add_app", {"name": "app", "input_type": "doubles", "default_output": "-1",
                             "latency_slo_micros": 2_000_000}),
                ("add_model", {"model_name": "adder", "model_version": "1", "input_type": "doubles",
                               "container_name": str(model_dir), "batch_size": -1}),
                ("add_model_links", {"app_name": "app", "model_names": ["adder"]}),
                ("set_num_replicas", {"model_name": "adder", "model_version": "1", "num_replicas": 1})):
            assert http_json(f"{admin}/{endpoint}", body)[0] == 200
        # the replica started by A's supervisor learns of B from the frontend registry (PEERS) and joins it
        a.wait_replicas("adder", "1", 1)
        b.wait_replicas("adder", "1", 1)
        wait_until(lambda: http_json(f"{b.query_url}/app/predict", {"input": [0.5]})[1].get("default") is False,
                   10, what="frontend B to follow the app and serve")
        assert http_json(f"{a.query_url}/app/predict", {"input": [1.0, 2.0]})[1]["output"] == 3.0
        b_model = b.server.ctx.query_path.models[("adder", "1")]
        before = b.call(lambda: (b_model.cache_hits, b_model.predictions))
        wait_until(lambda: http_json(f"{b.query_url}/app/predict", {"input": [1.0, 2.0]})[1]["output"] == 3.0
                   and b.call(lambda: b_model.cache_hits) > before[0], 5, what="a cache hit on B")
        assert b.call(lambda: b_model.predictions) == before[1]  # B never asked the model
