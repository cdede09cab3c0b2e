"""Span export in a child process (docs/tracing.md): a traced process (a query frontend, a model container) hands
its ended spans, as plain rows, through a pipe to ``python -m clipper_container.trace_export``, which turns them
back into the SDK's spans and exports them with the exporter the ``OTEL_*`` variables name (OTLP over
HTTP/protobuf, or the console). The serving process then neither encodes spans nor runs the exporter's HTTP client:
it appends a row a span, and a thread of its own, asleep but for a write to the pipe every
``OTEL_BSP_SCHEDULE_DELAY`` (5 s) or ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` (512) spans, packs them (msgpack, in C)
and writes them.

Why: the SDK's ``BatchSpanProcessor`` encodes the spans (about 14 µs each in Python, protobuf's messages built
field by field) and posts them from a thread that holds the GIL meanwhile, which the event loop then waits for.
On noop at 16 connections with 1% of the requests traced, a frontend served 0.931× the requests/s of one with
tracing off that way, and 0.962× with its spans dropped in process instead of exported (bench/README.md,
"Tracing overhead").

As the SDK's batch processor does, spans beyond ``OTEL_BSP_MAX_QUEUE_SIZE`` (2048) waiting are dropped (counted
in :attr:`PipeSpanProcessor.dropped`), and so are the spans of a pipe whose exporter process died (logged once).
``CLIPPER_TRACING_EXPORT=thread`` keeps the SDK's batch processor in the process instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from random import getrandbits
from typing import IO, Any

import msgpack

__all__ = ["PipeSpanProcessor", "child_context", "export_in_child", "main", "make_row", "pipe_of", "read_frames",
           "row_of", "span_of"]

log = logging.getLogger("clipper_container")

NICE = 10
"""How much lower the exporter process's CPU priority is than the traced process's."""
_HEADER = struct.Struct("!I")
"""A frame's length before its msgpack body (a list of rows)."""


def export_in_child(env: Mapping[str, str]) -> bool:
    """Whether spans go to an exporter process (the default) or the SDK's batch processor in this process."""
    return env.get("CLIPPER_TRACING_EXPORT", "process").strip().lower() != "thread"


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name, "").strip()
    try:
        value = int(text) if text else default
    except ValueError:
        log.warning("%s=%r is not a whole number; using %d", name, text, default)
        return default
    return value if value > 0 else default


