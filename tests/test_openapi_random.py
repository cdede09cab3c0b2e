"""Random JSON or bytes (hypothesis) at the query and admin APIs of live servers (``query_server``,
``admin_server``, tests/conftest.py's) never get anything but a 2xx or a JSON 4xx, nor break either API."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from clipper_core.testing import ServerThread, http_json
from tests.conftest import TENANT
from tests.openapi_apps import APPS, BANDIT, INT64_MAX, MODEL, SETTINGS, TOO_BIG, VERSION

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


LIMIT_NAMES = ["requests_per_second", "requests_burst", "inputs_per_second", "inputs_burst", "max_concurrent",
               "max_input_length", "max_batch_size", "max_body_bytes"]
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
    "version": st.sampled_from([VERSION, "2"]) | INTS | NAMES,
    "label": TEXT, "key_id": st.sampled_from(["0123456789ab", "ffffffffffff", "ABCDEF012345", ""]) | TEXT,
    "priority": st.sampled_from(["high", "normal", "low", "urgent"]), "require_api_key": st.booleans(),
    "limits": st.none() | st.dictionaries(st.sampled_from(LIMIT_NAMES) | TEXT, st.none() | NUMBERS, max_size=4),
}.items()}
ADMIN_REQUIRED = {
    "add_app": ["name", "input_type", "default_output", "latency_slo_micros"], "delete_app": ["name"],
    "set_app_policy": ["name", "policy"], "get_application": ["name"], "get_state": ["app_name"],
    "add_model_links": ["app_name", "model_names"], "delete_model_links": ["app_name", "model_names"],
    "get_linked_models": ["app_name"], "add_model": ["model_name", "model_version", "input_type", "batch_size"],
    "set_model_version": ["model_name", "model_version"], "get_model": ["model_name", "model_version"],
    "get_container": ["model_name", "model_version", "replica_id"], "get_all_models": [],
    "get_all_applications": [],
    "start_rollout": ["model_name", "version"], "get_rollout": ["model_name"], "get_rollouts": [],
    "pause_rollout": ["model_name"], "resume_rollout": ["model_name"], "abort_rollout": ["model_name"],
    "promote_rollout": ["model_name"],
    "add_api_key": ["app_name", "label", "limits"], "get_api_keys": ["app_name"], "revoke_api_key": ["key_id"],
    "set_app_limits": ["app_name", "require_api_key", "priority", "limits"], "get_app_limits": ["app_name"],
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
    "/v2/models/strings/infer", f"/v2/models/{BANDIT}/infer", f"/v2/models/hello-world/versions/{VERSION}/infer",
    f"/{TENANT}/predict", f"/v2/models/{TENANT}/infer", f"/{TENANT}/predict", f"/v2/models/{TENANT}/infer"]
VALID_KEY = "(the tenant app's key)"
"""Replaced by the query server's key of app ``tenant`` when the request is sent."""
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=70)
"""What a header value can be (visible ASCII: control characters are refused by the HTTP parser, before clipper)."""
KEY_VALUES = st.sampled_from([VALID_KEY, "", " ", "clk_0123456789ab_" + "A" * 43, "clk_", "Bearer"]) | HEADER_TEXT
HEADERS = st.fixed_dictionaries({}, optional={
    "X-API-Key": KEY_VALUES, "Authorization": KEY_VALUES | KEY_VALUES.map(lambda key: f"Bearer {key}")})
"""Keys on the query API (issue #18): the valid one, malformed, unknown, empty, random text."""
QUERY_REQUESTS = st.sampled_from(QUERY_PATHS).flatmap(
    lambda path: st.tuples(st.just(path), _query_bodies(path), HEADERS))
ADMIN_REQUESTS = st.sampled_from(sorted(ADMIN_REQUIRED)).flatmap(
    lambda endpoint: st.tuples(st.just(f"/admin/{endpoint}"), _admin_bodies(endpoint)))


def _encode(body: Any, ascii_only: bool) -> bytes:
    """JSON text; with non-ASCII left raw, lone surrogates become invalid UTF-8 (the server must refuse it)."""
    return json.dumps(body, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def _check(status: int, answer: Any, *, text_ok: bool) -> None:
    """2xx (JSON, or text where the admin API answers text), or 4xx with exactly {"error": str, "cause": str}
    (and a 429 the limit and its scope)."""
    if 400 <= status < 500:
        expected = {"error", "cause", "limit", "scope"} if status == 429 else {"error", "cause"}
        assert isinstance(answer, dict) and set(answer) == expected, (status, answer)
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
def test_random_json_at_the_query_api(query_server: ServerThread, call: tuple[str, Any, dict[str, str]],
                                      ascii_only: bool) -> None:
    path, body, headers = call
    key = query_server.tenant_key  # type: ignore[attr-defined]
    sent = {name: value.replace(VALID_KEY, key) for name, value in headers.items()}
    status, answer = http_json(f"{query_server.query_url}{path}", raw=_encode(body, ascii_only), headers=sent)
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
