"""``create_admin_app(ctx)``: the management frontend (Clipper's /admin API), 127.0.0.1 by default."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from clipper_core.context import ServerContext
from clipper_core.errors import Unauthorized
from clipper_core.http_api import error_middleware
from clipper_core.management.handlers import CONTEXT, ROUTES

__all__ = ["PUBLIC_ROUTES", "add_public_route", "create_admin_app", "setup_routes"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC_ROUTES: web.AppKey[set[web.AbstractRoute]] = web.AppKey("clipper_public_routes", set)
"""The routes of the management app that the bearer token does not guard (:func:`add_public_route`)."""


def create_admin_app(ctx: ServerContext) -> web.Application:
    middlewares: list[Any] = [error_middleware]
    if ctx.config.admin_token:
        middlewares.append(bearer_token_middleware(ctx.config.admin_token))
    app = web.Application(middlewares=middlewares, client_max_size=ctx.config.max_body_bytes)
    app[CONTEXT] = ctx
    app[PUBLIC_ROUTES] = set()
    setup_routes(app)
    return app


def add_public_route(app: web.Application, method: str, path: str, handler: Handler) -> web.AbstractRoute:
    """Add a route that answers without the admin token: a page that carries no data and asks for the token
    itself (the dashboard plugin's HTML, script and style). Every other route stays guarded. A plugin calls it
    from ``clipper_startup``, before the app is frozen."""
    route = app.router.add_route(method, path, handler)
    app[PUBLIC_ROUTES].add(route)
    return route


def setup_routes(app: web.Application) -> None:
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)


def bearer_token_middleware(token: str) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """Every endpoint, ping included, requires ``Authorization: Bearer <token>`` (constant-time compare of the
    token; the scheme is case-insensitive, RFC 7235 §2.1); only the routes :func:`add_public_route` added do not."""
    expected = token.encode()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.route in request.app.get(PUBLIC_ROUTES, ()):
            return await handler(request)
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), expected):
            raise Unauthorized("this endpoint requires the header 'Authorization: Bearer <CLIPPER_ADMIN_TOKEN>'",
                               headers={"WWW-Authenticate": 'Bearer realm="clipper-admin"'})
        return await handler(request)

    return middleware
