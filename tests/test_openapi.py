"""The published OpenAPI documents (clipper_core/openapi.py): they are valid OpenAPI 3, they list exactly the routes
each app registers, schemathesis finds no server error and no answer outside them on a live server, and random
JSON or bytes (hypothesis) never get anything but a 2xx or a JSON 4xx, nor break either API."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate as validate_openapi
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from clipper_core.frontend.openapi import query_openapi
from clipper_core.management.openapi import admin_openapi
from clipper_core.testing import ServerThread, http_json, wait_until
from tests import models
from tests.conftest import Deploy

# The apps the documents' examples name (Clipper's quickstart), and one app of every other input type.
APPS = {"hello-world": "doubles", "ints": "integers", "floats": "floats", "strings": "strings", "bytes": "bytes"}
MODEL, VERSION = "sum-model", "1"
BANDIT = "bandit"
TOKEN = "s3cret-admin-token"
SETTINGS = settings(derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))


def _deploy_fixture_apps(server: ServerThread, home: Path) -> None:
    deploy = Deploy(server, home)
    for name, input_type in APPS.items():
        deploy.app(name, input_type=input_type, default_output="" if input_type in ("strings", "bytes") else "-1.0")
    deploy(MODEL, VERSION, models.feature_sum, app="hello-world")
    deploy.app(BANDIT, policy="exp3")  # a policy with per-user state (kept in the state store)
    deploy.admin("add_model_links", {"app_name": BANDIT, "model_names": [MODEL]})


@pytest.fixture(scope="module")
def query_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """The server the query API is tested on: nothing here calls the admin API after setup."""
    home = tmp_path_factory.mktemp("openapi-query")
    with ServerThread(home, max_body_bytes=64 * 1024) as server:
        _deploy_fixture_apps(server, home)
        yield server


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """The server the admin API is tested on (examples may create, delete and resize anything here)."""
    home = tmp_path_factory.mktemp("openapi-admin")
    with ServerThread(home, max_body_bytes=64 * 1024) as server:
        _deploy_fixture_apps(server, home)
        yield server


# -- the documents ------------------------------------------------------------------------------------

DOCUMENTS = {"query": query_openapi, "admin": admin_openapi}
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.mark.parametrize("api", sorted(DOCUMENTS))
def test_documents_are_valid_openapi_3(api: str) -> None:
    doc = DOCUMENTS[api]()
    validate_openapi(doc)
    assert doc["openapi"] == "3.0.3"
    assert doc["servers"] == [{"url": "/"}]
    assert json.loads(json.dumps(doc)) == doc, "plain JSON data only"
    responses = doc["components"]["responses"]
    assert {name for name in responses} >= {"BadRequest", "NotFound", "MethodNotAllowed", "PayloadTooLarge"}
    for response in responses.values():
        assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            assert method in METHODS
            assert "200" in operation["responses"], (method, path)
            for code, response in operation["responses"].items():
                if 400 <= int(code) < 500:  # every error is the Error object
                    assert response["$ref"].startswith("#/components/responses/"), (method, path, code)
            params = {p["name"]: p for p in operation.get("parameters", [])}
            assert set(params) == set(re.findall(r"\{([^}]+)\}", path)), (method, path)
            for param in params.values():
                assert param["in"] == "path" and param["required"] and param["schema"]["pattern"] == "^[^/]+$"
            if method == "post":
                assert "application/json" in operation["requestBody"]["content"]


def _routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route, path parameters renamed alike; aiohttp adds a HEAD to each GET, which the
    documents leave implicit (checked here to have its GET)."""
    routes = {(r.method.lower(), re.sub(r"\{[^}]+\}", "{}", r.resource.canonical))
              for r in app.router.routes() if r.resource is not None}
    heads = {path for method, path in routes if method == "head"}
    assert heads <= {path for method, path in routes if method == "get"}
    return {(method, path) for method, path in routes if method != "head"}


def _documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, re.sub(r"\{[^}]+\}", "{}", path)) for path, ops in doc["paths"].items() for method in ops}


def test_every_route_is_documented_and_every_documented_route_exists(query_server: ServerThread) -> None:
    from clipper_core.frontend import create_query_app
    from clipper_core.management import create_admin_app

    ctx = query_server.server.ctx
    assert _routes(create_query_app(ctx)) == _documented(query_openapi())
    assert _routes(create_admin_app(ctx)) == _documented(admin_openapi())


