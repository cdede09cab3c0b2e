"""Many teams on one clipper (issue #18) against real servers and replicas: API keys on REST, V2 and gRPC; 429,
413 and 400 answers as clients see them; priority classes with a model at capacity; a client that disconnects
takes its queued work with it; and, over Redis, two frontends that refuse a revoked key within a second and
share an app's rate limit."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc import aio

from clipper_core.frontend.grpc import grpc_predict_v2_pb2 as pb
from clipper_core.frontend.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from clipper_core.testing import ServerThread, http_json, wait_until
from tests import models
from tests.conftest import Deploy

Tensor = pb.ModelInferRequest.InferInputTensor


def post(url: str, body: Any = None, *, raw: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
    """(status, JSON body, headers) of a POST."""
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


def admin(server: ServerThread, endpoint: str, body: Any) -> Any:
    status, answer = http_json(f"{server.admin_url}/admin/{endpoint}", body)
    assert status == 200, (endpoint, status, answer)
    return answer


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, dict[str, str]]]:
    """One server (gRPC on) with app ``locked`` (keys required), ``other`` (its own key) and ``limited`` (rates and
    input limits), all on model ``sum``; the keys by app."""
    home = tmp_path_factory.mktemp("tenancy")
    with ServerThread(home, grpc_port=0) as server:
        deploy = Deploy(server, Path(home))
        for app in ("locked", "other", "limited"):
            deploy.app(app)
        deploy("sum", 1, models.float_sum, app="locked")
        for app in ("other", "limited"):
            admin(server, "add_model_links", {"app_name": app, "model_names": ["sum"]})
        admin(server, "set_app_limits", {"app_name": "locked", "require_api_key": True})
        admin(server, "set_app_limits", {"app_name": "limited", "limits": {
            "requests_per_second": 0.5, "requests_burst": 2, "max_input_length": 4, "max_batch_size": 3,
            "max_body_bytes": 200}})
        keys = {app: admin(server, "add_api_key", {"app_name": app, "label": "tests"})["api_key"]
                for app in ("locked", "other")}
        wait_until(lambda: server.call(lambda: len(server.server.ctx.query_path.snapshot.keys.by_id)) == 2, 10,
                   what="the keys in the snapshot")
        yield server, keys


def test_rest_and_v2_answer_401_and_403_as_json_and_serve_a_good_key(
        served: tuple[ServerThread, dict[str, str]]) -> None:
    server, keys = served
    for path, body in (("/locked/predict", {"input": [1.0, 2.0]}),
                       ("/v2/models/locked/infer", {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64",
                                                               "data": [1.0, 2.0]}]})):
        url = server.query_url + path
        status, answer, headers = post(url, body)
        assert status == 401 and "requires an API key" in answer["cause"], answer
        assert headers["WWW-Authenticate"] == 'Bearer realm="clipper"'
        status, answer, _ = post(url, body, headers={"X-API-Key": keys["locked"][:-2] + "xx"})
        assert status == 401 and "not valid" in answer["cause"], answer
        status, answer, _ = post(url, body, headers={"Authorization": f"Bearer {keys['other']}"})
        assert status == 403 and "is for application 'other', not 'locked'" in answer["cause"], answer
        for header in ({"X-API-Key": keys["locked"]}, {"Authorization": f"Bearer {keys['locked']}"}):
            status, answer, _ = post(url, body, headers=header)
            assert status == 200, answer
    status, answer, _ = post(server.query_url + "/other/predict", {"input": [2.0]})  # keys not required there
    assert (status, answer["output"]) == (200, 2.0)


async def test_grpc_answers_unauthenticated_and_permission_denied_with_the_rest_messages(
        served: tuple[ServerThread, dict[str, str]]) -> None:
    server, keys = served
    request = pb.ModelInferRequest(model_name="locked", inputs=[Tensor(
        name="input", datatype="FP64", shape=[1, 2], contents=pb.InferTensorContents(fp64_contents=[1.0, 2.0]))])
    async with aio.insecure_channel(server.server.grpc_addr) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(aio.AioRpcError) as missing:
            await stub.ModelInfer(request)
        assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "requires an API key" in (missing.value.details() or "")
        with pytest.raises(aio.AioRpcError) as other:
            await stub.ModelInfer(request, metadata=(("x-api-key", keys["other"]),))
        assert other.value.code() == grpc.StatusCode.PERMISSION_DENIED
        answer = await stub.ModelInfer(request, metadata=(("authorization", f"Bearer {keys['locked']}"),))
        assert list(answer.outputs[0].contents.fp64_contents) == [3.0]


def test_a_rate_limit_is_429_with_retry_after_and_the_limit_named(
        served: tuple[ServerThread, dict[str, str]]) -> None:
    server, _ = served
    url = server.query_url + "/limited/predict"
    answers = [post(url, {"input": [float(i)]}) for i in range(3)]  # burst 2, then 0.5/s: the third waits 2 s
    assert [a[0] for a in answers[:2]] == [200, 200]
    status, body, headers = answers[2]
    assert status == 429
    assert (body["error"], body["limit"], body["scope"]) == ("Too many requests", "requests_per_second",
                                                             "application")
    assert "requests_per_second = 0.5 (burst 2)" in body["cause"]
    assert int(headers["Retry-After"]) >= 1
    metrics = urllib.request.urlopen(f"{server.query_url}/metrics", timeout=10).read().decode()
    assert 'clipper_quota_refused_total{app="limited",key="-",limit="requests_per_second"}' in metrics


def test_input_limits_answer_413_and_400_saying_the_limit(served: tuple[ServerThread, dict[str, str]]) -> None:
    server, _ = served
    url = server.query_url + "/limited/predict"
    status, body, _ = post(url, raw=b'{"input": [' + b"1.0, " * 60 + b"1.0]}")
    assert status == 413 and "max_body_bytes = 200" in body["cause"], body
    server.call(lambda: _refill(server, "limited"))
    status, body, _ = post(url, {"input_batch": [[1.0]] * 4})
    assert status == 413 and "the request has 4 inputs" in body["cause"] and "max_batch_size = 3" in body["cause"]
    server.call(lambda: _refill(server, "limited"))
    status, body, _ = post(url, {"input": [1.0, 2.0, 3.0, 4.0, 5.0]})
    assert status == 400 and "input 0 has length 5" in body["cause"] and "max_input_length = 4" in body["cause"]


def _refill(server: ServerThread, app: str) -> None:
    """Fill the app's request bucket (these tests look at other limits)."""
    guard = server.server.ctx.query_path.snapshot.app(app).guard
    assert guard is not None and guard.quota is not None and guard.quota.requests is not None
    guard.quota.requests.tokens = guard.quota.requests.burst


