"""Server health as load balancers and Kubernetes probes read it.

Liveness (``/v2/health/live``) is true while the process serves. Readiness (``/health``, ``/v2/health/ready``)
is true only while the server takes queries: not while it drains for a graceful stop, not while its state store
cannot be reached. A 503 answer says which.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from clipper_core.context import ServerContext
from clipper_core.frontend.keys import CONTEXT
from clipper_core.http_api import JSON, error_body, json_response

__all__ = ["health", "not_ready_reason", "server_not_ready"]

STORE_CHECK_TIMEOUT = 2.0
"""Seconds a readiness probe waits for the state store before calling it unreachable."""


async def not_ready_reason(request: web.Request) -> str | None:
    """Why this server should not get queries now, or None when it is ready."""
    return await server_not_ready(request.app[CONTEXT])


async def server_not_ready(ctx: ServerContext) -> str | None:
    """:func:`not_ready_reason` of the server ``ctx`` belongs to (the gRPC adapter's ServerReady asks it too)."""
    path = ctx.query_path
    if path is not None and path.draining:
        return "clipper is draining for a graceful stop: it answers the queries in flight and takes no new ones"
    try:
        await asyncio.wait_for(ctx.store.check(), STORE_CHECK_TIMEOUT)
    except Exception as exc:
        cause = str(exc) or type(exc).__name__
        return f"the state store is unreachable: {cause}"
    return None


async def health(request: web.Request) -> web.Response:
    """Readiness with the number of apps and connected replicas; 503 ``{"error", "cause"}`` when not ready."""
    reason = await not_ready_reason(request)
    if reason is not None:
        return web.Response(body=error_body("Not ready", reason), status=503, content_type=JSON,
                            headers={"Retry-After": "1"})
    path = request.app[CONTEXT].query_path
    assert path is not None
    answer = {"status": "ok", "apps": len(path.snapshot.apps),
              "replicas": sum(m.num_replicas for m in path.models.values())}
    return json_response(answer)
