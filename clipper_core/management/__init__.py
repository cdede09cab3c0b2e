"""The management frontend: Clipper's /admin/* REST API.

``app`` builds the aiohttp app, ``handlers`` read request bodies (``fields``) and write answers (``render``),
``operations`` holds the rules every management operation checks, ``openapi`` describes the API.
"""

from clipper_core.management.app import create_admin_app
from clipper_core.management.operations import ManagementOperations

__all__ = ["ManagementOperations", "create_admin_app"]
