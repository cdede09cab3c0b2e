"""The plugin system: documented hooks, a third-party package found through its entry point and used by an
app, precise errors for duplicate/unknown names, broken plugins, and CLIPPER_DISABLE_PLUGINS."""

from __future__ import annotations

import inspect
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from clipper_core import hookspecs
from clipper_core.errors import PluginError
from clipper_core.plugins import PluginRegistry, make_plugin_manager
from clipper_core.testing import ServerThread, http_json
from tests import models
from tests.conftest import Deploy

HOOKS = {name for name, fn in vars(hookspecs).items() if name.startswith("clipper_") and inspect.isfunction(fn)}


def test_every_hook_is_documented() -> None:
    assert {"clipper_register_container_managers", "clipper_register_deployers", "clipper_register_policies",
            "clipper_register_caches", "clipper_startup", "clipper_shutdown", "clipper_handle_exception"} == HOOKS
    for name in HOOKS:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert "Called" in doc, name
        assert "Stops at first non-None result (firstresult)" in doc or "All non-None results are collected" in doc


def install_plugin(site: Path, dist: str, module: str, source: str, entry_name: str | None = None,
                   hooks_module: str | None = None) -> None:
    """Install a distribution the way a wheel does: the module plus a ``*.dist-info`` with entry points."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[clipper]\n{entry_name or dist} = {hooks_module or module}\n")
    (info / "RECORD").write_text("")


ACME = """
    from clipper_core import hookimpl
    from clipper_core.interfaces import SelectionPolicy


    class AcmeFirst(SelectionPolicy):
        name = "acme-first"

        def select(self, state, query, models):
            return models[:1]

        def combine(self, state, query, predictions):
            for output in predictions.values():
                return f"acme:{output}", False, ""
            return self.app.default_output, True, "nothing"


    @hookimpl
    def clipper_register_policies():
        return [AcmeFirst]


    STARTED = []


    @hookimpl
    def clipper_startup(app):
        STARTED.append(app)
"""


@pytest.fixture
def acme_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site"
    install_plugin(site, "acme-clipper-policy", "acme_policy", ACME)
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("acme_policy", None)


def test_third_party_policy_is_found_through_its_entry_point(acme_site: Path) -> None:
    registry = PluginRegistry.create()
    assert "acme-first" in registry.policies
    info = {p.name: p for p in registry.plugins()}["acme-clipper-policy"]
    assert (info.distribution, info.version) == ("acme-clipper-policy", "1.2.3")
    assert "clipper_register_policies" in info.hooks


def test_an_app_uses_the_third_party_policy(acme_site: Path, tmp_path: Path) -> None:
    with ServerThread(tmp_path / "home") as server:
        deploy = Deploy(server, tmp_path)
        deploy.app("acme-app", policy="acme-first")
        deploy("sum-model", 1, models.feature_sum, app="acme-app")
        status, answer = server.predict("acme-app", {"input": [1.0, 2.0]})
        assert status == 200 and answer["output"] == "acme:3.0"
        status, plugins = http_json(f"{server.admin_url}/plugins")
        assert any(p["name"] == "acme-clipper-policy" and "clipper_register_policies" in p["hooks"] for p in plugins)
        assert sys.modules["acme_policy"].STARTED  # the lifecycle hook ran for the apps


def test_duplicate_policy_names_name_both_plugins(acme_site: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path / "site2", "other-policies", "other_policy", ACME.replace("STARTED = []", ""))
    monkeypatch.syspath_prepend(str(tmp_path / "site2"))
    with pytest.raises(PluginError, match="'acme-first' is defined by both"):
        PluginRegistry.create()


def test_unknown_name_lists_what_is_installed() -> None:
    registry = PluginRegistry.create()
    with pytest.raises(PluginError, match=r"no selection policy named 'zzz'; installed: \[.*'default'"):
        registry.policies.get("zzz")
    with pytest.raises(PluginError, match=r"no cache backend named 'nope'; installed: \[.*'lru'"):
        registry.caches.get("nope")


def test_plugin_missing_a_dependency_is_skipped_but_a_broken_one_aborts(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    install_plugin(tmp_path / "a", "needs-torch", "needs_torch", "import torch_that_is_not_here\n")
    monkeypatch.syspath_prepend(str(tmp_path / "a"))
    PluginRegistry.create()
    assert "skipping clipper plugin 'needs-torch'" in caplog.text
    install_plugin(tmp_path / "b", "broken-plugin", "broken_plugin", "raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "b"))
    with pytest.raises(PluginError, match=r"clipper plugin 'broken-plugin'.*failed to import.*boom"):
        PluginRegistry.create()


def test_disabled_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "lru" not in PluginRegistry.create(make_plugin_manager(disabled="lru")).caches
    monkeypatch.setenv("CLIPPER_DISABLE_PLUGINS", "lru, default_policy")
    registry = PluginRegistry.create()
    assert "lru" not in registry.caches and "default" not in registry.policies
    assert "local" in registry.container_managers


def test_extra_plugin_objects_register_like_entry_points() -> None:
    from clipper_core import hookimpl
    from clipper_core.default_plugins.lru_cache import LRUCache

    class Tiny(LRUCache):
        name = "tiny"

    class Extra:
        @hookimpl
        def clipper_register_caches(self) -> list[type]:
            return [Tiny]

    registry = PluginRegistry.create(make_plugin_manager(extra=[Extra()]))
    assert registry.caches.get("tiny") is Tiny


def test_handle_exception_hook_can_replace_a_500(tmp_path: Path) -> None:
    from aiohttp import web

    from clipper_core import hookimpl

    class Handler:
        @hookimpl
        def clipper_handle_exception(self, app: web.Application, request: web.Request,
                                     exception: BaseException) -> web.Response:
            return web.json_response({"error": "custom", "cause": type(exception).__name__}, status=503)

    pm = make_plugin_manager(extra=[Handler()])
    response = pm.hook.clipper_handle_exception(app=None, request=None, exception=KeyError("x"))
    assert response.status == 503
