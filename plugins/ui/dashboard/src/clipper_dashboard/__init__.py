"""clipper-dashboard: a web dashboard served by clipper's management frontend at ``/dashboard``.

It mounts itself through clipper's lifecycle hook (:mod:`clipper_dashboard.hooks`): when the management app
starts, :func:`clipper_dashboard.routes.mount` adds the page (public: it carries no data and asks for the admin
token) and its JSON endpoints under ``/dashboard/api/`` (behind the admin token, like ``/admin``).
"""

from __future__ import annotations

from clipper_dashboard.routes import mount

__all__ = ["mount"]
