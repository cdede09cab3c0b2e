"""Every bad query gets a 4xx with a JSON body saying what was wrong and what was expected; the server keeps
serving (a good query after each bad one is still answered)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from clipper_core.testing import ServerThread, http_json
from tests import models
from tests.conftest import Deploy


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    home = tmp_path_factory.mktemp("bad-input")
    with ServerThread(home, max_body_bytes=64 * 1024) as server:
        deploy = Deploy(server, Path(home))
        deploy.app("d", input_type="doubles")
        deploy.app("i", input_type="ints")
        deploy.app("s", input_type="strings", default_output="")
        deploy.app("b", input_type="bytes", default_output="")
        deploy.app("unlinked")
        deploy("sum", 1, models.feature_sum, app="d")
        yield server


def post(server: ServerThread, path: str, raw: bytes) -> tuple[int, object]:
    return http_json(f"{server.query_url}{path}", raw=raw)


CASES: list[tuple[str, str, bytes, int, str]] = [
    ("malformed JSON", "/d/predict", b'{"input": [1.0,', 400, "Error parsing JSON"),
    ("empty body", "/d/predict", b"", 400, "request body is empty"),
    ("top-level array", "/d/predict", b"[1.0, 2.0]", 400,
     "request body is a JSON value that is an array; expected a JSON object"),
    ("top-level string", "/d/predict", b'"x"', 400, "expected a JSON object"),
    ("missing input", "/d/predict", b'{"inputs": [1.0]}', 400, "does not have required keys input or input_batch"),
    ("both keys", "/d/predict", b'{"input": [1.0], "input_batch": [[1.0]]}', 400, "send exactly one of them"),
    ("strings for doubles", "/d/predict", b'{"input": ["a", "b"]}', 400, "contains a string"),
    ("string for doubles", "/d/predict", b'{"input": "1.0"}', 400, "input is a string; expected a non-empty JSON"),
    ("bool element", "/d/predict", b'{"input": [true]}', 400, "contains a boolean"),
    ("nested arrays", "/d/predict", b'{"input": [[1.0]]}', 400, "contains an array"),
    ("empty input", "/d/predict", b'{"input": []}', 400, "input is an empty array"),
    ("empty batch", "/d/predict", b'{"input_batch": []}', 400, "'input_batch' is empty"),
    ("batch not array", "/d/predict", b'{"input_batch": {"a": 1}}', 400, "must be a JSON array of inputs"),
    ("mixed batch", "/d/predict", b'{"input_batch": [[1.0], ["x"]]}', 400, "input_batch[1] contains a string"),
    ("NaN literal", "/d/predict", b'{"input": [NaN]}', 400, "Error parsing JSON"),
    ("Infinity literal", "/d/predict", b'{"input": [Infinity]}', 400, "Error parsing JSON"),
    ("overflowing number", "/d/predict", b'{"input": [1e999]}', 400, "Error parsing JSON"),
    ("float for ints", "/i/predict", b'{"input": [1.5]}', 400, "contains a non-integer number"),
    ("int32 overflow", "/i/predict", b'{"input": [4294967296]}', 400, "signed 32-bit range"),
    ("number for strings", "/s/predict", b'{"input": 5}', 400, "expected a non-empty JSON string"),
    ("not base64", "/b/predict", b'{"input": "***"}', 400, "is not valid base64"),
    ("invalid UTF-8", "/s/predict", b'{"input": "\xff\xfe"}', 400, "Error parsing JSON"),
    ("deep nesting", "/d/predict", b'{"input": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "Error parsing JSON"),
    ("uid not int", "/d/predict", b'{"input": [1.0], "uid": "u"}', 400, "'uid' must be an integer"),
    ("version not string", "/d/predict", b'{"input": [1.0], "version": [1]}', 400, "'version' must be"),
    ("unknown version", "/d/predict", b'{"input": [1.0], "version": "7"}', 400,
     "Requested version: 7 does not exist for model: sum"),
    ("version without model", "/unlinked/predict", b'{"input": [1.0], "version": "1"}', 400, "has no linked model"),
    ("unknown app", "/ghost/predict", b'{"input": [1.0]}', 404, "application 'ghost' does not exist"),
    ("unknown path", "/d/predict/extra", b'{"input": [1.0]}', 404, "no such endpoint"),
    ("body too large", "/d/predict", b'{"input": [' + b"1.0," * 20000 + b"1.0]}", 413, "body"),
    ("update without label", "/d/update", b'{"uid": 1, "input": [1.0]}', 400, "required key: label"),
    ("update label string", "/d/update", b'{"uid": 1, "input": [1.0], "label": "x"}', 400, "'label' must be"),
]


@pytest.mark.parametrize(("path", "raw", "status", "cause"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_query_is_a_clear_4xx_and_the_server_keeps_serving(server: ServerThread, path: str, raw: bytes,
                                                               status: int, cause: str) -> None:
    got_status, body = post(server, path, raw)
    assert got_status == status, body
    assert isinstance(body, dict) and set(body) == {"error", "cause"}, body
    assert cause in body["cause"], body["cause"]
    ok_status, ok = server.predict("d", {"input": [1.0, 2.0]})
    assert ok_status == 200 and ok["output"] == 3.0  # type: ignore[index]


def test_wrong_method_is_405_json(server: ServerThread) -> None:
    status, body = http_json(f"{server.query_url}/d/predict", method="GET")
    assert status == 405
    assert body["error"] == "Method Not Allowed" and "allowed: POST" in body["cause"]  # type: ignore[index]


def test_good_bytes_and_strings_are_accepted(server: ServerThread) -> None:
    # unlinked models answer the default at once; what matters here is that decoding accepted them
    assert server.predict("b", {"input": base64.b64encode(b"ok").decode()})[0] == 200
    assert server.predict("s", {"input": "ok"})[0] == 200