class PipeSpanProcessor:
    """An OpenTelemetry span processor that hands the sampled spans it ends to an exporter process.

    :param service_name: the resource's ``service.name`` the exporter process gives the spans (as the
        provider's: ``OTEL_SERVICE_NAME`` overrides it there too)
    :param env: the ``OTEL_*`` variables (the exporter process gets them, over this process's environment)
    """

    def __init__(self, service_name: str, env: Mapping[str, str]) -> None:
        self.delay_s = _env_int(env, "OTEL_BSP_SCHEDULE_DELAY", 5000) / 1000.0
        self.batch = _env_int(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)
        self.limit = max(self.batch, _env_int(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048))
        self.dropped = 0
        """Spans not exported: over the queue's limit, or their exporter process gone."""
        self._rows: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()
        """Guards ``_rows`` (spans end on the event loop's thread; the writer takes them from its own)."""
        self._write_lock = threading.Lock()
        """One frame at a time into the pipe (the writer thread, or a caller of force_flush / shutdown)."""
        self._wake = threading.Event()
        self._stopping = False
        self._child = subprocess.Popen([sys.executable, "-m", "clipper_container.trace_export", service_name],
                                       stdin=subprocess.PIPE, env={**os.environ, **env}, close_fds=True)
        self._pipe: IO[bytes] | None = self._child.stdin
        self._thread = threading.Thread(target=self._run, name="clipper-span-pipe", daemon=True)
        self._thread.start()

    @property
    def pid(self) -> int:
        """The exporter process's."""
        return self._child.pid

    # -- the SDK's SpanProcessor interface -------------------------------------------------------------------
    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass

    def _on_ending(self, span: Any) -> None:  # (the SDK's multi-processor calls it on every processor)
        pass

    def on_end(self, span: Any) -> None:
        if span.context.trace_flags.sampled:
            self.add(row_of(span))

    def add(self, row: tuple[Any, ...]) -> None:
        """An ended span as its row (:func:`row_of`, or made as :func:`clipper_core.tracing.record` does)."""
        with self._lock:
            rows = self._rows
            if len(rows) >= self.limit:
                self.dropped += 1
                return
            rows.append(row)
            full = len(rows) >= self.batch
        if full:
            self._wake.set()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Hand every span ended so far to the exporter process (which exports it on its own time)."""
        self._write_pending()
        return self._pipe is not None

    def shutdown(self) -> None:
        """Write what is left, close the pipe, and wait for the exporter process to export it and exit."""
        self._stopping = True
        self._wake.set()
        self._thread.join(10)
        self._write_pending()
        with self._write_lock:
            pipe, self._pipe = self._pipe, None
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
        try:
            self._child.wait(30)
        except subprocess.TimeoutExpired:
            log.warning("the span exporter process %d did not exit in 30 s; killed", self._child.pid)
            self._child.kill()
            self._child.wait()

    # -- the writer -------------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.delay_s)
            self._wake.clear()
            self._write_pending()

    def _write_pending(self) -> None:
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return
        frame = msgpack.packb(rows, use_bin_type=True)
        with self._write_lock:
            pipe = self._pipe
            if pipe is None:
                self.dropped += len(rows)
                return
            try:
                pipe.write(_HEADER.pack(len(frame)))
                pipe.write(frame)
                pipe.flush()
            except (OSError, ValueError) as exc:  # the exporter process is gone: tracing goes on, unexported
                self._pipe = None
                self.dropped += len(rows)
                log.warning("the span exporter process %d is gone (%s); spans are dropped from now on",
                            self._child.pid, exc)


def pipe_of(provider: Any) -> PipeSpanProcessor | None:
    """The provider's span processor when it is its only one and an exporter pipe (then a span can be handed to
    it as a row, without the SDK's span objects); None otherwise (a test's in-memory exporter, the SDK's batch
    processor)."""
    processors = tuple(getattr(provider._active_span_processor, "_span_processors", ()))
    return processors[0] if len(processors) == 1 and isinstance(processors[0], PipeSpanProcessor) else None


def child_context(parent: Any) -> Any:
    """A new sampled span context in ``parent``'s trace (for a span reported as a row, or by
    ``clipper_core.tracing.record``, once it has ended)."""
    from opentelemetry.trace import SpanContext, TraceFlags

    return SpanContext(parent.trace_id, getrandbits(64) or 1, is_remote=False,
                       trace_flags=TraceFlags(TraceFlags.SAMPLED), trace_state=parent.trace_state)


# -- rows: a span as msgpack carries it ------------------------------------------------------------------------
def _tid(trace_id: int) -> bytes:
    return trace_id.to_bytes(16, "big")


def row_of(span: Any) -> tuple[Any, ...]:
    """A ``ReadableSpan`` as a row of plain values (:func:`span_of` makes it back)."""
    status, scope = span.status, span.instrumentation_scope
    return make_row(span.name, span.context, span.parent, span.start_time, span.end_time, span.kind.value,
                    dict(span.attributes or {}), span.links,
                    [(event.name, event.timestamp, dict(event.attributes or {})) for event in span.events],
                    status.status_code.value, status.description or "",
                    scope.name if scope is not None else "", scope.version if scope is not None else None)


def make_row(name: str, context: Any, parent: Any, start_ns: int, end_ns: int, kind: int,
             attributes: dict[str, Any], links: Any = (), events: Any = (), status_code: int = 0,
             description: str = "", scope: str = "", scope_version: str | None = None, *,
             error: BaseException | None = None) -> tuple[Any, ...]:
    """A span's row from its parts (``context`` and ``parent``: span contexts; ``links``: the SDK's; ``events``:
    (name, time, attributes); ``status_code``: ``StatusCode``'s value, 0 unset). ``error``: the span failed with
    it (the ERROR status and an ``exception`` event at its end, as the SDK's ``record_exception`` gives)."""
    if error is not None:
        events = (*events, ("exception", end_ns, {"exception.type": type(error).__name__,
                                                  "exception.message": str(error)}))
        status_code, description = 2, f"{type(error).__name__}: {error}"  # (StatusCode.ERROR)
    return (name, _tid(context.trace_id), context.span_id, int(context.trace_flags),
            context.trace_state.to_header() if context.trace_state else "",
            parent.span_id if parent is not None else 0, bool(parent is not None and parent.is_remote),
            start_ns, end_ns, kind, attributes,
            [(_tid(link.context.trace_id), link.context.span_id, int(link.context.trace_flags),
              dict(link.attributes or {})) for link in links],
            list(events), status_code, description, scope, scope_version)


def span_of(row: tuple[Any, ...], resource: Any) -> Any:
    """The ``ReadableSpan`` of a :func:`row_of` row, with ``resource``."""
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

    (name, tid, span_id, flags, trace_state, parent_id, parent_remote, start, end, kind, attributes, links, events,
     code, description, scope, scope_version) = row
    trace_id = int.from_bytes(tid, "big")
    state = TraceState.from_header([trace_state]) if trace_state else None
    context = SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(flags), trace_state=state)
    parent = SpanContext(trace_id, parent_id, is_remote=parent_remote, trace_flags=TraceFlags(flags),
                         trace_state=state) if parent_id else None
    return ReadableSpan(
        name, context, parent, resource, attributes,
        tuple(Event(e_name, e_attributes, e_time) for e_name, e_time, e_attributes in events),
        tuple(Link(SpanContext(int.from_bytes(l_tid, "big"), l_span, is_remote=True, trace_flags=TraceFlags(l_flags)),
                   l_attributes) for l_tid, l_span, l_flags, l_attributes in links),
        SpanKind(kind), status=Status(StatusCode(code), description or None), start_time=start, end_time=end,
        instrumentation_scope=InstrumentationScope(scope, scope_version))


