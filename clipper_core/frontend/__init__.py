"""The query frontend: Clipper's REST API, /metrics and /health."""

from clipper_core.frontend.app import CONTEXT, create_query_app

__all__ = ["CONTEXT", "create_query_app"]