def test_both_documents_are_served(query_server: ServerThread) -> None:
    assert http_json(f"{query_server.query_url}/openapi.json") == (200, query_openapi())
    assert http_json(f"{query_server.admin_url}/openapi.json") == (200, admin_openapi())


def test_the_admin_document_needs_the_admin_token_and_shutdown_answers_as_documented(tmp_path: Path) -> None:
    with ServerThread(tmp_path, admin_token=TOKEN) as server:
        status, answer = http_json(f"{server.admin_url}/openapi.json")
        assert status == 401 and set(answer) == {"error", "cause"}
        assert http_json(f"{server.admin_url}/openapi.json", token="wrong")[0] == 401
        assert http_json(f"{server.admin_url}/openapi.json", token=TOKEN) == (200, admin_openapi())
        assert http_json(f"{server.query_url}/openapi.json") == (200, query_openapi())  # the query API has none
        # /admin/shutdown is left out of the schemathesis run below (it stops the server): check it here
        case = schemathesis.openapi.from_dict(admin_openapi())["/admin/shutdown"]["POST"].Case(body={})
        case.call_and_validate(base_url=server.admin_url, headers={"Authorization": f"Bearer {TOKEN}"},
                               checks=CHECKS)
        thread = server._thread
        assert thread is not None
        wait_until(lambda: not thread.is_alive(), 30, what="the server to stop after /admin/shutdown")


# -- schemathesis against a live server ----------------------------------------------------------------

