"""``create_query_app(ctx)``: the aiohttp application serving predictions (Clipper REST, V2, metrics, health)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry

from clipper_core.context import ServerContext
from clipper_core.frontend import clipper_rest
from clipper_core.frontend.health import health
from clipper_core.frontend.keys import CONTEXT, METRICS, QUERY_PATH
from clipper_core.frontend.metrics import query_path_rows
from clipper_core.frontend.openapi import query_openapi
from clipper_core.frontend.v2 import setup_v2_routes
from clipper_core.http_api import error_middleware, json_response
from clipper_core.metrics import MetricsCollector, render

__all__ = ["CONTEXT", "create_query_app", "setup_routes"]


def create_query_app(ctx: ServerContext) -> web.Application:
    assert ctx.query_path is not None, "the query app needs a query path"
    query_path = ctx.query_path
    app = web.Application(middlewares=[error_middleware], client_max_size=ctx.config.max_body_bytes)
    app[CONTEXT] = ctx
    app[QUERY_PATH] = query_path
    registry = CollectorRegistry(auto_describe=True)
    registry.register(MetricsCollector(lambda: query_path_rows(query_path)))
    # the autoscaler of this process's management API, when it runs one (looked up at scrape time)
    registry.register(MetricsCollector(lambda: ctx.autoscaler.metric_rows() if ctx.autoscaler is not None else []))
    app[METRICS] = registry
    setup_routes(app)
    return app


def setup_routes(app: web.Application) -> None:
    setup_v2_routes(app)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_post("/{app}/predict", clipper_rest.predict)
    app.router.add_post("/{app}/predict/", clipper_rest.predict)
    app.router.add_post("/{app}/update", clipper_rest.update)
    app.router.add_post("/{app}/update/", clipper_rest.update)


async def openapi(request: web.Request) -> web.Response:
    return json_response(query_openapi())


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=render(request.app[METRICS]), headers={"Content-Type": "text/plain; version=0.0.4"})
