"""The published OpenAPI documents: they cover every route, schemathesis finds no server error and no answer
outside the documents, and random JSON never breaks either API (hypothesis)."""

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
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from clipper_core.context import ServerContext
from clipper_core.openapi import admin_openapi, query_openapi
from clipper_core.testing import ServerThread, http_json
from tests import models
from tests.conftest import Deploy

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
query_schema = schemathesis.openapi.from_dict(query_openapi())
admin_schema = schemathesis.openapi.from_dict(admin_openapi()).exclude(path="/admin/shutdown")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    home = tmp_path_factory.mktemp("openapi")
    with ServerThread(home, max_body_bytes=64 * 1024) as server:
        deploy = Deploy(server, Path(home))
        deploy.app("d", input_type="doubles")
        deploy.app("s", input_type="strings", default_output="")
        deploy("sum", 1, models.feature_sum, app="d")
        yield server


def _canonical(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_every_route_is_documented_and_every_documented_path_exists(server: ServerThread) -> None:
    from clipper_core.frontend import create_query_app
    from clipper_core.management import create_admin_app

    ctx: ServerContext = server.server.ctx
    for app, doc in ((create_query_app(ctx), query_openapi()), (create_admin_app(ctx), admin_openapi())):
        routes = {(r.method.lower(), _canonical(r.resource.canonical)) for r in app.router.routes()
                  if r.method != "HEAD" and r.resource is not None}
        documented = {(m, _canonical(p)) for p, ops in doc["paths"].items() for m in ops}
        assert routes == documented


def test_documents_are_served(server: ServerThread) -> None:
    assert http_json(f"{server.query_url}/openapi.json")[1] == json.loads(json.dumps(query_openapi()))
    assert http_json(f"{server.admin_url}/openapi.json")[1]["info"]["title"] == "clipper management API"


@query_schema.parametrize()
@settings(max_examples=25, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
def test_query_api_conforms(case: Any, server: ServerThread) -> None:
    case.call_and_validate(base_url=server.query_url, checks=CHECKS)


@admin_schema.parametrize()
@settings(max_examples=15, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
def test_admin_api_conforms(case: Any, server: ServerThread) -> None:
    case.call_and_validate(base_url=server.admin_url, checks=CHECKS)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30)
BODIES = JSON_VALUES | st.fixed_dictionaries({"input": JSON_VALUES}) | st.fixed_dictionaries(
    {"input_batch": st.lists(JSON_VALUES, max_size=4)}) | st.fixed_dictionaries(
    {"uid": JSON_VALUES, "input": JSON_VALUES, "label": JSON_VALUES})


def _alive(server: ServerThread) -> None:
    assert http_json(f"{server.query_url}/health")[0] == 200
    assert http_json(f"{server.admin_url}/admin/ping")[0] == 200


@settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=BODIES, path=st.sampled_from(["/d/predict", "/s/predict", "/d/update", "/ghost/predict"]))
def test_random_json_at_the_query_api(server: ServerThread, body: Any, path: str) -> None:
    status, answer = http_json(f"{server.query_url}{path}", raw=json.dumps(body).encode())
    assert 200 <= status < 300 or (400 <= status < 500 and set(answer) == {"error", "cause"}), (status, answer)
    _alive(server)


@settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=JSON_VALUES, endpoint=st.sampled_from(["add_app", "add_model", "add_model_links", "get_model",
                                                   "set_model_version", "get_all_models", "get_container"]))
def test_random_json_at_the_admin_api(server: ServerThread, body: Any, endpoint: str) -> None:
    status, answer = http_json(f"{server.admin_url}/admin/{endpoint}", raw=json.dumps(body).encode())
    assert 200 <= status < 300 or (400 <= status < 500 and set(answer) == {"error", "cause"}), (status, answer)
    _alive(server)


@settings(max_examples=100, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=st.binary(max_size=200))
def test_random_bytes(server: ServerThread, raw: bytes) -> None:
    for url in (f"{server.query_url}/d/predict", f"{server.admin_url}/admin/add_app"):
        status, answer = http_json(url, raw=raw)
        assert 200 <= status < 300 or (400 <= status < 500 and set(answer) == {"error", "cause"}), (status, answer)
    _alive(server)
