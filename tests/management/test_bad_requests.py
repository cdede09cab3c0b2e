"""The management API's bad requests, in process (the server under test is tests/management/harness.py's): every
one is a 4xx JSON ``{"error", "cause"}`` whose cause says what was wrong, and changes nothing; so is a body over
the size limit."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from clipper_core.management.handlers import ROUTES
from tests.management.harness import Admin, assert_error, start_admin

# -- bad requests --------------------------------------------------------------------------------------

class Bad(NamedTuple):
    id: str
    path: str
    body: Any  # bytes are sent as they are
    status: int
    cause: str


APP = {"name": "x", "input_type": "doubles", "default_output": "-1.0", "latency_slo_micros": 100000}
MODEL = {"model_name": "x", "model_version": "1", "labels": [], "input_type": "doubles",
         "container_name": "NO_CONTAINER", "model_data_path": "DEPRECATED", "batch_size": -1}
REF = {"model_name": "m", "model_version": "1"}


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def without(base: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in base.items() if k != key}


def required(path: str, base: dict[str, Any], *keys: str) -> list[Bad]:
    return [Bad(f"{path} without {key}", path, without(base, key), 400,
                f"JSON object does not have required key: {key}") for key in keys]


BAD_NAMES = {"comma": "a,b", "colon": "a:b", "slash": "a/b", "backslash": "a\\b", "space": "a b", "tab": "a\tb",
             "newline": "a\nb", "dotdot": "..", "inner dotdot": "a..b", "dot": ".", "nbsp": "a\u00a0b"}


def bad_names(path: str, base: dict[str, Any], key: str) -> list[Bad]:
    cases = [Bad(f"{path} {key} {what}", path, with_(base, **{key: value}), 400, "is not allowed")
             for what, value in BAD_NAMES.items()]
    cases += [Bad(f"{path} {key} empty", path, with_(base, **{key: ""}), 400, f"'{key}' is empty"),
              Bad(f"{path} {key} too long", path, with_(base, **{key: "a" * 129}), 400,
                  f"'{key}' is 129 characters long; at most 128 are allowed")]
    return cases


BAD: list[Bad] = [
    # bodies that are not JSON objects
    Bad("malformed JSON", "add_app", b'{"name": ', 400, "Error parsing JSON"),
    Bad("not UTF-8", "add_app", b"\xff\xfe{}", 400, "Error parsing JSON"),
    Bad("NaN", "get_all_models", b'{"verbose": NaN}', 400, "Error parsing JSON"),
    Bad("empty body", "add_app", b"", 400, "request body is empty; expected a JSON object"),
    Bad("array body", "add_app", [APP], 400, "request body is a JSON value that is an array; expected a JSON object"),
    Bad("string body", "get_all_models", "verbose", 400, "that is a string; expected a JSON object"),
    Bad("null body", "get_application", b"null", 400, "that is null; expected a JSON object"),
    Bad("number body", "get_model", b"7", 400, "that is a number; expected a JSON object"),
    # missing fields
    *required("add_app", APP, "name", "input_type", "default_output", "latency_slo_micros"),
    *required("delete_app", {"name": "app"}, "name"),
    *required("set_app_policy", {"name": "app", "policy": "default"}, "name", "policy"),
    *required("get_application", {"name": "app"}, "name"),
    *required("get_state", {"app_name": "app"}, "app_name"),
    *required("add_model_links", {"app_name": "app", "model_names": ["m"]}, "app_name", "model_names"),
    *required("delete_model_links", {"app_name": "full", "model_names": ["m"]}, "app_name", "model_names"),
    *required("get_linked_models", {"app_name": "app"}, "app_name"),
    *required("add_model", MODEL, "model_name", "model_version", "input_type", "batch_size"),
    *required("set_model_version", REF, "model_name", "model_version"),
    *required("delete_versioned_model", REF, "model_name", "model_version"),
    *required("get_model", REF, "model_name", "model_version"),
    *required("get_container", {**REF, "replica_id": 0}, "model_name", "model_version", "replica_id"),
    *required("set_num_replicas", {"model_name": "dm", "model_version": "1", "num_replicas": 1}, "num_replicas"),
    *required("get_num_replicas", REF, "model_name", "model_version"),
    # wrong types
    Bad("slo bool", "add_app", with_(APP, latency_slo_micros=True), 400,
        "'latency_slo_micros' is a boolean; expected an integer"),
    Bad("slo float", "add_app", with_(APP, latency_slo_micros=1.5), 400,
        "'latency_slo_micros' is a number; expected an integer"),
    Bad("slo huge float", "add_app", b'{"name": "x", "input_type": "d", "default_output": "", '
                                     b'"latency_slo_micros": 100000000000000000000}', 400,
        "'latency_slo_micros' is a number; expected an integer"),
    Bad("slo string", "add_app", with_(APP, latency_slo_micros="100"), 400,
        "'latency_slo_micros' is a string; expected an integer"),
    Bad("name int", "add_app", with_(APP, name=5), 400, "'name' is a number; expected a string"),
    Bad("name null", "add_app", with_(APP, name=None), 400, "'name' is null; expected a string"),
    Bad("name array", "delete_app", {"name": ["app"]}, 400, "'name' is an array; expected a string"),
    Bad("input_type int", "add_app", with_(APP, input_type=1), 400, "'input_type' is a number; expected a string"),
    Bad("default_output int", "add_app", with_(APP, default_output=1), 400,
        "'default_output' is a number; expected a string"),
    Bad("policy int", "add_app", with_(APP, policy=1), 400, "'policy' is a number; expected a string"),
    Bad("policy_config array", "add_app", with_(APP, policy_config=[]), 400,
        "'policy_config' is an array; expected an object"),
    Bad("cache_enabled string", "add_app", with_(APP, cache_enabled="yes"), 400,
        "'cache_enabled' is a string; expected a boolean"),
    Bad("verbose string", "get_all_models", {"verbose": "yes"}, 400, "'verbose' is a string; expected a boolean"),
    Bad("verbose int", "get_all_applications", {"verbose": 1}, 400, "'verbose' is a number; expected a boolean"),
    Bad("verbose null", "get_all_containers", {"verbose": None}, 400, "'verbose' is null; expected a boolean"),
    Bad("uid string", "get_state", {"app_name": "app", "uid": "0"}, 400, "'uid' is a string; expected an integer"),
    Bad("model_names string", "add_model_links", {"app_name": "app", "model_names": "m"}, 400,
        "'model_names' is a string; expected an array"),
    Bad("model_names of ints", "delete_model_links", {"app_name": "full", "model_names": [1]}, 400,
        "'model_names' contains a number; expected an array of names"),
    Bad("model_names empty", "add_model_links", {"app_name": "app", "model_names": []}, 400,
        "'model_names' is empty; expected an array of at least one name"),
    Bad("model_names bad name", "add_model_links", {"app_name": "app", "model_names": ["m", "a:b"]}, 400,
        "is not allowed"),
    Bad("model_version bool", "get_model", {"model_name": "m", "model_version": True}, 400,
        "'model_version' is a boolean; expected a string"),
    Bad("model_version float", "set_model_version", {"model_name": "m", "model_version": 1.5}, 400,
        "'model_version' is a number; expected a string"),
    Bad("batch_size bool", "add_model", with_(MODEL, batch_size=True), 400,
        "'batch_size' is a boolean; expected an integer"),
    Bad("batch_size float", "add_model", with_(MODEL, batch_size=1.0), 400,
        "'batch_size' is a number; expected an integer"),
    Bad("labels string", "add_model", with_(MODEL, labels="a"), 400, "'labels' is a string; expected an array"),
    Bad("labels of ints", "add_model", with_(MODEL, labels=[1]), 400,
        "'labels' contains a number; expected an array of strings"),
    Bad("label with colon", "add_model", with_(MODEL, labels=["a:b"]), 400,
        "label 'a:b' contains ',' or ':', which are not allowed in labels"),
    Bad("container_name int", "add_model", with_(MODEL, container_name=1), 400,
        "'container_name' is a number; expected a string"),
    Bad("replica_id string", "get_container", {**REF, "replica_id": "0"}, 400,
        "'replica_id' is a string; expected an integer"),
    Bad("num_replicas bool", "set_num_replicas", {"model_name": "dm", "model_version": "1", "num_replicas": True},
        400, "'num_replicas' is a boolean; expected an integer"),
    Bad("batch wait negative", "add_model", with_(MODEL, batch_wait_timeout_micros=-1), 400,
        "'batch_wait_timeout_micros' is -1; expected microseconds >= 0"),
    # input types
    Bad("input_type unknown", "add_app", with_(APP, input_type="tensor"), 400,
        "invalid input_type 'tensor'; expected one of integers, floats, doubles, strings, bytes"),
    Bad("input_type empty", "add_model", with_(MODEL, input_type=""), 400, "invalid input_type ''"),
    # names
    *bad_names("add_app", APP, "name"),
    *bad_names("add_model", MODEL, "model_name"),
    *bad_names("add_model", MODEL, "model_version"),
    Bad("get_application bad name", "get_application", {"name": "../etc"}, 400, "is not allowed"),
    Bad("add_model_links empty app name", "add_model_links", {"app_name": "", "model_names": ["m"]}, 400,
        "'app_name' is empty"),
    # SLO and batch size ranges
    *[Bad(f"slo {v}", "add_app", with_(APP, latency_slo_micros=v), 400,
          f"'latency_slo_micros' is {v}; expected microseconds between 1 and 2147483647")
      for v in (0, -1, 2**31, 2**40)],
    *[Bad(f"batch_size {v}", "add_model", with_(MODEL, batch_size=v), 400,
          f"'batch_size' is {v}; expected a positive batch size or -1 (adaptive)") for v in (0, -2)],
    # duplicates and unknown names
    Bad("duplicate app", "add_app", with_(APP, name="app"), 400, "application 'app' already exists"),
    Bad("duplicate model", "add_model", with_(MODEL, model_name="m", model_version="1"), 400,
        "model with name 'm' and version '1' already exists"),
    Bad("unknown policy", "add_app", with_(APP, policy="zzz"), 400, "no selection policy named 'zzz'; installed: ["),
    Bad("set unknown policy", "set_app_policy", {"name": "app", "policy": "zzz"}, 400,
        "no selection policy named 'zzz'; installed: ["),
    Bad("set policy unknown app", "set_app_policy", {"name": "ghost", "policy": "default"}, 404,
        "Application 'ghost' does not exist"),
    Bad("set policy with too many links", "set_app_policy", {"name": "multi", "policy": "default"}, 400,
        "policy 'default' serves at most 1 linked model(s); application 'multi' has 2: unlink some first"),
    Bad("delete unknown app", "delete_app", {"name": "ghost"}, 404, "Application 'ghost' does not exist"),
    Bad("state of unknown app", "get_state", {"app_name": "ghost"}, 404, "Application 'ghost' does not exist"),
    Bad("links of unknown app", "get_linked_models", {"app_name": "ghost"}, 404, "Application 'ghost' does not exist"),
    # links
    Bad("link unknown app", "add_model_links", {"app_name": "ghost", "model_names": ["m"]}, 404,
        "Application 'ghost' does not exist"),
    Bad("link unknown model", "add_model_links", {"app_name": "app", "model_names": ["ghost"]}, 400,
        "No model with name 'ghost' exists"),
    Bad("link incompatible input type", "add_model_links", {"app_name": "strs", "model_names": ["m"]}, 400,
        "Model with name 'm' has incompatible input type 'doubles'; application 'strs' takes 'strings'"),
    Bad("second link under default policy", "add_model_links", {"app_name": "full", "model_names": ["m2"]}, 400,
        "Applications must be linked with at most one model under policy 'default'. "
        "Application 'full' is already linked to ['m']"),
    Bad("two links at once under default policy", "add_model_links", {"app_name": "app", "model_names": ["m", "m2"]},
        400, "Applications must be linked with at most one model"),
    Bad("link twice", "add_model_links", {"app_name": "multi", "model_names": ["m"]}, 400,
        "model with name 'm' is already linked to application 'multi'"),
    Bad("unlink unknown app", "delete_model_links", {"app_name": "ghost", "model_names": ["m"]}, 404,
        "Application 'ghost' does not exist"),
    Bad("unlink a model not linked", "delete_model_links", {"app_name": "full", "model_names": ["m2"]}, 404,
        "model 'm2' is not linked to application 'full'"),
    # model versions
    Bad("new version of another type than its app", "add_model", with_(MODEL, model_name="m", model_version="3",
                                                                       input_type="strings"), 400,
        "Model with name 'm' is linked to application 'full' of input type 'doubles'; version '3' has input type "
        "'strings'"),
    Bad("set version of unknown model", "set_model_version", {"model_name": "ghost", "model_version": "1"}, 400,
        "No model with name 'ghost' exists"),
    Bad("set unknown version", "set_model_version", {"model_name": "m", "model_version": "9"}, 400,
        "Requested version: 9 does not exist for model: m"),
    Bad("set version incompatible with app", "set_model_version", {"model_name": "mixed", "model_version": "2"}, 400,
        "version '2' of model 'mixed' has input type 'strings', incompatible with linked application 'mixedapp' "
        "('doubles')"),
    Bad("delete unknown version", "delete_versioned_model", {"model_name": "m", "model_version": "9"}, 400,
        "model with name 'm' and version '9' does not exist"),
    Bad("delete unknown model", "delete_versioned_model", {"model_name": "ghost", "model_version": "1"}, 400,
        "model with name 'ghost' and version '1' does not exist"),
    # replicas
    # autoscaling
    Bad("autoscaling missing", "set_autoscaling", {"model_name": "dm", "model_version": "1"}, 400,
        "JSON object does not have required key: autoscaling"),
    Bad("autoscaling not an object", "set_autoscaling", {"model_name": "dm", "model_version": "1", "autoscaling": 3},
        400, "'autoscaling' is int; expected an object of settings or null"),
    Bad("autoscaling unknown setting", "set_autoscaling",
        {"model_name": "dm", "model_version": "1", "autoscaling": {"max": 3}}, 400, "unknown setting(s) 'max'"),
    Bad("autoscaling min above max", "set_autoscaling",
        {"model_name": "dm", "model_version": "1", "autoscaling": {"min_replicas": 5, "max_replicas": 2}}, 400,
        "'min_replicas' (5) is above 'max_replicas' (2)"),
    Bad("autoscaling two targets", "set_autoscaling",
        {"model_name": "dm", "model_version": "1",
         "autoscaling": {"target_inflight_per_replica": 2, "target_latency_fraction": 0.5}}, 400,
        "give exactly one target"),
    Bad("autoscaling negative delay", "set_autoscaling",
        {"model_name": "dm", "model_version": "1", "autoscaling": {"upscale_delay_s": -1}}, 400,
        "'upscale_delay_s' is -1; expected a number at least 0"),
    Bad("autoscaling containerless", "set_autoscaling", {**REF, "autoscaling": {}}, 400,
        "Cannot autoscale the containerless model m:1"),
    Bad("autoscaling unknown model", "get_autoscaling", {"model_name": "ghost", "model_version": "1"}, 404,
        "model with name 'ghost' and version '1' does not exist"),
    Bad("add_model with bad autoscaling", "add_model", with_(MODEL, autoscaling={"min_replicas": -1}), 400,
        "'min_replicas' is -1; expected 0 to 256"),
    Bad("add_model containerless with autoscaling", "add_model", with_(MODEL, autoscaling={}), 400,
        "Cannot autoscale the containerless model"),
    Bad("resize containerless", "set_num_replicas", {**REF, "num_replicas": 1}, 400,
        "Cannot resize the containerless model m:1"),
    Bad("resize unknown model", "set_num_replicas", {"model_name": "ghost", "model_version": "1",
                                                     "num_replicas": 1}, 404,
        "model with name 'ghost' and version '1' does not exist"),
    Bad("resize negative", "set_num_replicas", {"model_name": "dm", "model_version": "1", "num_replicas": -1}, 400,
        "'num_replicas' is -1; expected 0 to 256"),
    Bad("resize too many", "set_num_replicas", {"model_name": "dm", "model_version": "1", "num_replicas": 257}, 400,
        "'num_replicas' is 257; expected 0 to 256"),
    Bad("resize with a missing model directory", "set_num_replicas",
        {"model_name": "gone", "model_version": "1", "num_replicas": 1}, 400, "/missing of gone:1 does not exist"),
    Bad("replicas of unknown model", "get_num_replicas", {"model_name": "ghost", "model_version": "1"}, 404,
        "model with name 'ghost' and version '1' does not exist"),
]


def test_bad_case_ids_are_unique() -> None:
    assert len({c.id for c in BAD}) == len(BAD)


@pytest.mark.parametrize("case", BAD, ids=[c.id for c in BAD])
async def test_bad_request(admin: Admin, case: Bad) -> None:
    before = await admin.snapshot()
    raw = case.body if isinstance(case.body, bytes) else None
    reply = await admin.call("POST", f"/admin/{case.path}", None if raw is not None else case.body, raw=raw)
    assert_error(reply, case.status, case.cause)
    assert await admin.snapshot() == before  # a rejected request changes nothing


@pytest.mark.parametrize("name", ["a\x00b", "a\x1bb", "a\x7fb", "a@b", "caf\u00e9", "."],
                         ids=["NUL", "ESC", "DEL", "at", "non-ASCII", "dot"])
async def test_names_outside_the_documented_pattern_are_refused(admin: Admin, name: str) -> None:
    reply = await admin.call("POST", "/admin/add_model", with_(MODEL, model_name=name))
    assert_error(reply, 400, "is not allowed")


async def test_unknown_policy_names_what_is_installed(admin: Admin) -> None:
    reply = await admin.call("POST", "/admin/add_app", with_(APP, policy="zzz"))
    installed = admin.ctx.registry.policies.names()
    assert "any-number" in installed and "default" in installed
    assert reply.body == {"error": "Plugin error", "cause": f"no selection policy named 'zzz'; installed: {installed}"}


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p, _ in ROUTES])
async def test_wrong_method_is_a_json_405(admin: Admin, method: str, path: str) -> None:
    for wrong in (("POST", "PUT") if method == "GET" else ("GET", "DELETE")):
        reply = await admin.call(wrong, path)
        assert_error(reply, 405, f"method {wrong} is not allowed on {path}; allowed: {method}")
        assert reply.headers["Allow"] == method


@pytest.mark.parametrize(("method", "path"), [("POST", "/admin/nothing"), ("GET", "/admin"), ("GET", "/"),
                                              ("POST", "/admin/add_app/extra"), ("GET", "/admin/ping/")])
async def test_unknown_path_is_a_json_404(admin: Admin, method: str, path: str) -> None:
    assert_error(await admin.call(method, path, {}), 404, f"no such endpoint: {method} {path}")


# -- body size limit -----------------------------------------------------------------------------------

LIMIT = 1024


@pytest.fixture
async def limited(tmp_path: Path) -> AsyncIterator[Admin]:
    admin = await start_admin(tmp_path, max_body_bytes=LIMIT)
    yield admin
    await admin.client.close()


def padded_app(size: int) -> bytes:
    """An add_app body of exactly ``size`` bytes."""
    body = json.dumps(with_(APP, default_output="")).encode()
    return json.dumps(with_(APP, default_output="x" * (size - len(body)))).encode()


BODY_ROUTES = [p for m, p, _ in ROUTES if m == "POST" and p not in ("/admin/get_logs", "/admin/shutdown")]


@pytest.mark.parametrize("path", BODY_ROUTES)
async def test_body_over_the_limit_is_a_json_413(limited: Admin, path: str) -> None:
    before = await limited.snapshot()
    reply = await limited.call("POST", path, raw=padded_app(LIMIT + 1))
    assert_error(reply, 413, str(LIMIT))
    assert await limited.snapshot() == before


async def test_body_at_the_limit_is_accepted(limited: Admin) -> None:
    body = padded_app(LIMIT)
    assert len(body) == LIMIT
    reply = await limited.call("POST", "/admin/add_app", raw=body)
    assert (reply.status, reply.body) == (200, "Successfully added application with name 'x'")


async def test_chunked_body_over_the_limit_is_a_json_413(limited: Admin) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        body = padded_app(4 * LIMIT)
        for start in range(0, len(body), 256):
            yield body[start:start + 256]

    response = await limited.client.post("/admin/add_app", data=chunks())
    assert response.status == 413 and "Content-Length" not in response.request_info.headers
    assert set(await response.json()) == {"error", "cause"}
    assert await limited.store.get_app("x") is None


def test_routes_reading_no_body_are_listed() -> None:
    """get_logs and shutdown ignore their body; every other POST route reads (and size-checks) it."""
    assert {p for m, p, _ in ROUTES if m == "POST"} - set(BODY_ROUTES) == {"/admin/get_logs", "/admin/shutdown"}