def read_frames(stream: IO[bytes]) -> Iterator[tuple[Any, ...]]:
    """The rows of each frame on ``stream``, until it ends (a frame cut short ends it too)."""
    while True:
        head = stream.read(_HEADER.size)
        if len(head) < _HEADER.size:
            return
        (size,) = _HEADER.unpack(head)
        body = stream.read(size)
        if len(body) < size:
            return
        yield msgpack.unpackb(body, raw=False, use_list=False)  # (tuples: attribute sequences as the SDK has them)


# -- the exporter process ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """``python -m clipper_container.trace_export SERVICE``: export the spans read from standard input until it
    closes (the traced process ended or shut its tracing down), then flush and exit."""
    args = sys.argv[1:] if argv is None else argv
    service = args[0] if args else "clipper"
    # The traced process's signals are not this one's: it exits when the pipe closes, after exporting the rest.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Exporting can wait; serving cannot: on a busy machine the traced process goes first (and, should this one
    # fall behind, the spans beyond OTEL_BSP_MAX_QUEUE_SIZE are dropped there, never waited for).
    with contextlib.suppress(OSError):
        os.nice(NICE)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from opentelemetry.sdk.resources import Resource

    from clipper_container.tracing import _exporter, _hashed

    exporter = _exporter(os.environ)
    if exporter is None:
        return 1
    resource = _hashed(Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or service}))
    try:
        for rows in read_frames(sys.stdin.buffer):
            try:
                exporter.export([span_of(row, resource) for row in rows])
            except Exception:  # one bad export must not end the exporting
                log.exception("exporting %d spans failed", len(rows))
    finally:
        exporter.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