def answers_json(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every answer but a documented text/plain one is JSON; every 4xx is exactly {"error": str, "cause": str}."""
    media = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    if media == "text/plain" and response.status_code == 200:
        return None
    assert media == "application/json", f"{response.status_code} answer of type {media!r}"
    body = json.loads(response.content)
    if 400 <= response.status_code < 500:
        assert isinstance(body, dict) and set(body) == {"error", "cause"}, body
        assert all(isinstance(v, str) for v in body.values()), body
    return None


def no_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 5xx, except a 503 the operation documents (overload, shutdown, a V2 model that is not ready)."""
    documented = DOCUMENTED[(case.operation.method.lower(), case.operation.path)]
    if response.status_code >= 500 and not (response.status_code == 503 and "503" in documented):
        return not_a_server_error(ctx, response, case)  # reports it as schemathesis' "Server error"
    return None


DOCUMENTED = {(method, path): set(op["responses"]) for doc in (query_openapi(), admin_openapi())
              for path, ops in doc["paths"].items() for method, op in ops.items()}
CHECKS = [no_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          unsupported_method, answers_json]
query_schema = schemathesis.openapi.from_dict(query_openapi())
admin_schema = schemathesis.openapi.from_dict(admin_openapi()).exclude(path="/admin/shutdown")


@query_schema.hook
def before_generate_path_parameters(context: Any, strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Half of the generated paths name a registered app (and the deployed version), not a random one."""
    def registered(params: Any) -> st.SearchStrategy[Any]:
        if not isinstance(params, dict) or "app" not in params:
            return st.just(params)
        version = {"version": st.sampled_from([VERSION, "2"])} if "version" in params else {}
        return st.fixed_dictionaries({"app": st.sampled_from([*sorted(APPS), BANDIT]), **version}).map(
            lambda fixed: {**params, **fixed})

    return strategy | strategy.flatmap(registered)


# -- fixed server bugs, each sent exactly (found by this suite, see the xfail history in git) -----------------

INT64_MAX = 2**63 - 1
TOO_BIG = 2**63  # orjson reads integers up to 2**64 - 1 as int; SQLite stores at most 2**63 - 1


@pytest.mark.parametrize("key", ["uid", "query_id"])
def test_update_with_an_id_beyond_int64_is_a_400(query_server: ServerThread, key: str) -> None:
    body = {"input": [1.1, 2.2, 3.3], "label": 6.6, key: TOO_BIG}
    status, answer = http_json(f"{query_server.query_url}/hello-world/update", body)
    assert status == 400 and set(answer) == {"error", "cause"}, (status, answer)


@pytest.mark.parametrize("key", ["batch_size", "batch_wait_timeout_micros"])
def test_add_model_with_a_number_beyond_int64_is_a_400(admin_server: ServerThread, key: str) -> None:
    body = {"model_name": f"big-{key}", "model_version": "1", "input_type": "doubles", "batch_size": 1,
            key: TOO_BIG}
    status, answer = http_json(f"{admin_server.admin_url}/admin/add_model", body)
    assert status == 400 and set(answer) == {"error", "cause"}, (status, answer)


@pytest.mark.parametrize("path, body", [
    (f"/{BANDIT}/predict", {"input": [1.1, 2.2, 3.3], "uid": TOO_BIG}),
    (f"/v2/models/{BANDIT}/infer", {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64",
                                                "data": [1.1, 2.2, 3.3]}], "parameters": {"uid": TOO_BIG}})])
def test_a_stateful_policy_with_a_uid_beyond_int64_is_a_400(query_server: ServerThread, path: str, body: Any) -> None:
    status, answer = http_json(f"{query_server.query_url}{path}", body)
    assert status == 400 and set(answer) == {"error", "cause"}, (status, answer)


@pytest.mark.parametrize("suffix", ["", "/ready"])
def test_v2_per_version_endpoints_check_the_version(query_server: ServerThread, suffix: str) -> None:
    assert http_json(f"{query_server.query_url}/v2/models/hello-world/versions/{VERSION}{suffix}")[0] == 200
    status, answer = http_json(f"{query_server.query_url}/v2/models/hello-world/versions/no-such-version{suffix}")
    assert status == 404 and set(answer) == {"error", "cause"}, (status, answer)


@pytest.mark.parametrize("endpoint", ["add_app", "set_app_policy"])
def test_admin_refuses_a_policy_config_the_policy_rejects(admin_server: ServerThread, endpoint: str) -> None:
    name = f"bad-config-{endpoint}"
    app = {"name": name, "input_type": "doubles", "default_output": "-1.0", "latency_slo_micros": 100_000}
    assert http_json(f"{admin_server.admin_url}/admin/add_app", app)[0] in (200, 400)  # 400: it exists
    body: dict[str, Any] = {"name": name, "policy": "exp3", "policy_config": {"gamma": "abc"}}
    if endpoint == "add_app":
        body.update(name=f"{name}-new", input_type="doubles", default_output="-1.0", latency_slo_micros=100_000)
    status, answer = http_json(f"{admin_server.admin_url}/admin/{endpoint}", body)
    assert status == 400 and set(answer) == {"error", "cause"}, (status, answer)


@query_schema.parametrize()
@settings(SETTINGS, max_examples=25)
def test_query_api_conforms_to_its_document(case: Any, query_server: ServerThread) -> None:
    case.call_and_validate(base_url=query_server.query_url, checks=CHECKS)


@admin_schema.parametrize()
@settings(SETTINGS, max_examples=25)
def test_admin_api_conforms_to_its_document(case: Any, admin_server: ServerThread) -> None:
    if case.operation.path == "/admin/set_num_replicas" and isinstance(case.body, dict):
        replicas = case.body.get("num_replicas")
        if type(replicas) is int and replicas > 2:
            case.body["num_replicas"] = 2  # a real supervisor: don't start hundreds of processes
    case.call_and_validate(base_url=admin_server.admin_url, checks=CHECKS)


# -- hypothesis: random JSON and bytes at both APIs -----------------------------------------------------

TEXT = st.text(st.characters(codec="utf-8") | st.characters(categories=["Cs"]), max_size=12)
EDGE_INTS = st.sampled_from([0, 1, -1, 2**31 - 1, 2**31, -(2**31) - 1, INT64_MAX, TOO_BIG, 2**64 - 1, 2**64,
                             -INT64_MAX - 1, -INT64_MAX - 2, 10**30, -(10**300)])
INTS = st.integers() | EDGE_INTS | st.integers(min_value=2**64, max_value=2**1000)
NUMBERS = INTS | st.floats(allow_nan=False, allow_infinity=False)
SCALARS = st.none() | st.booleans() | NUMBERS | TEXT | st.sampled_from(["", "aGVsbG8=", "1.5", "d", "x" * 300])
JSON = st.recursive(SCALARS, lambda children: st.lists(children, max_size=5)
                    | st.dictionaries(TEXT, children, max_size=5), max_leaves=25)


@st.composite
def _deep(draw: st.DrawFn) -> Any:
    """A JSON value nested up to 60 levels deep in arrays and objects."""
    value = draw(JSON)
    for wrapper in draw(st.lists(st.sampled_from(["list", "dict"]), max_size=60)):
        value = [value] if wrapper == "list" else {draw(st.sampled_from(["input", "a", ""])): value}
    return value


VALUES = JSON | _deep()


def _mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` three times in four, else ``bad`` (``a | b`` would weigh every branch of both alike)."""
    return st.sampled_from([True, True, True, False]).flatmap(lambda pick: good if pick else bad)


NUMBER_LISTS = st.lists(st.integers(-100, 100) | st.floats(-1e6, 1e6) | NUMBERS, min_size=1, max_size=6)
INPUTS = _mostly(NUMBER_LISTS | TEXT | st.sampled_from(["aGVsbG8=", "not base64!", "é", ""]), VALUES)
TENSOR = st.fixed_dictionaries(
    {"name": st.just("input") | TEXT, "datatype": _mostly(st.sampled_from(["FP64", "FP32", "INT32", "BYTES"]),
                                                            VALUES)},
    optional={"shape": _mostly(st.lists(st.integers(-1, 4), min_size=1, max_size=2), VALUES),
              "data": _mostly(NUMBER_LISTS | st.lists(TEXT, max_size=4) | st.lists(NUMBER_LISTS, max_size=3),
                              VALUES),
              "parameters": VALUES})
UIDS = _mostly(st.integers(0, 3) | INTS, VALUES)
CHAOS = VALUES | st.dictionaries(TEXT, VALUES, max_size=5)


def _query_bodies(path: str) -> st.SearchStrategy[Any]:
    """Mostly well-formed requests for ``path`` with random values (so they get past the first check), or chaos."""
    if "/v2/" in path:
        near = st.fixed_dictionaries({"inputs": _mostly(st.lists(TENSOR, min_size=1, max_size=2), VALUES)},
                                     optional={"id": _mostly(TEXT, VALUES),
                                               "parameters": _mostly(st.fixed_dictionaries({}, optional={
                                                   "uid": UIDS}), VALUES)})
    elif "update" in path:
        near = st.fixed_dictionaries({"input": INPUTS, "label": _mostly(NUMBERS, VALUES)},
                                     optional={"uid": UIDS, "query_id": _mostly(INTS, VALUES), "extra": VALUES})
    else:
        near = st.fixed_dictionaries({"input": INPUTS}, optional={
            "uid": UIDS, "version": _mostly(st.sampled_from([VERSION, "2", ""]) | INTS, VALUES)}) | (
            st.fixed_dictionaries({"input_batch": _mostly(st.lists(INPUTS, min_size=1, max_size=4), VALUES)},
                                  optional={"uid": UIDS}))
    return _mostly(near, CHAOS)


NAMES = _mostly(st.sampled_from([*APPS, BANDIT, MODEL, "ghost", ".", ".."])
                | st.from_regex(r"[A-Za-z0-9._-]{1,12}", fullmatch=True), TEXT | VALUES)
ADMIN_FIELDS: dict[str, st.SearchStrategy[Any]] = {key: _mostly(good, VALUES) for key, good in {
    "name": NAMES, "app_name": NAMES, "model_name": NAMES, "model_version": st.sampled_from([VERSION, "2"]) | NAMES,
    "model_names": st.lists(NAMES, min_size=1, max_size=3),
    "input_type": st.sampled_from(["doubles", "d", "Ints", " strings ", "bytes", "tensors"]),
    "default_output": TEXT, "latency_slo_micros": st.integers(1, 10**6) | INTS,
    "policy": st.sampled_from(["default", "exp3", "ucb1", "no-such-policy"]),
    "policy_config": st.dictionaries(st.sampled_from(["gamma", "seed", "k", "weights"]) | TEXT, VALUES, max_size=3),
    "batch_size": st.sampled_from([-1, 1, 8]) | INTS, "batch_wait_timeout_micros": st.integers(0, 1000) | INTS,
    "replica_id": st.integers(0, 2) | INTS, "uid": UIDS, "labels": st.lists(TEXT, max_size=3),
    "container_name": TEXT, "cache_enabled": st.booleans(), "verbose": st.booleans(),
}.items()}
ADMIN_REQUIRED = {
    "add_app": ["name", "input_type", "default_output", "latency_slo_micros"], "delete_app": ["name"],
    "set_app_policy": ["name", "policy"], "get_application": ["name"], "get_state": ["app_name"],
    "add_model_links": ["app_name", "model_names"], "delete_model_links": ["app_name", "model_names"],
    "get_linked_models": ["app_name"], "add_model": ["model_name", "model_version", "input_type", "batch_size"],
    "set_model_version": ["model_name", "model_version"], "get_model": ["model_name", "model_version"],
    "get_container": ["model_name", "model_version", "replica_id"], "get_all_models": [],
    "get_all_applications": [],
}


def _admin_bodies(endpoint: str) -> st.SearchStrategy[Any]:
    """The endpoint's required fields with random (mostly plausible) values, a few optional ones, or chaos."""
    required = ADMIN_REQUIRED[endpoint]
    optional = {key: ADMIN_FIELDS[key] for key in ("policy", "policy_config", "labels", "batch_wait_timeout_micros",
                                                   "uid", "cache_enabled", "verbose") if key not in required}
    near = st.fixed_dictionaries({key: ADMIN_FIELDS[key] for key in required}, optional=optional)
    return _mostly(near, CHAOS)


QUERY_PATHS = [f"/{app}/{verb}" for app in [*APPS, BANDIT] for verb in ("predict", "update")] + [
    "/ghost/predict", "/hello-world/predict/", "/hello-world/update/", "/v2/models/hello-world/infer",
    "/v2/models/strings/infer", f"/v2/models/{BANDIT}/infer", f"/v2/models/hello-world/versions/{VERSION}/infer"]
QUERY_REQUESTS = st.sampled_from(QUERY_PATHS).flatmap(lambda path: st.tuples(st.just(path), _query_bodies(path)))
ADMIN_REQUESTS = st.sampled_from(sorted(ADMIN_REQUIRED)).flatmap(
    lambda endpoint: st.tuples(st.just(f"/admin/{endpoint}"), _admin_bodies(endpoint)))


def _encode(body: Any, ascii_only: bool) -> bytes:
    """JSON text; with non-ASCII left raw, lone surrogates become invalid UTF-8 (the server must refuse it)."""
    return json.dumps(body, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def _check(status: int, answer: Any, *, text_ok: bool) -> None:
    """2xx (JSON, or text where the admin API answers text), or 4xx with exactly {"error": str, "cause": str}."""
    if 400 <= status < 500:
        assert isinstance(answer, dict) and set(answer) == {"error", "cause"}, (status, answer)
        assert isinstance(answer["error"], str) and isinstance(answer["cause"], str), answer
    else:
        assert 200 <= status < 300, (status, answer)
        assert text_ok or isinstance(answer, (dict, list)), answer


def _alive(*servers: ServerThread) -> None:
    for server in servers:
        assert http_json(f"{server.query_url}/health")[0] == 200
        assert http_json(f"{server.admin_url}/admin/ping") == (200, "PONG")


@settings(SETTINGS, max_examples=200)
@given(call=QUERY_REQUESTS, ascii_only=st.booleans())
def test_random_json_at_the_query_api(query_server: ServerThread, call: tuple[str, Any], ascii_only: bool) -> None:
    path, body = call
    status, answer = http_json(f"{query_server.query_url}{path}", raw=_encode(body, ascii_only))
    _check(status, answer, text_ok=False)
    _alive(query_server)


@settings(SETTINGS, max_examples=200)
@given(call=ADMIN_REQUESTS, ascii_only=st.booleans())
def test_random_json_at_the_admin_api(admin_server: ServerThread, call: tuple[str, Any], ascii_only: bool) -> None:
    path, body = call
    status, answer = http_json(f"{admin_server.admin_url}{path}", raw=_encode(body, ascii_only))
    _check(status, answer, text_ok=True)
    _alive(admin_server)


RAW = (st.binary(max_size=300)
       | st.sampled_from([b"", b"NaN", b"Infinity", b'{"input": [NaN]}', b'{"input": [1e400]}', b"[" * 2000,
                          b'{"input": [1, 2', b'"\\ud800"', b'{"input": "\xff"}', b"\xef\xbb\xbf{}", b"null",
                          b"{}", b"[]", b'{"input": [1], "input": "x"}', b'{"input": [1e308, 1e308]}'])
       | st.integers(60_000, 70_000).map(lambda n: b'{"input": "' + b"a" * n + b'"}'))  # 64 KiB is the limit


@settings(SETTINGS, max_examples=200)
@given(raw=RAW, path=st.sampled_from(["/hello-world/predict", "/strings/update", "/v2/models/ints/infer"]),
       endpoint=st.sampled_from(["add_app", "add_model", "get_application", "delete_model_links"]))
def test_random_bytes_at_both_apis(query_server: ServerThread, admin_server: ServerThread, raw: bytes, path: str,
                                   endpoint: str) -> None:
    status, answer = http_json(f"{query_server.query_url}{path}", raw=raw)
    _check(status, answer, text_ok=False)
    status, answer = http_json(f"{admin_server.admin_url}/admin/{endpoint}", raw=raw)
    _check(status, answer, text_ok=True)
    _alive(query_server, admin_server)
