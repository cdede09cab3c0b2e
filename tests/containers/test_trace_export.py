"""Span export in a child process (``clipper_container.trace_export``): a span survives its row and msgpack
whole; a provider made from the OTEL_* variables exports through a real exporter process to an OTLP/HTTP
receiver (decoded here), on the schedule, and what is left at shutdown; a dead exporter process costs the spans,
never the traced process."""

from __future__ import annotations

import os
import signal
from typing import Any

import msgpack
import pytest
from clipper_container.trace_export import NICE, PipeSpanProcessor, export_in_child, row_of, span_of
from clipper_container.tracing import make_provider
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from clipper_core.testing import wait_until
from tests.otlp import Receiver

pytestmark = pytest.mark.timeout(60)

TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736


def _span() -> ReadableSpan:
    state = TraceState([("vendor", "value")])
    context = SpanContext(TRACE, 0x1234, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED),
                          trace_state=state)
    parent = SpanContext(TRACE, 0xF067AA0BA902B7, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    linked = SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return ReadableSpan(
        "batch m:1", context, parent, Resource.create({"service.name": "here"}),
        {"clipper.model": "m:1", "clipper.batch_size": 3, "ratio": 0.5, "ok": True, "sizes": (1, 2)},
        (Event("exception", {"exception.type": "ValueError"}, 1_000_500),), (Link(linked, {"why": "served"}),),
        SpanKind.CLIENT, status=Status(StatusCode.ERROR, "ValueError: no"), start_time=1_000_000,
        end_time=2_000_000, instrumentation_scope=InstrumentationScope("clipper_core", "1.0"))


def test_a_span_survives_its_row_and_msgpack_whole() -> None:
    span = _span()
    resource = Resource.create({"service.name": "there"})
    back = span_of(msgpack.unpackb(msgpack.packb([row_of(span)], use_bin_type=True), raw=False,
                                  use_list=False)[0], resource)
    assert (back.name, back.kind, back.start_time, back.end_time) == ("batch m:1", SpanKind.CLIENT, 1_000_000,
                                                                      2_000_000)
    assert (back.context.trace_id, back.context.span_id, back.context.trace_flags.sampled) == (TRACE, 0x1234, True)
    assert back.context.trace_state.to_header() == "vendor=value"
    assert back.parent is not None and (back.parent.span_id, back.parent.is_remote) == (0xF067AA0BA902B7, True)
    assert dict(back.attributes) == {"clipper.model": "m:1", "clipper.batch_size": 3, "ratio": 0.5, "ok": True,
                                     "sizes": (1, 2)}
    [link] = back.links
    assert (link.context.trace_id, link.context.span_id, dict(link.attributes or {})) == (0xABC, 0xDEF,
                                                                                         {"why": "served"})
    [event] = back.events
    assert (event.name, event.timestamp, dict(event.attributes or {})) == ("exception", 1_000_500,
                                                                         {"exception.type": "ValueError"})
    assert (back.status.status_code, back.status.description) == (StatusCode.ERROR, "ValueError: no")
    assert (back.instrumentation_scope.name, back.instrumentation_scope.version) == ("clipper_core", "1.0")
    assert back.resource is resource


def _env(receiver: Receiver, **more: str) -> dict[str, str]:
    return {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint, **more}


def _pipe(provider: Any) -> PipeSpanProcessor:
    [processor] = provider._active_span_processor._span_processors
    assert isinstance(processor, PipeSpanProcessor)
    return processor


def test_spans_go_through_the_exporter_process_to_the_receiver(receiver: Receiver) -> None:
    env = _env(receiver, OTEL_BSP_SCHEDULE_DELAY="50", OTEL_SERVICE_NAME="piped")
    assert export_in_child(env) and not export_in_child({"CLIPPER_TRACING_EXPORT": "thread"})
    provider = make_provider("clipper", env=env)
    pipe = _pipe(provider)
    assert pipe.pid != os.getpid()
    lower = min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICE)  # serving goes first on a busy machine
    wait_until(lambda: os.getpriority(os.PRIO_PROCESS, pipe.pid) == lower, 10, what="the exporter's lower priority")
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("request", kind=SpanKind.SERVER) as request, \
            tracer.start_as_current_span("policy.select", attributes={"clipper.app": "a"}):
        pass
    unsampled = trace.set_span_in_context(trace.NonRecordingSpan(SpanContext(7, 8, is_remote=True)))
    tracer.start_span("not sampled", context=unsampled).end()  # the parent-based sampler records nothing
    wait_until(lambda: len(receiver.spans) >= 2, 10, what="the spans at the receiver")  # (every 50 ms)
    got = {span.name: (service, span) for service, span in receiver.spans}
    assert set(got) == {"request", "policy.select"}
    service, child = got["policy.select"]
    assert service == "piped"
    assert child.parent_span_id == request.get_span_context().span_id.to_bytes(8, "big")
    assert child.trace_id == request.get_span_context().trace_id.to_bytes(16, "big")
    assert got["request"][1].kind == 2  # SPAN_KIND_SERVER
    provider.shutdown()
    assert pipe._child.returncode == 0


