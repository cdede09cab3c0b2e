"""The model side of the container: a thread that runs batches and turns outputs into RESULT headers.

The worker never touches the frontend's socket: it takes ``(session, header, frames)`` jobs from a
:class:`queue.SimpleQueue` and sends ``[session, packed RESULT]`` through an inproc PAIR socket to the I/O thread,
which forwards it (ZeroMQ sockets are not thread-safe). A job from an older session (the container reconnected
or re-introduced itself since) is skipped: the frontend has already given up on it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import zmq

from clipper_container import tracing
from clipper_container.loading import Predictor
from clipper_container.protocol import MsgType, ProtocolError, decode_inputs, pack

__all__ = ["DONE", "Job", "Worker", "build_result", "to_wire"]

log = logging.getLogger("clipper_container")

DONE = b""
"""The session frame of the worker's last message on the PAIR socket: it has stopped."""

_MAX_INT = 2**64 - 1
_MIN_INT = -(2**63)


class Job(NamedTuple):
    """One PREDICT message: the session it arrived in, its header and its payload frames."""

    session: int
    header: dict[str, Any]
    frames: list[Any]


def error_text(exc: BaseException) -> str:
    """``"<ExceptionType>: <message>"`` as the protocol reports errors."""
    return f"{type(exc).__name__}: {exc}"


def to_wire(value: Any) -> Any:
    """Convert a model output to a msgpack-safe value.

    numpy scalars become Python scalars (``.item()``), arrays lists (``.tolist()``); ``str``, ``int``, ``float``,
    ``bool`` and ``None`` stay; lists, tuples and dicts are converted element-wise (dict keys that are not
    ``str``/``int`` become ``str``); anything else becomes ``str(value)``.
    """
    if value is None or isinstance(value, (str, bool, float)):
        return value
    if isinstance(value, int):
        return value if _MIN_INT <= value <= _MAX_INT else str(value)
    if isinstance(value, np.ndarray):
        return to_wire(value.tolist())
    if isinstance(value, np.generic):
        item = value.item()
        return str(item) if isinstance(item, (np.generic, bytes)) else to_wire(item)
    if isinstance(value, (list, tuple)):
        if all(v.__class__ is float for v in value):  # a row of a framework's float output (rows(), .tolist())
            return value if value.__class__ is list else list(value)
        return [to_wire(v) for v in value]
    if isinstance(value, dict):
        return {
            (k if isinstance(k, str) or (isinstance(k, int) and not isinstance(k, bool)) else str(to_wire(k))):
            to_wire(v)
            for k, v in value.items()
        }
    return str(value)


def _declared_size(header: dict[str, Any]) -> int:
    """The batch size the header announces (0 if it announces none)."""
    shape, lens = header.get("shape"), header.get("lens")
    if header.get("kind") == "array" and isinstance(shape, list) and shape and isinstance(shape[0], int):
        return shape[0]
    return len(lens) if isinstance(lens, list) else 0


def build_result(header: dict[str, Any], frames: list[Any], predictor: Predictor) -> dict[str, Any]:
    """Run one PREDICT through ``predictor`` and return the RESULT header (never raises for model errors)."""
    result: dict[str, Any] = {"t": int(MsgType.RESULT), "id": header.get("id")}
    try:
        batch = decode_inputs(header, frames)
    except ProtocolError as exc:
        result.update(n=_declared_size(header), error=error_text(exc), compute_ms=0.0)
        return result
    n = _declared_size(header)
    result["n"] = n
    span = tracing.compute_span(header.get("tp"), n)  # None unless tracing is on and the batch is traced
    start = time.perf_counter()
    try:
        outputs = predictor.predict(batch)
    except BaseException as exc:  # a model must never take the container down
        result.update(error=error_text(exc), compute_ms=(time.perf_counter() - start) * 1e3)
        if span is not None:
            span.record_exception(exc)
            span.set_attribute("error.type", type(exc).__name__)
            span.end()
        return result
    result["compute_ms"] = (time.perf_counter() - start) * 1e3
    if span is not None:
        span.end()
    try:
        if isinstance(outputs, (str, bytes, dict)) or not hasattr(outputs, "__getitem__"):
            raise TypeError
        count = len(outputs)
    except TypeError:
        result["error"] = f"model returned {type(outputs).__name__}, expected a list of {n} outputs"
        return result
    if count != n:
        result["error"] = f"model returned {count} outputs for a batch of {n} inputs"
        return result
    out: list[Any] = []
    errs: list[list[Any]] = []
    for i in range(n):
        item = outputs[i]
        if isinstance(item, BaseException):
            errs.append([i, error_text(item)])
            out.append(None)
            continue
        try:
            out.append(to_wire(item))
        except Exception as exc:  # e.g. a __str__ that raises
            errs.append([i, f"output is not serialisable: {error_text(exc)}"])
            out.append(None)
    result["out"] = out
    if errs:
        result["errs"] = errs
    return result


class Worker(threading.Thread):
    """Runs batches one at a time; results go to the I/O thread through a PAIR socket connected to ``address``.

    ``session_alive(session)`` is asked before each job so that jobs from an abandoned session are skipped. Put
    ``None`` in ``jobs`` to stop it; its last message carries the session frame :data:`DONE`.
    """

    def __init__(self, predictor: Predictor, context: zmq.Context[Any], address: str,
                 session_alive: Callable[[int], bool]) -> None:
        super().__init__(name="clipper-worker", daemon=True)
        self.predictor = predictor
        self.jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._context = context
        self._address = address
        self._session_alive = session_alive

    def run(self) -> None:
        """Thread body: take jobs until ``None``."""
        pair = self._context.socket(zmq.PAIR)
        pair.setsockopt(zmq.LINGER, 0)
        pair.connect(self._address)
        try:
            while (job := self.jobs.get()) is not None:
                if not self._session_alive(job.session):
                    log.info("skipping batch %s from an abandoned session", job.header.get("id"))
                    continue
                session = job.session
                result = build_result(job.header, job.frames, self.predictor)
                del job  # release the input frames before the next get()
                try:
                    packed = pack(result)
                except Exception as exc:
                    log.warning("RESULT for batch %s not serialisable: %s", result.get("id"), exc)
                    packed = pack({"t": int(MsgType.RESULT), "id": result.get("id"), "n": result.get("n", 0),
                                   "error": f"outputs are not serialisable: {error_text(exc)}",
                                   "compute_ms": result.get("compute_ms", 0.0)})
                pair.send_multipart([session.to_bytes(8, "little"), packed])
                if "error" in result:
                    log.warning("batch %s failed: %s", result.get("id"), result["error"])
                else:
                    log.debug("batch %s: %d outputs, %d item errors, %.2f ms in the model", result.get("id"),
                              result["n"], len(result.get("errs", ())), result["compute_ms"])
        except BaseException:
            log.exception("worker thread crashed")
        finally:
            pair.send_multipart([DONE, b""])
            pair.close()
