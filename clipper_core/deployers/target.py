"""What the deploy functions (``deploy_python_closure``, the framework deployers' ``deploy_*_model``) deploy
through: :func:`deploy_target` passes their ``make_current`` on to ``ClipperConnection.build_and_deploy_model``,
which :meth:`clipper_core.interfaces.Deployer.deploy` calls with Clipper's arguments only."""

from __future__ import annotations

from typing import Any

__all__ = ["deploy_target"]


def deploy_target(conn: Any, make_current: bool = True) -> Any:
    """``conn`` itself (the new version becomes current, as in Clipper), or with ``make_current=False`` ``conn``
    registering the version without making it current: its replicas start, the current version keeps every
    query (a candidate for ``start_rollout``)."""
    return conn if make_current else _NotCurrent(conn)


class _NotCurrent:
    """A ``DeployTarget`` registering versions that do not become current."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def build_and_deploy_model(self, *args: Any, **kwargs: Any) -> None:
        self.conn.build_and_deploy_model(*args, **kwargs, make_current=False)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)
