"""The spans of a traced batch (``clipper_core.tracing``): made only for a batch holding tasks of sampled
requests. Each such task's queue wait (a child of its request, from its arrival to now); the batch (a child of
the first traced request, so that it is sampled with it, and linked to every traced request it serves); and the
RPC to the replica (a child of the batch, kind CLIENT), whose ``traceparent`` goes in the PREDICT header (``tp``)
for the container's compute span. They are reported with :func:`clipper_core.tracing.record` once they end (the
batch and its RPC when the replica answers), not made as SDK spans."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from clipper_core.serving.queue import Task
from clipper_core.tracing import child_context, epoch_ns, record

__all__ = ["BatchSpans", "batch_spans", "end_batch_spans"]


@dataclass
class BatchSpans:
    """A traced batch's span contexts until the replica answers."""

    label: str
    replica_id: int
    size: int
    batch: Any
    rpc: Any
    first: Any
    """The first traced request's span context (the batch's parent)."""
    links: tuple[Any, ...]
    started_ns: int


def batch_spans(label: str, replica_id: int, batch: list[Task], fields: dict[str, Any]) -> BatchSpans | None:
    """Report the traced tasks' queue waits, and put the RPC's trace context in ``fields``; None when no task of
    the batch is traced."""
    traced = [t.trace for t in batch if t.trace is not None]
    if not traced:
        return None
    from opentelemetry.trace import Link

    now_ns, now = time.time_ns(), time.monotonic()
    for task in batch:
        if task.trace is not None:
            record("queue.wait", child_context(task.trace), task.trace, epoch_ns(task.enqueued, now), now_ns,
                   {"clipper.model": label})
    unique = list({(c.trace_id, c.span_id): c for c in traced}.values())
    batch_context = child_context(unique[0])
    rpc = child_context(batch_context)
    fields["tp"] = f"00-{rpc.trace_id:032x}-{rpc.span_id:016x}-01"
    return BatchSpans(label, replica_id, len(batch), batch_context, rpc, unique[0], tuple(Link(c) for c in unique),
                      now_ns)


def end_batch_spans(spans: BatchSpans, error: BaseException | None) -> None:
    """Report the RPC and batch spans, now that the replica answered (an error marks both)."""
    from opentelemetry.trace import SpanKind

    end = time.time_ns()
    record(f"rpc {spans.label}", spans.rpc, spans.batch, spans.started_ns, end, {"clipper.replica": spans.replica_id},
           kind=SpanKind.CLIENT, error=error)
    record(f"batch {spans.label}", spans.batch, spans.first, spans.started_ns, end,
           {"clipper.model": spans.label, "clipper.batch_size": spans.size,
            "clipper.traced_requests": len(spans.links)}, links=spans.links, error=error)
