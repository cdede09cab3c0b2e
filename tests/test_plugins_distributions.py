"""Real third-party distributions installed by pip (tests/plugin_dists.py; the ``sites`` and ``activate`` fixtures
are tests/conftest.py's), found through their ``clipper`` entry points: a policy serving an app end to end, broken
plugins, and the lifecycle and exception hooks wired into a running server."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from clipper_core import hookimpl
from clipper_core.errors import PluginError
from clipper_core.http_api import HANDLE_EXCEPTION
from clipper_core.plugins import PluginRegistry, make_plugin_manager
from clipper_core.testing import ServerThread, http_json
from tests import models
from tests.conftest import Deploy
from tests.plugin_dists import DISTS, Activate

# -- distributions installed by pip into temporary site dirs ------------------------------------------

def test_pip_installed_what_a_wheel_installs(sites: dict[str, Path]) -> None:
    info = sites["acme-clipper-policy"] / "acme_clipper_policy-1.2.3.dist-info"
    assert {"METADATA", "RECORD", "entry_points.txt", "INSTALLER", "WHEEL"} <= {p.name for p in info.iterdir()}
    assert (info / "INSTALLER").read_text().strip() == "pip"
    assert (sites["acme-clipper-policy"] / "acme_policy" / "hooks.py").is_file()


# -- a third-party distribution ------------------------------------------------------------------------

def test_third_party_distribution_is_found_through_its_entry_point(activate: Activate) -> None:
    activate("acme-clipper-policy")
    registry = PluginRegistry.create()
    policy = registry.policies.get("acme-first")
    assert policy.__module__ == "acme_policy" and policy.__name__ == "AcmeFirst"
    info = {p.name: p for p in registry.plugins()}["acme"]
    assert (info.distribution, info.version, info.hooks) == ("acme-clipper-policy", "1.2.3",
                                                             ("clipper_register_policies",))
    assert str(sys.modules["acme_policy.hooks"].__file__).startswith(str(Path(sys.path[0])))


def test_third_party_policy_serves_an_app_end_to_end(activate: Activate, tmp_path: Path) -> None:
    activate("acme-clipper-policy")
    with ServerThread(tmp_path / "home") as server:
        deploy = Deploy(server, tmp_path)
        deploy.app("acme-app", policy="acme-first")
        deploy("sum-model", 1, models.feature_sum, app="acme-app")
        status, answer = server.predict("acme-app", {"input": [1.0, 2.0]})
        assert status == 200 and (answer["output"], answer["default"]) == ("acme:3.0", False), answer
        status, app = http_json(f"{server.admin_url}/admin/get_application", {"name": "acme-app"})
        assert status == 200 and app["policy"] == "acme-first" and app["linked_models"] == ["sum-model"]
        status, plugins = http_json(f"{server.admin_url}/plugins")
        assert status == 200
        assert {"name": "acme", "distribution": "acme-clipper-policy", "version": "1.2.3",
                "hooks": ["clipper_register_policies"]} in plugins


# -- broken plugins ------------------------------------------------------------------------------------

def test_entry_point_missing_a_dependency_is_skipped_with_a_warning(activate: Activate,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    activate("needs-torch", "acme-clipper-policy")
    with caplog.at_level("WARNING", logger="clipper_core.plugins"):
        registry = PluginRegistry.create()
    assert "acme-first" in registry.policies  # the others still load
    assert "needs-torch" not in {p.name for p in registry.plugins()}
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "skipping clipper plugin 'needs-torch'" in warnings[0].getMessage()
    assert "torch_that_is_not_installed" in warnings[0].getMessage()


@pytest.mark.parametrize(("dist", "error"), [("broken-runtime", "RuntimeError('boom at import')"),
                                             ("broken-import", "ImportError(\"cannot import name 'no_such_name'"),
                                             ("broken-syntax", "SyntaxError(")])
def test_entry_point_failing_to_import_aborts_with_its_name(activate: Activate, dist: str, error: str) -> None:
    activate(dist, "acme-clipper-policy")
    with pytest.raises(PluginError) as info:
        make_plugin_manager()
    module = DISTS[dist].entry_points[dist]
    assert str(info.value).startswith(f"clipper plugin '{dist}' ({module}) failed to import: {error}")
    assert isinstance(info.value.__cause__, Exception)


def test_a_disabled_broken_plugin_is_never_imported(activate: Activate) -> None:
    activate("broken-runtime")
    registry = PluginRegistry.create(make_plugin_manager(disabled="broken-runtime"))
    assert "broken_runtime" not in sys.modules
    assert "broken-runtime" not in {p.name for p in registry.plugins()}


# -- lifecycle and exception hooks in a running server --------------------------------------------------

def test_lifecycle_hooks_run_for_both_apps(activate: Activate, tmp_path: Path) -> None:
    activate("acme-ops")
    with ServerThread(tmp_path / "home") as server:
        ops = sys.modules["acme_ops"]
        apps = [runner.app for runner in server.server.runners]
        assert len(apps) == 2  # the query app and the management app
        assert [id(a) for a in ops.STARTED] == [id(a) for a in apps] and ops.STOPPED == []
    assert [id(a) for a in ops.STOPPED] == [id(a) for a in apps]


def test_handle_exception_hook_replaces_a_500(activate: Activate, tmp_path: Path) -> None:
    activate("acme-ops")
    with ServerThread(tmp_path / "home") as server:
        for runner in server.server.runners:  # wired into the query app and the management app
            assert runner.app[HANDLE_EXCEPTION] == server.server.ctx.registry.pm.hook.clipper_handle_exception
        deploy = Deploy(server, tmp_path)
        deploy.app("handled", policy="boom", policy_config={"error": "runtime"})
        deploy.app("unhandled", policy="boom", policy_config={"error": "value"})
        assert server.predict("handled", {"input": [1.0]}) == (
            503, {"error": "acme", "cause": "handled kaboom on /handled/predict"})
        # the hook returned None: the usual JSON 500
        assert server.predict("unhandled", {"input": [1.0]}) == (
            500, {"error": "Internal error", "cause": "ValueError: unhandled"})


def test_handle_exception_hook_is_firstresult() -> None:
    class Handler:
        @hookimpl
        def clipper_handle_exception(self, app: web.Application, request: web.Request,
                                     exception: BaseException) -> web.Response:
            return web.json_response({"error": "custom"}, status=503)

    class Declines:
        @hookimpl
        def clipper_handle_exception(self, app: web.Application, request: web.Request,
                                     exception: BaseException) -> Any:
            return None

    pm = make_plugin_manager(load_entry_points=False, extra=[Handler(), Declines()])
    response = pm.hook.clipper_handle_exception(app=None, request=None, exception=KeyError("x"))
    assert isinstance(response, web.Response) and response.status == 503
    assert make_plugin_manager(load_entry_points=False).hook.clipper_handle_exception(
        app=None, request=None, exception=KeyError("x")) is None
