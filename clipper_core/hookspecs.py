"""Every hook clipper calls. Hooks only *register classes*; the classes do the work, so pluggy never runs on
the request path. Plugins implement these with ``from clipper_core import hookimpl``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import argparse

    from aiohttp import web

    from clipper_core.interfaces import ContainerManager, Deployer, PredictionCache, SelectionPolicy
    from clipper_core.state.base import StateStore

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("clipper")
hookimpl = pluggy.HookimplMarker("clipper")


# -- registration: called once per plugin manager, at startup ------------------------------------------

@hookspec
def clipper_register_container_managers() -> list[type[ContainerManager]]:
    """Return container-manager classes (each with a unique ``name``).

    Called once when the plugin registry is built. All non-None results are collected."""
    raise NotImplementedError


@hookspec
def clipper_register_deployers() -> list[type[Deployer]]:
    """Return deployer classes (each with a unique ``name``).

    Called once when the plugin registry is built. All non-None results are collected."""
    raise NotImplementedError


@hookspec
def clipper_register_policies() -> list[type[SelectionPolicy]]:
    """Return selection-policy classes (each with a unique ``name``).

    Called once when the plugin registry is built. All non-None results are collected."""
    raise NotImplementedError


@hookspec
def clipper_register_caches() -> list[type[PredictionCache]]:
    """Return prediction-cache classes (each with a unique ``name``).

    Called once when the plugin registry is built. All non-None results are collected."""
    raise NotImplementedError


@hookspec
def clipper_register_state_stores() -> list[type[StateStore]]:
    """Return state-store classes (each with a unique ``name`` and the ``url_schemes`` it opens; a scheme may
    belong to one class only). ``CLIPPER_STATE_STORE`` picks a class by its value's scheme.

    Called once when the plugin registry is built. All non-None results are collected."""
    raise NotImplementedError


@hookspec
def clipper_add_commands(subparsers: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    """Add subcommands to the ``clipper`` command: ``p = subparsers.add_parser(name, parents=parents, help=...)``
    and ``p.set_defaults(func=run)``, where ``run(args) -> int`` returns the exit status (a ``ClipperException`` it
    raises is printed as ``clipper: error: ...``, status 1). ``parents`` carry the common options (``--home``).

    Called once each time the command line is parsed. All non-None results are collected (and ignored)."""


# -- lifecycle: called by the server process ------------------------------------------------------------

@hookspec
def clipper_startup(app: web.Application) -> None:
    """Called once when a clipper web application (query or management) has started, before it serves. The app
    is not frozen yet: a plugin may add routes (the management app is the one holding
    ``clipper_core.management.handlers.CONTEXT``; ``management.app.add_public_route`` for a page the admin token
    does not guard, as clipper-dashboard does). Never called per request.

    All non-None results are collected (and ignored)."""


@hookspec
def clipper_shutdown(app: web.Application) -> None:
    """Called once when a clipper web application is shutting down, after it stopped serving.

    All non-None results are collected (and ignored)."""


@hookspec(firstresult=True)
def clipper_handle_exception(app: web.Application, request: web.Request, exception: BaseException) -> Any:
    """Called when a request raised an exception that is not a ClipperError (a bug or an outage), before the
    500 response is written; return a ``web.Response`` to answer with instead.

    Stops at first non-None result (firstresult)."""