# -- priority classes with a model at capacity ----------------------------------------------------------------
def test_the_high_class_is_served_and_the_low_one_refused_first_then_served_when_load_allows(
        tmp_path: Path) -> None:
    with ServerThread(tmp_path) as server:
        deploy = Deploy(server, tmp_path)
        deploy.app("gold", slo_micros=300_000, cache_enabled=False)
        deploy.app("bronze", slo_micros=300_000, cache_enabled=False)
        deploy("busy", 1, models.slow_batch_size_model, app="gold", batch_size=1)  # 20 ms an input: ~50/s
        admin(server, "add_model_links", {"app_name": "bronze", "model_names": ["busy"]})
        admin(server, "set_app_limits", {"app_name": "gold", "priority": "high"})
        admin(server, "set_app_limits", {"app_name": "bronze", "priority": "low"})
        wait_until(lambda: server.call(lambda: server.server.ctx.query_path.snapshot.app("bronze").guard
                                       is not None), 10, what="the priority classes in the snapshot")
        outcomes: dict[str, Counter[str]] = {"gold": Counter(), "bronze": Counter()}
        stop = time.monotonic() + 3.0

        def load(app: str, n: int) -> None:
            for i in range(n):  # bounded: at most n queries, and none after 3 s
                if time.monotonic() > stop:
                    return
                status, body, _ = post(f"{server.query_url}/{app}/predict", {"input": [float(i)]})
                outcomes[app]["503" if status == 503 else "default" if body.get("default") else "served"] += 1

        threads = [threading.Thread(target=load, args=(app, 400)) for app in ("gold", "bronze") for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        gold, bronze = outcomes["gold"], outcomes["bronze"]
        assert gold["served"] > 3 * max(1, bronze["served"]), outcomes
        assert bronze["503"] + bronze["default"] > gold["503"] + gold["default"], outcomes
        served_after = [post(f"{server.query_url}/bronze/predict", {"input": [9.0 + i]})[1] for i in range(3)]
        assert all(not a["default"] for a in served_after), served_after  # no gold load: bronze is served


# -- cancellation -----------------------------------------------------------------------------------------------
def recording_model(path: str) -> Callable[[Any], list[str]]:
    """A model that writes each input's first value to ``path`` as it starts a batch, then takes 0.3 s."""

    def predict(xs: Any) -> list[str]:
        with open(path, "a") as f:
            f.write("".join(f"{x[0]}\n" for x in xs))
        time.sleep(0.3)
        return [str(float(x[0])) for x in xs]

    return predict


def test_a_client_that_disconnects_takes_its_queued_task_with_it(tmp_path: Path) -> None:
    seen = tmp_path / "seen.txt"
    with ServerThread(tmp_path, batches_in_flight=1) as server:  # what waits behind a batch stays queued
        deploy = Deploy(server, tmp_path)
        deploy.app("rec", slo_micros=5_000_000, cache_enabled=False)
        deploy("rec", 1, recording_model(str(seen)), app="rec", batch_size=1)
        queue = server.call(lambda: server.server.ctx.query_path.models[("rec", "1")].queue)
        first: list[Any] = []
        busy = threading.Thread(target=lambda: first.append(post(f"{server.query_url}/rec/predict",
                                                                 {"input": [1.0]})))
        busy.start()
        wait_until(lambda: seen.exists() and "1.0" in seen.read_text(), 10, what="the model busy with 1.0")
        body = json.dumps({"input": [2.0]}).encode()
        host, port = server.server.query_addr.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"POST /rec/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            wait_until(lambda: server.call(lambda: len(queue)) == 1, 10, what="2.0 queued behind 1.0")
        # the client is gone: its handler is cancelled and the task is skipped when the replica comes back
        busy.join(10)
        assert first[0][1]["output"] == 1.0
        wait_until(lambda: server.call(lambda: queue.cancelled) == 1, 10, what="the task counted as cancelled")
        assert post(f"{server.query_url}/rec/predict", {"input": [3.0]})[1]["output"] == 3.0
        assert seen.read_text().split() == ["1.0", "3.0"]  # 2.0 never reached the model
        metrics = urllib.request.urlopen(f"{server.query_url}/metrics", timeout=10).read().decode()
        assert 'clipper_model_cancelled_tasks_total{model="rec",version="1"} 1.0' in metrics


# -- several frontends over Redis -------------------------------------------------------------------------------
def test_a_revoked_key_is_refused_by_every_frontend_within_a_second(tmp_path: Path, redis_url: str) -> None:
    with ServerThread(tmp_path / "a", state_store=redis_url) as a, \
            ServerThread(tmp_path / "b", state_store=redis_url, manage_replicas=False) as b:
        deploy = Deploy(a, tmp_path)
        deploy.app("team")
        deploy("sum", 1, models.float_sum, app="team")
        admin(a, "set_app_limits", {"app_name": "team", "require_api_key": True})
        made = admin(a, "add_api_key", {"app_name": "team"})
        key = {"X-API-Key": made["api_key"]}
        for server in (a, b):
            wait_until(lambda s=server: post(f"{s.query_url}/team/predict", {"input": [1.0]}, headers=key)[0] == 200,
                       20, what="the key to work on both frontends")
        revoked = time.monotonic()
        admin(a, "revoke_api_key", {"key_id": made["key_id"]})
        refused_after: dict[str, float] = {}
        while len(refused_after) < 2 and time.monotonic() - revoked < 5:
            for name, server in (("a", a), ("b", b)):
                if name not in refused_after and post(f"{server.query_url}/team/predict", {"input": [1.0]},
                                                      headers=key)[0] == 401:
                    refused_after[name] = time.monotonic() - revoked
            time.sleep(0.02)
        assert set(refused_after) == {"a", "b"} and max(refused_after.values()) < 1.0, refused_after


def test_two_frontends_share_an_apps_rate_limit(tmp_path: Path, redis_url: str) -> None:
    rate, burst, seconds = 20.0, 10, 4.0
    with ServerThread(tmp_path / "a", state_store=redis_url) as a, \
            ServerThread(tmp_path / "b", state_store=redis_url, manage_replicas=False) as b:
        deploy = Deploy(a, tmp_path)
        deploy.app("team", cache_enabled=False)
        deploy("sum", 1, models.float_sum, app="team")
        b.wait_replicas("sum", "1", 1)
        admin(a, "set_app_limits", {"app_name": "team", "limits": {"requests_per_second": rate,
                                                                  "requests_burst": burst}})
        for server in (a, b):
            wait_until(lambda s=server: s.call(lambda: s.server.ctx.query_path.snapshot.app("team").guard
                                               is not None), 10, what="the limit on both frontends")
        admitted: Counter[str] = Counter()
        start = time.monotonic()

        def load(name: str, server: ServerThread) -> None:
            for i in range(2000):  # bounded; about 100 requests/s a thread
                if time.monotonic() - start > seconds:
                    return
                status = post(f"{server.query_url}/team/predict", {"input": [float(i)]})[0]
                admitted[name if status == 200 else f"{name} {status}"] += 1
                time.sleep(0.01)

        threads = [threading.Thread(target=load, args=pair) for pair in (("a", a), ("b", b)) * 2]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        total = admitted["a"] + admitted["b"]
        # stated tolerance (docs/tenancy.md): each frontend applies the whole limit until the first load reports
        # are in (about 1 s), then its share; bursts on each
        assert rate * seconds * 0.7 <= total <= rate * (seconds + 1) + 2 * burst, admitted
        assert admitted["a 429"] and admitted["b 429"], admitted
        shares = [s.call(lambda s=s: s.server.ctx.query_path.snapshot.app("team").guard.quota.share) for s in (a, b)]
        assert sum(shares) == pytest.approx(1.0, abs=0.05), shares
