"""The optional JSON access log (``CLIPPER_ACCESS_LOG=json``; off by default: a line per request costs the hot
path): one JSON object per request on the ``clipper.access`` logger, with the trace and span ids when the request
was traced (``clipper_core.tracing``)."""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from clipper_core.tracing import STATE as TRACING

__all__ = ["JsonAccessLogger", "access_logger"]


def access_logger() -> logging.Logger:
    return logging.getLogger("clipper.access")


class JsonAccessLogger(AbstractAccessLogger):
    """``{"time", "remote", "method", "path", "status", "bytes", "duration_ms", "user_agent", "trace_id",
    "span_id"}``."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time_s: float) -> None:
        entry: dict[str, Any] = {
            "time": time.time(), "remote": request.remote, "method": request.method, "path": request.path,
            "status": response.status, "bytes": response.body_length, "duration_ms": round(time_s * 1000, 3),
            "user_agent": request.headers.get("User-Agent"),
        }
        traceparent = request.headers.get("traceparent")
        if TRACING.enabled and traceparent:
            parts = traceparent.split("-")
            if len(parts) >= 3:
                entry["trace_id"], entry["parent_span_id"] = parts[1], parts[2]
        self.logger.info("%s", orjson.dumps(entry).decode())
