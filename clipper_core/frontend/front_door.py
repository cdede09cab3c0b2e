"""The query port's front door: ``POST /{app}/predict`` and ``POST /v2/models/{app}[/versions/{v}]/infer`` go
straight to their handlers; every other request goes through the query application (its router, the error
middleware, routes plugins add).

aiohttp's URL dispatcher resolves ``/{app}/predict`` by matching the path against each resource's pattern and
builds a match-info object, and the middleware adds a frame: measured with the same handler
(bench/http_layers.py), an application routed that way served 0.83–0.92× a static route and the low-level
server 1.12–1.31× the routed application. The front door keeps the application (plugins hook into it, and every
other endpoint is served by it unchanged) and adds one string test per request in front of it. The query path,
its SLO, admission, cache and metrics are the same on both ways in; errors are rendered by the same
:func:`~clipper_core.http_api.error_response`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from clipper_core.frontend.clipper_rest import answer_query
from clipper_core.frontend.keys import QUERY_PATH
from clipper_core.frontend.v2 import infer_model
from clipper_core.http_api import error_response

__all__ = ["RequestHandler", "front_door"]

RequestHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

_PREDICT = "/predict"
_V2_MODELS, _INFER = "/v2/models/", "/infer"


def _plain(segment: str) -> bool:
    """A path segment the router would match as it is (no escape, no further segment)."""
    return bool(segment) and "/" not in segment and "%" not in segment and "?" not in segment


def _v2_model(rest: str) -> tuple[str, str | None] | None:
    """``{app}`` or ``{app}/versions/{version}`` (what lies between ``/v2/models/`` and ``/infer``)."""
    parts = rest.split("/")
    if len(parts) == 1 and _plain(parts[0]):
        return parts[0], None
    if len(parts) == 3 and parts[1] == "versions" and _plain(parts[0]) and _plain(parts[2]):
        return parts[0], parts[2]
    return None


def front_door(app: web.Application) -> Callable[[RequestHandler], RequestHandler]:
    """Wrap the low-level server's request handler (the application's) for the query ``app``."""
    path = app[QUERY_PATH]

    def wrap(app_handler: RequestHandler) -> RequestHandler:
        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            raw = request.raw_path  # as sent: a query string or a percent-escape goes the routed way
            if request.method == "POST" and hdrs.EXPECT not in request.headers:  # (the router answers Expect)
                try:
                    if raw.endswith(_PREDICT):
                        name = raw[1:-8]
                        if _plain(name):
                            return await answer_query(request, path, name)
                    elif raw.endswith(_INFER) and raw.startswith(_V2_MODELS):
                        model = _v2_model(raw[11:-6])
                        if model is not None:
                            return await infer_model(request, path, *model)
                except Exception as exc:
                    return error_response(app, request, exc)
            return await app_handler(request)

        return handle

    return wrap
