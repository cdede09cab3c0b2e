"""The typed keys under which the query app keeps its resources (aiohttp ``AppKey``)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry

from clipper_core.context import ServerContext
from clipper_core.serving.query_path import QueryPath

__all__ = ["CONTEXT", "METRICS", "QUERY_PATH"]

CONTEXT = web.AppKey("clipper_context", ServerContext)
QUERY_PATH = web.AppKey("clipper_query_path", QueryPath)
METRICS = web.AppKey("clipper_metrics_registry", CollectorRegistry)
