"""``create_query_app(ctx)``: the aiohttp application serving predictions."""

from __future__ import annotations

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry

from clipper_core.context import ServerContext
from clipper_core.frontend.metrics import router_rows
from clipper_core.frontend.v2 import setup_v2_routes
from clipper_core.http_api import error_middleware, read_json_object
from clipper_core.metrics import MetricsCollector, render
from clipper_core.openapi import query_openapi
from clipper_core.serving.router import Router

__all__ = ["CONTEXT", "create_query_app", "setup_routes"]

CONTEXT = web.AppKey("clipper_context", ServerContext)
ROUTER = web.AppKey("clipper_router", Router)
METRICS = web.AppKey("clipper_metrics_registry", CollectorRegistry)
JSON = "application/json"


def create_query_app(ctx: ServerContext) -> web.Application:
    assert ctx.router is not None, "the query app needs a router"
    app = web.Application(middlewares=[error_middleware], client_max_size=ctx.config.max_body_bytes)
    app[CONTEXT] = ctx
    app[ROUTER] = ctx.router
    registry = CollectorRegistry(auto_describe=True)
    registry.register(MetricsCollector(lambda: router_rows(ctx.router)))  # type: ignore[arg-type]
    app[METRICS] = registry
    setup_routes(app)
    return app


def setup_routes(app: web.Application) -> None:
    setup_v2_routes(app, ROUTER)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_post("/{app}/predict", predict)
    app.router.add_post("/{app}/predict/", predict)
    app.router.add_post("/{app}/update", update)
    app.router.add_post("/{app}/update/", update)


EXPECTED_QUERY = "a JSON object with 'input' or 'input_batch'"


async def predict(request: web.Request) -> web.Response:
    body = await read_json_object(request, EXPECTED_QUERY)
    result = await request.app[ROUTER].predict(request.match_info["app"], body)
    return web.Response(body=orjson.dumps(result), content_type=JSON)


async def update(request: web.Request) -> web.Response:
    body = await read_json_object(request, "a JSON object with 'input' and 'label'")
    result = await request.app[ROUTER].update(request.match_info["app"], body)
    return web.Response(body=orjson.dumps(result), content_type=JSON)


async def health(request: web.Request) -> web.Response:
    router = request.app[ROUTER]
    return web.Response(body=orjson.dumps({"status": "ok", "apps": len(router.apps),
                                           "replicas": sum(m.num_replicas for m in router.models.values())}),
                        content_type=JSON)


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(query_openapi()), content_type=JSON)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=render(request.app[METRICS]), headers={"Content-Type": "text/plain; version=0.0.4"})
