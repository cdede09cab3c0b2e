"""The published OpenAPI documents (clipper_core/openapi.py): they are valid OpenAPI 3, they list exactly the routes
each app registers, schemathesis finds no server error and no answer outside them on a live server, and the server
bugs it found stay fixed. Random JSON or bytes (hypothesis) are test_openapi_random.py's; the live servers
(``query_server``, ``admin_server``) are tests/conftest.py's."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import settings
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
from tests.openapi_apps import APPS, BANDIT, SETTINGS, TOO_BIG, VERSION

TOKEN = "s3cret-admin-token"


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
