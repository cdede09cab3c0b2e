"""Every bad admin request: 4xx JSON {"error", "cause"} saying what was wrong; the server keeps serving.
Also the bearer token and Clipper's response shapes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clipper_core.testing import ServerThread, http_json

APP = {"name": "app", "input_type": "doubles", "default_output": "-1.0", "latency_slo_micros": 100000}
MODEL = {"model_name": "m", "model_version": "1", "labels": [], "input_type": "doubles",
         "container_name": "NO_CONTAINER", "model_data_path": "DEPRECATED", "batch_size": -1}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    with ServerThread(tmp_path_factory.mktemp("admin"), max_body_bytes=4096) as server:
        for endpoint, body in (("add_app", APP), ("add_model", MODEL),
                               ("add_app", {**APP, "name": "strs", "input_type": "strings"})):
            assert http_json(f"{server.admin_url}/admin/{endpoint}", body)[0] == 200
        yield server


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def without(base: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in base.items() if k != key}


CASES: list[tuple[str, str, Any, int, str]] = [
    ("malformed JSON", "add_app", b"{", 400, "Error parsing JSON"),
    ("array body", "add_app", [1, 2], 400, "expected a JSON object"),
    ("missing name", "add_app", without(APP, "name"), 400, "required key: name"),
    ("missing slo", "add_app", without(APP, "latency_slo_micros"), 400, "required key: latency_slo_micros"),
    ("name not string", "add_app", with_(APP, name=5), 400, "'name' is a number; expected a string"),
    ("empty name", "add_app", with_(APP, name=""), 400, "is empty"),
    ("comma in name", "add_app", with_(APP, name="a,b"), 400, "not allowed"),
    ("colon in name", "add_app", with_(APP, name="a:b"), 400, "not allowed"),
    ("slash in name", "add_app", with_(APP, name="a/b"), 400, "not allowed"),
    ("dotdot in name", "add_app", with_(APP, name=".."), 400, "not allowed"),
    ("space in name", "add_app", with_(APP, name="a b"), 400, "not allowed"),
    ("long name", "add_app", with_(APP, name="a" * 129), 400, "at most 128"),
    ("bad input type", "add_app", with_(APP, name="x", input_type="tensor"), 400, "invalid input_type 'tensor'"),
    ("slo zero", "add_app", with_(APP, name="x", latency_slo_micros=0), 400, "between 1 and 2147483647"),
    ("slo negative", "add_app", with_(APP, name="x", latency_slo_micros=-5), 400, "between 1 and"),
    ("slo absurd", "add_app", with_(APP, name="x", latency_slo_micros=2**31), 400, "between 1 and"),
    ("slo bool", "add_app", with_(APP, name="x", latency_slo_micros=True), 400, "expected an integer"),
    ("slo float", "add_app", with_(APP, name="x", latency_slo_micros=1.5), 400, "expected an integer"),
    ("default not string", "add_app", with_(APP, name="x", default_output=1), 400, "'default_output' is a number"),
    ("unknown policy", "add_app", with_(APP, name="x", policy="zzz"), 400, "no selection policy named 'zzz'"),
    ("duplicate app", "add_app", APP, 400, "application 'app' already exists"),
    ("batch size zero", "add_model", with_(MODEL, model_version="2", batch_size=0), 400, "-1 (adaptive)"),
    ("batch size -2", "add_model", with_(MODEL, model_version="2", batch_size=-2), 400, "-1 (adaptive)"),
    ("batch size missing", "add_model", without(with_(MODEL, model_version="2"), "batch_size"), 400,
     "required key: batch_size"),
    ("label with comma", "add_model", with_(MODEL, model_version="2", labels=["a,b"]), 400, "not allowed in labels"),
    ("duplicate model", "add_model", MODEL, 400, "already exists"),
    ("link unknown app", "add_model_links", {"app_name": "ghost", "model_names": ["m"]}, 404,
     "Application 'ghost' does not exist"),
    ("link unknown model", "add_model_links", {"app_name": "app", "model_names": ["ghost"]}, 400,
     "No model with name 'ghost' exists"),
    ("link wrong type", "add_model_links", {"app_name": "strs", "model_names": ["m"]}, 400, "incompatible input type"),
    ("link empty list", "add_model_links", {"app_name": "app", "model_names": []}, 400, "is empty"),
    ("set unknown version", "set_model_version", {"model_name": "m", "model_version": "9"}, 400,
     "Requested version: 9 does not exist for model: m"),
    ("delete unknown version", "delete_versioned_model", {"model_name": "m", "model_version": "9"}, 400,
     "does not exist"),
    ("delete unknown app", "delete_app", {"name": "ghost"}, 404, "Application 'ghost' does not exist"),
    ("resize containerless", "set_num_replicas", {"model_name": "m", "model_version": "1", "num_replicas": 2}, 400,
     "containerless model"),
    ("too many replicas", "set_num_replicas", {"model_name": "m", "model_version": "1", "num_replicas": 1000}, 400,
     "expected 0 to 256"),
    ("verbose not bool", "get_all_models", {"verbose": "yes"}, 400, "'verbose' is a string; expected a boolean"),
    ("body too large", "add_app", with_(APP, name="big", default_output="x" * 5000), 413, "body"),
]


@pytest.mark.parametrize(("endpoint", "body", "status", "cause"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_admin_request(server: ServerThread, endpoint: str, body: Any, status: int, cause: str) -> None:
    raw = body if isinstance(body, bytes) else None
    got, answer = http_json(f"{server.admin_url}/admin/{endpoint}", None if raw else body, raw=raw)
    assert got == status, answer
    assert set(answer) == {"error", "cause"} and cause in answer["cause"], answer
    assert http_json(f"{server.admin_url}/admin/ping")[1] == "PONG"


def test_wrong_method_and_unknown_path(server: ServerThread) -> None:
    status, answer = http_json(f"{server.admin_url}/admin/add_app", method="GET")
    assert status == 405 and "allowed: POST" in answer["cause"]
    status, answer = http_json(f"{server.admin_url}/admin/nothing", {})
    assert status == 404 and set(answer) == {"error", "cause"}


def test_clipper_shapes(server: ServerThread) -> None:
    admin = f"{server.admin_url}/admin"
    assert http_json(f"{admin}/get_all_applications", {"verbose": False})[1] == ["app", "strs"]
    app = http_json(f"{admin}/get_application", {"name": "app"})[1]
    assert {k: app[k] for k in ("name", "input_type", "default_output", "latency_slo_micros", "linked_models")} == {
        "name": "app", "input_type": "doubles", "default_output": "-1.0", "latency_slo_micros": 100000,
        "linked_models": []}
    assert http_json(f"{admin}/get_application", {"name": "ghost"})[1] == {}
    assert http_json(f"{admin}/get_all_models", {"verbose": False})[1] == ["m:1"]
    assert http_json(f"{admin}/get_model", {"model_name": "m", "model_version": "1"})[1]["is_current_version"] is True
    assert http_json(f"{admin}/get_state", {"app_name": "app", "uid": 0})[1] == -1.0  # the raw default output
    assert http_json(f"{admin}/get_all_containers", {"verbose": True})[1] == []


def test_bearer_token_guards_every_admin_endpoint(tmp_path: Path) -> None:
    with ServerThread(tmp_path / "home", admin_token="s3cret") as server:
        for method, path, body in (("GET", "/admin/ping", None), ("POST", "/admin/add_app", APP),
                                   ("POST", "/admin/get_all_models", {}), ("GET", "/plugins", None)):
            status, answer = http_json(server.admin_url + path, body, method=method)
            assert status == 401 and "Authorization: Bearer" in answer["cause"], (path, answer)
            status, answer = http_json(server.admin_url + path, body, method=method, token="wrong")
            assert status == 401, path
        assert http_json(f"{server.admin_url}/admin/ping", token="s3cret") == (200, "PONG")
        assert http_json(f"{server.admin_url}/admin/add_app", APP, token="s3cret")[0] == 200
