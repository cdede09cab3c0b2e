"""OpenTelemetry in the model container, off by default, on by the same ``OTEL_*`` variables as the frontend
(clipper_core.tracing, docs/tracing.md): a PREDICT whose header carries ``tp`` (the W3C ``traceparent`` of the
frontend's RPC span) gets a ``model.predict`` span under it, around the model's call, exported by the container
itself (OTLP over HTTP/protobuf, or the console). The SDK is optional (``opentelemetry-sdk`` and
``opentelemetry-exporter-otlp-proto-http``): without it tracing stays off, with one warning.

The frontend uses :func:`tracing_wanted` and :func:`make_provider` too, so both sides read the variables alike.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from clipper_container.trace_export import PipeSpanProcessor, child_context, make_row, pipe_of

__all__ = ["RowSpan", "compute_span", "configure", "make_provider", "shutdown", "tracing_wanted"]

log = logging.getLogger("clipper_container")

_tracer: Any = None
_pipe: Any = None
"""The provider's only processor when it is the exporter process's pipe (:mod:`clipper_container.trace_export`)."""
_provider: Any = None
_propagator: Any = None


def tracing_wanted(env: Mapping[str, str] | None = None) -> bool:
    """On when ``OTEL_TRACES_EXPORTER`` names an exporter (not ``none``), or, without it, an OTLP endpoint is set
    (``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``); never with ``OTEL_SDK_DISABLED``."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def make_provider(service_name: str, *, exporter: Any = None, env: Mapping[str, str] | None = None,
                  simple: bool = False, sampler: Any = None) -> Any:
    """A ``TracerProvider`` exporting to ``exporter`` (default: the one the variables name, from an exporter
    process: :mod:`clipper_container.trace_export`), or None when tracing is off or cannot be had (logged).
    ``OTEL_SERVICE_NAME`` overrides ``service_name``; the sampler is the SDK's (``OTEL_TRACES_SAMPLER``) unless
    ``sampler`` is given."""
    env = os.environ if env is None else env
    if exporter is None and not tracing_wanted(env):
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        from clipper_container.trace_export import export_in_child
    except ImportError as exc:
        log.warning("OTEL_* variables ask for traces, but the OpenTelemetry SDK is not installed (%s)", exc)
        return None
    processor: Any = None
    if exporter is None:
        exporter = _exporter(env)  # (made here too when a child exports: a variable it cannot use is told here)
        if exporter is None:
            return None
        if not simple and export_in_child(env):
            processor = PipeSpanProcessor(service_name, env)
    if processor is None:
        processor = SimpleSpanProcessor(exporter) if simple else BatchSpanProcessor(exporter)
    resource = _hashed(Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or service_name}))
    provider = TracerProvider(resource=resource, sampler=sampler) if sampler is not None else \
        TracerProvider(resource=resource)
    provider.add_span_processor(processor)
    _shorter_switch_interval(env)
    return provider


SWITCH_INTERVAL_S = 0.0002
"""The thread switch interval a traced process runs with (``CLIPPER_TRACING_SWITCH_INTERVAL_S``; 0 keeps
Python's 5 ms). The batch span processor's thread encodes spans holding the GIL; with Python's default, the
event loop, which gives up the GIL at every system call, then waits up to 5 ms each time to get it back (the
convoy effect), and a frontend at 1% sampling served 0.90x. Measured with bench/ab.py on noop, 1% sampling,
0.2 ms against 5 ms: 1.048x the requests/s at 16 connections, 1.060x at 64, with 5% less CPU a request."""


def _shorter_switch_interval(env: Mapping[str, str]) -> None:
    text = env.get("CLIPPER_TRACING_SWITCH_INTERVAL_S", "").strip()
    try:
        interval = float(text) if text else SWITCH_INTERVAL_S
    except ValueError:
        log.warning("CLIPPER_TRACING_SWITCH_INTERVAL_S=%r is not a number of seconds; using %s", text,
                    SWITCH_INTERVAL_S)
        interval = SWITCH_INTERVAL_S
    if interval > 0:
        sys.setswitchinterval(interval)


def _hashed(resource: Any) -> Any:
    """``resource`` with its hash computed once: the OTLP encoder groups every exported span by its resource, and
    the SDK's ``Resource.__hash__`` JSON-encodes the attributes each time (3% of a traced frontend's CPU at 100%
    sampling, measured with py-spy)."""
    from opentelemetry.sdk.resources import Resource

    class HashedResource(Resource):
        def __hash__(self) -> int:
            cached: int | None = self.__dict__.get("_clipper_hash")
            if cached is None:
                cached = self.__dict__["_clipper_hash"] = super().__hash__()
            return cached

    return HashedResource(resource.attributes, resource.schema_url)


def _exporter(env: Mapping[str, str]) -> Any:
    kind = env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if kind != "otlp":
        log.warning("OTEL_TRACES_EXPORTER=%s is not supported (otlp, console); tracing stays off", kind)
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        log.warning("the OTLP/HTTP span exporter is not installed (%s)", exc)
        return None
    return OTLPSpanExporter()  # endpoint, headers and timeout from the OTEL_EXPORTER_OTLP_* variables


def configure(service_name: str, **kwargs: Any) -> bool:
    """Turn the container's tracing on when the variables ask for it (see :func:`make_provider`)."""
    global _tracer, _provider, _propagator, _pipe
    provider = make_provider(service_name, **kwargs)
    if provider is None:
        return False
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    _provider, _propagator = provider, TraceContextTextMapPropagator()
    _tracer = provider.get_tracer("clipper_container")
    _pipe = pipe_of(provider)
    log.info("tracing on (%s)", service_name)
    return True


def compute_span(traceparent: Any, n: int) -> Any:
    """A started ``model.predict`` span under ``traceparent`` (None when tracing is off or there is none); the
    caller ends it (``end``; ``record_exception`` and ``set_attribute`` before). With the exporter process as the
    provider's only processor, a :class:`RowSpan`, which hands its row to the pipe as it ends, not the SDK's."""
    if _tracer is None or not isinstance(traceparent, str):
        return None
    context = _propagator.extract({"traceparent": traceparent})
    if _pipe is None:
        return _tracer.start_span("model.predict", context=context, attributes={"clipper.batch_size": n})
    from opentelemetry.trace import get_current_span

    parent = get_current_span(context).get_span_context()
    if not parent.is_valid or not parent.trace_flags.sampled:
        return None
    return RowSpan("model.predict", parent, {"clipper.batch_size": n})


class RowSpan:
    """A span of this container's that becomes a row for the exporter pipe when it ends (the few calls
    ``worker.build_result`` makes of a span)."""

    __slots__ = ("attributes", "context", "error", "name", "parent", "started_ns")

    def __init__(self, name: str, parent: Any, attributes: dict[str, Any]) -> None:
        self.name, self.parent, self.attributes = name, parent, attributes
        self.context = child_context(parent)  # (the parent is sampled: compute_span makes none otherwise)
        self.error: BaseException | None = None
        self.started_ns = time.time_ns()

    def record_exception(self, exc: BaseException) -> None:
        self.error = exc

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def end(self) -> None:
        _pipe.add(make_row(self.name, self.context, self.parent, self.started_ns, time.time_ns(), 0, self.attributes,
                           scope="clipper_container", error=self.error))


def shutdown() -> None:
    """Export what is buffered and stop (at the container's exit)."""
    global _tracer, _provider, _pipe
    provider, _provider, _tracer, _pipe = _provider, None, None, None
    if provider is not None:
        provider.shutdown()
