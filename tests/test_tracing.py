"""End-to-end tracing with real replicas: the frontend's spans go to the SDK's in-memory exporter, the model
container's to a small OTLP/HTTP receiver in this test, which decodes what it is sent. A ``traceparent`` on the
request continues the caller's trace; the request has the policy, cache and queue-wait spans under it; a batch
serving two requests links to both and is the parent of the RPC span, under which the container records the
model's compute span. Also: the OTEL_* rules, trace ids in the logs, and the JSON access log."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clipper_container.trace_export import PipeSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from clipper_core import tracing
from clipper_core.testing import ServerThread, http_json, wait_until
from tests import models
from tests.conftest import Deploy
from tests.otlp import Receiver

pytestmark = pytest.mark.timeout(120)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    assert tracing.configure("clipper-test", exporter=memory, simple=True)
    yield memory
    tracing.shutdown()  # the rest of the test session runs untraced


def _slow(xs: Any) -> list[str]:
    time.sleep(0.3)
    return [str(sum(x)) for x in xs]


def test_a_traced_request_from_the_caller_to_the_model_containers_compute_span(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exporter: InMemorySpanExporter, receiver: Receiver) -> None:
    # The model containers (subprocesses of the embedded server) export to the receiver, in batches of 1 span.
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    with ServerThread(tmp_path, batches_in_flight=1) as server:
        deploy = Deploy(server, tmp_path)
        deploy.app("traced", slo_micros=10_000_000)
        deploy("slowpoke", 1, _slow, app="traced")
        url = f"{server.query_url}/traced/predict"
        wait_until(lambda: http_json(url, {"input": [0.0]})[1].get("default") is False, 30, what="answers")
        exporter.clear()
        # One query in the replica, then two that wait behind it and share the next batch.
        answers: list[Any] = []

        def ask(value: float, traceparent: str | None = None) -> None:
            headers = {"traceparent": traceparent} if traceparent else {}
            answers.append(http_json(url, {"input": [value, 1.0]}, headers=headers, timeout=15))

        first = threading.Thread(target=ask, args=(1.0,))
        first.start()
        runtime = server.call(lambda: server.server.ctx.query_path.models[("slowpoke", "1")])
        wait_until(lambda: server.call(lambda: runtime.inflight_items) == 1, 5, what="the first batch in the replica")
        # (one batch at a time: the next two queue behind it, together)
        pair = [threading.Thread(target=ask, args=(2.0, f"00-{TRACE_ID}-{CALLER_SPAN}-01")),
                threading.Thread(target=ask, args=(3.0,))]
        for thread in pair:
            thread.start()
        for thread in (first, *pair):
            thread.join(15)
        assert [status for status, _ in answers] == [200, 200, 200], answers
        wait_until(lambda: len([s for s in exporter.get_finished_spans() if s.name.startswith("batch ")]) >= 2, 10,
                   what="the frontend's batch spans")
        spans = exporter.get_finished_spans()
        wait_until(lambda: len([s for _, s in receiver.spans if s.name == "model.predict"]) >= 2, 20,
                   what="the container's compute spans at the receiver")

    requests = [s for s in spans if s.name == "predict traced"]
    continued = [s for s in requests if f"{s.context.trace_id:032x}" == TRACE_ID]
    assert len(requests) == 3 and len(continued) == 1
    request = continued[0]
    assert request.parent is not None and f"{request.parent.span_id:016x}" == CALLER_SPAN
    children = {s.name for s in spans if s.parent is not None and s.parent.span_id == request.context.span_id}
    assert {"policy.select", "cache.lookup", "queue.wait"} <= children, children
    # The batch that served the traced request and the third one links to both; the RPC is its child.
    [batch] = [s for s in spans if s.name == "batch slowpoke:1"
               and request.context.span_id in {link.context.span_id for link in s.links}]
    linked = {link.context.span_id for link in batch.links}
    assert len(linked) == 2 and linked <= {s.context.span_id for s in requests}
    assert batch.attributes["clipper.batch_size"] == 2
    [rpc] = [s for s in spans if s.name == "rpc slowpoke:1" and s.parent.span_id == batch.context.span_id]
    # ... and the container's compute span is the RPC's child, in the same trace, exported by the container.
    computes = [s for service, s in receiver.spans if s.name == "model.predict" and service.startswith("clipper-model")]
    [compute] = [s for s in computes if s.parent_span_id.hex() == f"{rpc.context.span_id:016x}"]
    assert compute.trace_id.hex() == f"{rpc.context.trace_id:032x}"
    assert compute.end_time_unix_nano - compute.start_time_unix_nano >= 0.25e9  # the model's 0.3 s


def test_tracing_is_off_unless_the_otel_variables_ask_for_it() -> None:
    assert not tracing.tracing_wanted({})
    assert not tracing.tracing_wanted({"OTEL_TRACES_EXPORTER": "none"})
    assert not tracing.tracing_wanted({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"})
    assert tracing.tracing_wanted({"OTEL_TRACES_EXPORTER": "otlp"})
    assert tracing.tracing_wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert not tracing.configure("x", env={}) and not tracing.STATE.enabled


def test_log_records_carry_the_current_trace_and_span(exporter: InMemorySpanExporter) -> None:
    record = logging.LogRecord("clipper_core", logging.INFO, __file__, 1, "hello", None, None)
    with tracing.STATE.tracer.start_as_current_span("work") as span:
        assert tracing.TraceLogFilter().filter(record)
    assert record.trace_id == f"{span.get_span_context().trace_id:032x}"  # type: ignore[attr-defined]
    assert record.span_id == f"{span.get_span_context().span_id:016x}"  # type: ignore[attr-defined]
    outside = logging.LogRecord("clipper_core", logging.INFO, __file__, 1, "bye", None, None)
    tracing.TraceLogFilter().filter(outside)
    assert outside.trace_id == "-"  # type: ignore[attr-defined]


def test_the_json_access_log_writes_a_line_per_request(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="clipper.access")
    with ServerThread(tmp_path, access_log="json") as server:
        status, _ = http_json(f"{server.query_url}/nowhere/predict", {"input": [1.0]})
        assert status == 404
        wait_until(lambda: any(r.name == "clipper.access" for r in caplog.records), 5, what="an access line")
    entry = json.loads(next(r.getMessage() for r in caplog.records if r.name == "clipper.access"))
    assert entry["method"] == "POST" and entry["path"] == "/nowhere/predict" and entry["status"] == 404
    assert entry["duration_ms"] >= 0 and "remote" in entry


async def test_a_grpc_call_with_a_traceparent_continues_the_callers_trace(
        tmp_path: Path, exporter: InMemorySpanExporter) -> None:
    import asyncio

    import numpy as np
    from grpc import aio

    from clipper_core.frontend.grpc import grpc_predict_v2_pb2 as pb
    from clipper_core.frontend.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

    with ServerThread(tmp_path, grpc_port=0) as server:
        deploy = Deploy(server, tmp_path)
        deploy.app("g", slo_micros=5_000_000)
        deploy("gsum", 1, models.float_sum, app="g")
        request = pb.ModelInferRequest(model_name="g", inputs=[pb.ModelInferRequest.InferInputTensor(
            name="input", datatype="FP64", shape=[1, 2])], raw_input_contents=[np.array([[1.0, 2.0]]).tobytes()])
        async with aio.insecure_channel(server.server.grpc_addr) as channel:
            answer = await pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
                request, metadata=(("traceparent", f"00-{TRACE_ID}-{CALLER_SPAN}-01"),))
        assert np.frombuffer(answer.raw_output_contents[0], dtype="<f8").tolist() == [3.0]
        for _ in range(100):  # the span ends as the call returns; the exporter is synchronous
            if any(s.name == "predict g" for s in exporter.get_finished_spans()):
                break
            await asyncio.sleep(0.05)
    [span] = [s for s in exporter.get_finished_spans() if s.name == "predict g"]
    assert f"{span.context.trace_id:032x}" == TRACE_ID and f"{span.parent.span_id:016x}" == CALLER_SPAN


def test_new_traces_are_sampled_at_the_ratio_and_a_callers_sampled_trace_always(tmp_path: Path) -> None:
    memory = InMemorySpanExporter()
    assert tracing.configure("clipper-test", exporter=memory, simple=True,
                             env={"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"})
    try:
        assert tracing.STATE.root_ratio == 0.0
        with ServerThread(tmp_path) as server:
            deploy = Deploy(server, tmp_path)
            deploy.app("r", slo_micros=5_000_000)
            deploy("rsum", 1, models.float_sum, app="r")
            url = f"{server.query_url}/r/predict"
            for i in range(20):
                assert http_json(url, {"input": [float(i)]})[0] == 200
            assert not [s for s in memory.get_finished_spans() if s.name == "predict r"]  # ratio 0: none
            assert http_json(url, {"input": [99.0]}, headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"})[0] \
                == 200
            unsampled = f"00-{'1' * 32}-{CALLER_SPAN}-00"
            assert http_json(url, {"input": [98.0]}, headers={"traceparent": unsampled})[0] == 200
        spans = [s for s in memory.get_finished_spans() if s.name == "predict r"]
        assert [f"{s.context.trace_id:032x}" for s in spans] == [TRACE_ID]  # the caller's sampled one only
    finally:
        tracing.shutdown()


def test_a_server_traced_by_the_otel_variables_exports_through_its_exporter_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    with ServerThread(tmp_path) as server:
        assert tracing.STATE.enabled
        [pipe] = tracing.STATE.processor._span_processors
        assert isinstance(pipe, PipeSpanProcessor)  # the frontend's spans go to its exporter process
        deploy = Deploy(server, tmp_path)
        deploy.app("piped", slo_micros=5_000_000)
        deploy("psum", 1, models.float_sum, app="piped")
        status, _ = http_json(f"{server.query_url}/piped/predict", {"input": [1.0, 2.0]},
                              headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"})
        assert status == 200
        wait_until(lambda: {"predict piped", "model.predict"} <= {s.name for _, s in receiver.spans}, 20,
                   what="the frontend's and the container's spans at the receiver")
    assert not tracing.STATE.enabled and pipe._child.returncode == 0  # flushed and ended with the server
    spans = [(service, s) for service, s in receiver.spans if s.trace_id.hex() == TRACE_ID]
    [(service, request)] = [(service, s) for service, s in spans if s.name == "predict piped"]
    assert service == "clipper" and request.parent_span_id.hex() == CALLER_SPAN
    names = {s.name for _, s in spans}
    assert {"policy.select", "queue.wait", "batch psum:1", "rpc psum:1", "model.predict"} <= names, names
    # (the frontend's inner spans go to the pipe as rows, without the SDK's span: their links and parents too)
    [batch] = [s for _, s in spans if s.name == "batch psum:1"]
    assert [link.span_id for link in batch.links] == [request.span_id]
    [rpc] = [s for _, s in spans if s.name == "rpc psum:1"]
    [compute] = [s for _, s in spans if s.name == "model.predict"]
    assert rpc.parent_span_id == batch.span_id and compute.parent_span_id == rpc.span_id
    assert rpc.kind == 3  # SPAN_KIND_CLIENT


def test_a_span_recorded_with_an_error_reaches_the_exporter_process_as_one(receiver: Receiver) -> None:
    from opentelemetry.trace import SpanKind

    assert tracing.configure("errs", env={"OTEL_TRACES_EXPORTER": "otlp",
                                          "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint})
    try:
        assert isinstance(tracing.STATE.pipe, PipeSpanProcessor)
        parent = tracing.STATE.tracer.start_span("request").get_span_context()
        span = tracing.child_context(parent)
        tracing.record("rpc m:1", span, parent, 10, 20, {"clipper.replica": 3}, kind=SpanKind.CLIENT,
                       error=ValueError("no"))
    finally:
        tracing.shutdown()  # written, exported by the exporter process as the pipe closes
    [(service, got)] = [(service, s) for service, s in receiver.spans if s.name == "rpc m:1"]
    assert service == "errs" and got.span_id == span.span_id.to_bytes(8, "big")
    assert got.parent_span_id == parent.span_id.to_bytes(8, "big") and got.kind == 3
    assert (got.start_time_unix_nano, got.end_time_unix_nano) == (10, 20)
    assert (got.status.code, got.status.message) == (2, "ValueError: no")  # STATUS_CODE_ERROR
    [event] = got.events
    assert event.name == "exception" and {a.key: a.value.string_value for a in event.attributes} == {
        "exception.type": "ValueError", "exception.message": "no"}
