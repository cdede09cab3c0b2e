"""The query port's front door: ``POST /{app}/predict`` and ``POST /v2/models/{app}[/versions/{v}]/infer``
straight to their handlers answer exactly as the routed application does (a trailing slash or a query string
still goes through the router), errors included; everything else is the application's."""

from __future__ import annotations

import json
import socket
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from clipper_core.errors import AppNotFound
from clipper_core.frontend.front_door import front_door
from clipper_core.frontend.keys import QUERY_PATH
from clipper_core.http_api import HANDLE_EXCEPTION, error_middleware
from clipper_core.testing import ServerThread, http_json

BODY = {"input": [1.0, 2.0, 3.5]}


def _without_query_id(answer: Any) -> Any:
    return {k: v for k, v in answer.items() if k != "query_id"}


@pytest.mark.parametrize("routed", ["/hello-world/predict/", "/hello-world/predict?trace=1"])
def test_the_front_door_answers_as_the_router_does(query_server: ServerThread, routed: str) -> None:
    front = http_json(f"{query_server.query_url}/hello-world/predict", BODY)
    other = http_json(f"{query_server.query_url}{routed}", BODY)
    assert front[0] == other[0] == 200
    assert _without_query_id(front[1]) == _without_query_id(other[1]) == {"output": 6.5, "default": False}


@pytest.mark.parametrize(("body", "raw"), [(BODY, None), (None, b"{not json"), (None, b"[1, 2]"), ({"x": 1}, None)])
def test_its_errors_are_the_routers_errors(query_server: ServerThread, body: Any, raw: bytes | None) -> None:
    for app in ("no-such-app", "hello-world"):
        front = http_json(f"{query_server.query_url}/{app}/predict", body, raw=raw)
        routed = http_json(f"{query_server.query_url}/{app}/predict/", body, raw=raw)
        if app == "hello-world" and body is BODY:
            continue
        assert front == routed
        assert front[0] in (400, 404)
        assert set(front[1]) == {"error", "cause"}


V2_BODY = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1.0, 2.0, 3.5]}]}


@pytest.mark.parametrize("model", ["hello-world", "hello-world/versions/1", "no-such-app", "hello-world/versions/9"])
def test_v2_infer_through_the_front_door_answers_as_the_router_does(query_server: ServerThread, model: str) -> None:
    front = http_json(f"{query_server.query_url}/v2/models/{model}/infer", V2_BODY)
    routed = http_json(f"{query_server.query_url}/v2/models/{model}/infer?via=router", V2_BODY)
    for answer in (front[1], routed[1]):
        for output in answer.get("outputs", ()):
            del output["parameters"]["query_id"]
    assert front == routed
    if model.startswith("hello-world/versions/9") or model == "no-such-app":
        assert front[0] in (400, 404)
    else:
        assert front[0] == 200
        assert front[1]["outputs"][0]["data"] == [6.5]


def test_other_methods_and_paths_are_the_applications(query_server: ServerThread) -> None:
    status, answer = http_json(f"{query_server.query_url}/hello-world/predict", method="GET")
    assert status == 405
    assert "allowed: POST" in answer["cause"]
    status, answer = http_json(f"{query_server.query_url}/a/b/predict", BODY)
    assert status == 404
    assert answer["cause"] == "no such endpoint: POST /a/b/predict"


class _Failing:
    """A query path whose apps raise what the test says."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc
        self.snapshot = SimpleNamespace(apps={})  # no app has a guard (issue #18's keys and limits)

    def open_app(self, name: str) -> Any:
        raise self.exc


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    assert runner.server is not None
    runner.server.request_handler = front_door(app)(runner.server.request_handler)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


async def test_an_unexpected_error_goes_to_the_exception_hook_then_a_json_500() -> None:
    failing = _Failing(RuntimeError("boom"))
    app = web.Application(middlewares=[error_middleware])
    app[QUERY_PATH] = failing  # type: ignore[misc]
    seen: list[BaseException] = []

    def hook(app: web.Application, request: web.BaseRequest, exception: BaseException) -> Any:
        seen.append(exception)
        return web.json_response({"replaced": True}, status=502) if len(seen) == 1 else None

    app[HANDLE_EXCEPTION] = hook
    runner, url = await _serve(app)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{url}/m/predict", json=BODY) as response:
                assert (response.status, await response.json()) == (502, {"replaced": True})
            async with session.post(f"{url}/m/predict", json=BODY) as response:
                assert response.status == 500
                assert await response.json() == {"error": "Internal error", "cause": "RuntimeError: boom"}
            failing.exc = AppNotFound("m")
            async with session.post(f"{url}/m/predict", json=BODY) as response:
                assert response.status == 404
                assert "m" in (await response.json())["cause"]
    finally:
        await runner.cleanup()
    assert [type(e) for e in seen] == [RuntimeError, RuntimeError]


def test_a_client_that_expects_100_continue_gets_it(query_server: ServerThread) -> None:
    """``Expect: 100-continue`` (curl sends it for large bodies): the router answers it, so such a request goes
    the routed way; sent straight to the handler, it waited out the client's expect timeout."""
    host, port = query_server.query_url.removeprefix("http://").rsplit(":", 1)
    body = json.dumps(BODY).encode()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"POST /hello-world/predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode())
        sock.settimeout(2)
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        answer = b""
        while b"6.5" not in answer:
            chunk = sock.recv(4096)
            assert chunk, answer
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")
