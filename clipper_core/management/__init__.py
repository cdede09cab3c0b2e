"""The management frontend: Clipper's /admin/* REST API."""

from clipper_core.management.app import create_admin_app

__all__ = ["create_admin_app"]
