"""OpenTelemetry tracing of the query path, **off by default** and configured by the standard ``OTEL_*`` variables
(docs/tracing.md): on when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``, ``console``) or an OTLP endpoint is
set (``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), and ``OTEL_SDK_DISABLED`` is not
``true``. The sampler is the SDK's (``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG``, default parent-based
always-on); OTLP goes over HTTP/protobuf (``opentelemetry-exporter-otlp-proto-http``, the ``tracing`` extra).

What the query path does with it (nothing when :data:`STATE.enabled` is false, one attribute test per request):

* a span per predict request (``predict <app>``, kind SERVER), continuing the caller's W3C ``traceparent``;
* its children: the policy's selection, the cache lookups, each input's queue wait (from its arrival to the
  batch that took it);
* one span per batch (``batch <model>:<version>``), a root with a link to every request it served, and its
  child, the RPC to the replica (kind CLIENT), whose ``traceparent`` travels in the PREDICT header (``tp``), so
  the model container records its compute span under it and exports it itself.

Only sampled requests cost more than that test: a request whose span does not record puts no context on its
tasks, and a batch without such tasks makes no span.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from random import getrandbits
from typing import Any

from clipper_container.trace_export import child_context, make_row, pipe_of
from clipper_container.tracing import make_provider, tracing_wanted

__all__ = ["STATE", "TraceLogFilter", "child_context", "configure", "epoch_ns", "record", "request_context",
           "setup_logging", "shutdown", "tracing_wanted"]

log = logging.getLogger(__name__)


@dataclass
class TracingState:
    enabled: bool = False
    tracer: Any = None
    """An ``opentelemetry.trace.Tracer`` (clipper's), once :func:`configure` turned tracing on."""
    root_ratio: float = 1.0
    """The share of requests without a caller's ``traceparent`` that are traced (the sampler's ratio, drawn by
    the query path before it asks the SDK for anything: an unsampled request costs one random number)."""
    propagator: Any = None
    provider: Any = None
    processor: Any = None
    """The provider's span processors (one ``SynchronousMultiSpanProcessor``): :func:`record` hands them the
    spans the query path makes without the SDK's ``Span``."""
    pipe: Any = None
    """The provider's only processor when it is the exporter process's pipe
    (:class:`clipper_container.trace_export.PipeSpanProcessor`): :func:`record` gives it rows, not spans."""
    scope: Any = None


STATE = TracingState()
"""The process's tracing: read by the query path (``STATE.enabled`` first)."""


def configure(service_name: str, **kwargs: Any) -> bool:
    """Turn tracing on for this process when the environment asks for it, or with ``exporter=`` (a span exporter,
    e.g. the SDK's in-memory one in tests; ``simple=True``: exported at once); whether it is on
    (:func:`clipper_container.tracing.make_provider` reads the variables, for the model containers too)."""
    env = os.environ if kwargs.get("env") is None else kwargs["env"]
    if kwargs.get("exporter") is None and not tracing_wanted(env):
        return False  # off: nothing of the SDK is imported (a plain `pip install clipper-core` has none)
    try:
        ratio, sampler = _root_sampling(env)
    except ImportError as exc:
        log.warning("OTEL_* variables ask for traces, but the OpenTelemetry SDK is not installed (%s)", exc)
        return False
    provider = make_provider(service_name, sampler=sampler, **kwargs)
    if provider is None:
        return False
    from opentelemetry import trace
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    STATE.provider = provider
    STATE.processor = provider._active_span_processor  # the SDK's default: one SynchronousMultiSpanProcessor
    STATE.pipe = pipe_of(provider)
    STATE.scope = InstrumentationScope("clipper_core")
    STATE.root_ratio = ratio
    STATE.tracer = provider.get_tracer("clipper_core")
    STATE.propagator = TraceContextTextMapPropagator()
    STATE.enabled = True
    if type(trace.get_tracer_provider()).__name__ in ("ProxyTracerProvider", "NoOpTracerProvider"):
        trace.set_tracer_provider(provider)  # the process's provider too (for libraries), unless one was set
    log.info("tracing on: service %s", service_name)
    return True


_RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")
_OFF_SAMPLERS = ("always_off", "parentbased_always_off")


def _root_sampling(env: Mapping[str, str]) -> tuple[float, Any]:
    """``OTEL_TRACES_SAMPLER`` as clipper applies it: the ratio of new traces (requests without a caller's
    context), which the query path draws itself, and the SDK sampler that follows a caller's sampled flag and
    records every root the query path chose (parent-based, always on)."""
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased

    name = env.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    ratio = 1.0
    if name in _RATIO_SAMPLERS:
        try:
            ratio = min(1.0, max(0.0, float(env.get("OTEL_TRACES_SAMPLER_ARG") or 1.0)))
        except ValueError:
            log.warning("OTEL_TRACES_SAMPLER_ARG=%r is not a number; sampling every request",
                        env.get("OTEL_TRACES_SAMPLER_ARG"))
    elif name in _OFF_SAMPLERS:
        ratio = 0.0
    return ratio, ParentBased(root=ALWAYS_ON)


def shutdown() -> None:
    """Flush and stop the exporter (the server's last step)."""
    provider = STATE.provider
    STATE.enabled, STATE.tracer, STATE.provider, STATE.processor, STATE.pipe = False, None, None, None, None
    if provider is not None:
        provider.shutdown()


def request_context(traceparent: str | None) -> tuple[Any, Any] | None:
    """A new request span's context and its parent's: in the caller's trace (``traceparent``: W3C, as the SDK's
    propagator reads it), or in a new one when there is none or it is not valid; None when the caller's trace is
    not sampled (parent-based sampling: the query path drew the ratio for new traces already)."""
    from opentelemetry.trace import SpanContext, TraceFlags, get_current_span

    if traceparent:
        parent = get_current_span(STATE.propagator.extract({"traceparent": traceparent})).get_span_context()
        if parent.is_valid:
            return (child_context(parent), parent) if parent.trace_flags.sampled else None
    return SpanContext(getrandbits(128) or 1, getrandbits(64) or 1, is_remote=False,
                       trace_flags=TraceFlags(TraceFlags.SAMPLED)), None


def record(name: str, context: Any, parent: Any, start_ns: int, end_ns: int, attributes: dict[str, Any], *,
           kind: Any = None, links: tuple[Any, ...] = (), error: BaseException | None = None) -> None:
    """Report an ended span (``context``, a child of ``parent``, both span contexts) straight to the span
    processors, as the SDK's ``Span.end`` would, without its ``Span``: no sampler call (the request that
    holds the trace was sampled), no lock, no attribute validation, no copy on end. The query path's inner spans
    (policy, cache lookups, queue waits, the batch and its RPC), whose times it knows, cost a fifth of an SDK
    span this way; each traced request makes about eight."""
    pipe = STATE.pipe
    if pipe is not None:  # the only processor hands spans to the exporter process: their rows are all it needs
        pipe.add(make_row(name, context, parent, start_ns, end_ns, 0 if kind is None else kind.value, attributes,
                          links, scope="clipper_core", error=error))
        return
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import SpanKind, Status, StatusCode

    status = Status(StatusCode.UNSET)
    events: tuple[Any, ...] = ()
    if error is not None:
        message = f"{type(error).__name__}: {error}"
        status = Status(StatusCode.ERROR, message)
        events = (Event("exception", {"exception.type": type(error).__name__, "exception.message": str(error)},
                        end_ns),)
    STATE.processor.on_end(ReadableSpan(
        name, context, parent, STATE.provider.resource, attributes, events, links,
        SpanKind.INTERNAL if kind is None else kind, status=status, start_time=start_ns, end_time=end_ns,
        instrumentation_scope=STATE.scope))


def epoch_ns(monotonic_s: float, now_monotonic: float | None = None) -> int:
    """A ``time.monotonic()`` instant as the wall-clock nanoseconds spans are stamped with."""
    now = time.monotonic() if now_monotonic is None else now_monotonic
    return time.time_ns() - int((now - monotonic_s) * 1e9)


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
TRACED_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [trace_id=%(trace_id)s span_id=%(span_id)s]: %(message)s"


def setup_logging(level: str) -> None:
    """The server's logging: with tracing asked for, every line carries the current ``trace_id`` and
    ``span_id`` (:class:`TraceLogFilter`; ``-`` outside a traced request)."""
    traced = tracing_wanted()
    logging.basicConfig(level=level, format=TRACED_LOG_FORMAT if traced else LOG_FORMAT)
    if traced:
        for handler in logging.getLogger().handlers:
            handler.addFilter(TraceLogFilter())


class TraceLogFilter(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` (hex, or ``-``) to every record: the span current when it was logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        trace_id = span_id = "-"
        if STATE.enabled:
            from opentelemetry import trace

            context = trace.get_current_span().get_span_context()
            if context.is_valid:
                trace_id, span_id = f"{context.trace_id:032x}", f"{context.span_id:016x}"
        record.trace_id, record.span_id = trace_id, span_id
        return True
