"""Registers the dashboard with clipper (entry point group ``clipper``): on the management app's start-up, before
it serves, its routes are added (the query app is left alone)."""

from __future__ import annotations

from aiohttp import web

from clipper_core import hookimpl
from clipper_core.management.handlers import CONTEXT


@hookimpl
def clipper_startup(app: web.Application) -> None:
    if CONTEXT in app:
        from clipper_dashboard.routes import mount

        mount(app)
