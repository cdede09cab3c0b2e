"""The dashboard's routes on the management app.

Public (no data; the page asks for the admin token and keeps it in ``sessionStorage``): ``GET /`` (a redirect),
``GET /dashboard`` (the page) and ``GET /dashboard/static/{file}`` (its script, style and the vendored uPlot).
Behind the admin token, when one is set (the management app's middleware): ``GET /dashboard/api/overview``,
``/dashboard/api/live``, ``/dashboard/api/apps/{app}/learned?uid=N`` and ``/dashboard/api/logs?file=F&lines=N``.
The page's actions call the admin API itself (``/admin/set_num_replicas``, ``set_model_version``,
``pause_rollout``, ``abort_rollout``), with the same token.
"""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web

from clipper_core.errors import InvalidInput, NotFound
from clipper_core.http_api import json_response
from clipper_core.management.app import add_public_route
from clipper_core.management.handlers import CONTEXT
from clipper_core.management.operations import ManagementOperations
from clipper_dashboard.figures import live, overview
from clipper_dashboard.learned import learned
from clipper_dashboard.logs import MAX_LINES, tail

__all__ = ["ASSETS", "STATIC", "mount"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
ASSETS = ("dashboard.js", "dashboard.css", "vendor/uPlot.iife.min.js", "vendor/uPlot.min.css")
"""The files the page loads, relative to :data:`STATIC`; nothing else there is served."""
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
_NO_CACHE = {"Cache-Control": "no-cache"}  # revalidated (ETag): a reinstalled package is seen at once


def mount(app: web.Application) -> None:
    """Add the dashboard's routes to the management app ``app`` (from ``clipper_startup``, before it is frozen)."""
    missing = [name for name in ASSETS if not (STATIC / name).is_file()]
    if missing:
        log.error("the dashboard's files %s are missing: reinstall clipper-dashboard (its build runs npm ci)", missing)
    add_public_route(app, "GET", "/", to_dashboard)
    add_public_route(app, "GET", "/dashboard", page)
    add_public_route(app, "GET", "/dashboard/", page)
    add_public_route(app, "GET", "/dashboard/static/{name:.+}", asset)
    app.router.add_get("/dashboard/api/overview", api_overview)
    app.router.add_get("/dashboard/api/live", api_live)
    app.router.add_get("/dashboard/api/apps/{app}/learned", api_learned)
    app.router.add_get("/dashboard/api/logs", api_logs)


async def to_dashboard(request: web.Request) -> web.Response:
    raise web.HTTPFound("/dashboard")


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={**_NO_CACHE, "Content-Type": "text/html"})


async def asset(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise NotFound(f"no dashboard file {name!r}; the page loads {list(ASSETS)}")
    path = STATIC / name
    if not path.is_file():
        raise NotFound(f"the dashboard file {name!r} is not installed: reinstall clipper-dashboard (its build "
                       "runs npm ci to vendor uPlot)")
    return web.FileResponse(path, headers={**_NO_CACHE, "Content-Type": _TYPES[path.suffix]})


async def api_overview(request: web.Request) -> web.Response:
    _query(request, ())
    ctx = request.app[CONTEXT]
    answer = await overview(ctx)
    answer["logs"] = ManagementOperations.of(ctx).log_files()
    return json_response(answer)


async def api_live(request: web.Request) -> web.Response:
    _query(request, ())
    return json_response(await live(request.app[CONTEXT]))


async def api_learned(request: web.Request) -> web.Response:
    query = _query(request, ("uid",))
    uid = _integer(query.get("uid", "0"), "uid", "a user id, an integer >= 0", low=0)
    return json_response(await learned(request.app[CONTEXT], request.match_info["app"], uid))


async def api_logs(request: web.Request) -> web.Response:
    query = _query(request, ("file", "lines"))
    files = ManagementOperations.of(request.app[CONTEXT]).log_files()
    name = query.get("file")
    if not name:
        raise InvalidInput(f"query parameter 'file' is missing; expected one of the log files {files}")
    if name not in files:
        raise NotFound(f"{name!r} is not a log file of this server; expected one of {files}")
    lines = _integer(query.get("lines", "200"), "lines", f"an integer from 1 to {MAX_LINES}", low=1, high=MAX_LINES)
    try:
        text = tail(name, lines)
    except FileNotFoundError:
        raise NotFound(f"the log file {name!r} was removed") from None
    return json_response({"file": name, "lines": text})


def _query(request: web.Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query string's parameters, each at most once and each one of ``allowed``."""
    query = request.rel_url.query
    for key in query:
        if key not in allowed:
            expected = f"only {list(allowed)}" if allowed else "none"
            raise InvalidInput(f"unknown query parameter {key!r}; this endpoint takes {expected}")
        if len(query.getall(key)) > 1:
            raise InvalidInput(f"query parameter {key!r} is given {len(query.getall(key))} times; expected once")
    return dict(query)


def _integer(text: str, name: str, expected: str, *, low: int, high: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InvalidInput(f"query parameter {name!r} is {text!r}; expected {expected}") from None
    if value < low or (high is not None and value > high):
        raise InvalidInput(f"query parameter {name!r} is {value}; expected {expected}")
    return value