def test_shutdown_exports_what_is_left(receiver: Receiver) -> None:
    provider = make_provider("clipper", env=_env(receiver, OTEL_BSP_SCHEDULE_DELAY="600000"))  # no scheduled write
    tracer = provider.get_tracer("test")
    for i in range(3):
        tracer.start_span(f"s{i}").end()
    assert not receiver.spans
    provider.shutdown()  # written, then the exporter process exports them as the pipe closes, and exits
    assert sorted(span.name for _, span in receiver.spans) == ["s0", "s1", "s2"]


def test_a_full_batch_is_written_at_once(receiver: Receiver) -> None:
    provider = make_provider("clipper", env=_env(receiver, OTEL_BSP_SCHEDULE_DELAY="600000",
                                                 OTEL_BSP_MAX_EXPORT_BATCH_SIZE="4"))
    tracer = provider.get_tracer("test")
    for i in range(4):
        tracer.start_span(f"s{i}").end()
    wait_until(lambda: len(receiver.spans) == 4, 10, what="the batch of four at the receiver")
    provider.shutdown()


def test_a_dead_exporter_process_costs_the_spans_not_the_traced_process(receiver: Receiver) -> None:
    provider = make_provider("clipper", env=_env(receiver, OTEL_BSP_SCHEDULE_DELAY="600000"))
    pipe = _pipe(provider)
    os.kill(pipe.pid, signal.SIGKILL)
    pipe._child.wait(10)
    tracer = provider.get_tracer("test")
    for _ in range(2):
        tracer.start_span("lost").end()
        pipe.force_flush()  # (the first write may still fit the pipe's buffer; the second finds it broken)
    tracer.start_span("after").end()
    pipe.force_flush()
    assert pipe.dropped >= 2 and not receiver.spans
    provider.shutdown()


def test_the_containers_compute_span_is_a_row_for_the_pipe(receiver: Receiver) -> None:
    from clipper_container import tracing

    assert tracing.configure("clipper-model m:1", env=_env(receiver))
    try:
        assert tracing.compute_span(f"00-{TRACE:032x}-00f067aa0ba902b7-00", 2) is None  # not sampled by the caller
        span = tracing.compute_span(f"00-{TRACE:032x}-00f067aa0ba902b7-01", 3)
        assert isinstance(span, tracing.RowSpan)
        span.record_exception(ValueError("bad input"))
        span.set_attribute("error.type", "ValueError")
        span.end()
    finally:
        tracing.shutdown()  # the exporter process exports the row as the pipe closes
    [(service, got)] = receiver.spans
    assert (service, got.name) == ("clipper-model m:1", "model.predict")
    assert got.trace_id == TRACE.to_bytes(16, "big") and got.parent_span_id.hex() == "00f067aa0ba902b7"
    assert {a.key: (a.value.int_value or a.value.string_value) for a in got.attributes} == {
        "clipper.batch_size": 3, "error.type": "ValueError"}
    assert (got.status.code, got.status.message) == (2, "ValueError: bad input")
    assert [e.name for e in got.events] == ["exception"]
    assert got.end_time_unix_nano >= got.start_time_unix_nano
