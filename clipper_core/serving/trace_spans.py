"""The spans of a traced batch (``clipper_core.tracing``): made only for a batch holding tasks of sampled
requests. Each such task's queue wait (a child of its request, from its arrival to now); the batch (a child of
the first traced request, so that it is sampled with it, and linked to every traced request it serves); and the
RPC to the replica (a child of the batch, kind CLIENT), whose ``traceparent`` goes in the PREDICT header (``tp``)
for the container's compute span."""

from __future__ import annotations

import time
from typing import Any

from clipper_core.serving.queue import Task
from clipper_core.tracing import STATE as TRACING
from clipper_core.tracing import epoch_ns

__all__ = ["batch_spans", "end_batch_spans"]


def batch_spans(label: str, replica_id: int, batch: list[Task], fields: dict[str, Any]) -> tuple[Any, Any] | None:
    """Start the batch's spans (see the module) and put the RPC's trace context in ``fields``; None when no task
    of the batch is traced."""
    traced = [t.trace for t in batch if t.trace is not None]
    if not traced:
        return None
    from opentelemetry import trace

    tracer = TRACING.tracer
    now_ns, now = time.time_ns(), time.monotonic()
    for task in batch:
        if task.trace is not None:
            request = trace.set_span_in_context(trace.NonRecordingSpan(task.trace))
            wait = tracer.start_span("queue.wait", context=request, start_time=epoch_ns(task.enqueued, now),
                                     attributes={"clipper.model": label})
            wait.end(end_time=now_ns)
    unique = list({(c.trace_id, c.span_id): c for c in traced}.values())
    first = trace.set_span_in_context(trace.NonRecordingSpan(unique[0]))
    batch_span = tracer.start_span(f"batch {label}", context=first, links=[trace.Link(c) for c in unique],
                                   attributes={"clipper.model": label, "clipper.batch_size": len(batch),
                                               "clipper.traced_requests": len(unique)})
    rpc = tracer.start_span(f"rpc {label}", context=trace.set_span_in_context(batch_span),
                            kind=trace.SpanKind.CLIENT, attributes={"clipper.replica": replica_id})
    carrier: dict[str, str] = {}
    TRACING.propagator.inject(carrier, context=trace.set_span_in_context(rpc))
    if "traceparent" in carrier:
        fields["tp"] = carrier["traceparent"]
    return batch_span, rpc


def end_batch_spans(spans: tuple[Any, Any], error: BaseException | None) -> None:
    """End the RPC and batch spans (an error marks both)."""
    from opentelemetry import trace

    batch_span, rpc = spans
    for span in (rpc, batch_span):
        if error is not None:
            span.record_exception(error)
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        span.end()
