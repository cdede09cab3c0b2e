"""The plugin host: documented and tested hooks, the registration hooks, precise registry errors and disabling.
Real third-party distributions installed by pip (found through their ``clipper`` entry points, broken ones, and the
lifecycle and exception hooks wired into a running server) are test_plugins_distributions.py's; state stores,
resolved by URL scheme, test_plugins_state_stores.py's."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

from clipper_core import hookimpl, hookspecs
from clipper_core.default_plugins.closure_deployer import PythonClosureDeployer
from clipper_core.default_plugins.default_policy import DefaultPolicy
from clipper_core.default_plugins.local_manager import LocalContainerManager
from clipper_core.default_plugins.lru_cache import LRUCache
from clipper_core.errors import PluginError
from clipper_core.interfaces import ContainerManager, Deployer, PredictionCache, SelectionPolicy
from clipper_core.plugins import PluginRegistry, make_plugin_manager
from clipper_core.testing import ServerThread, http_json
from tests.plugin_dists import Activate

HOOKS = {name for name, fn in vars(hookspecs).items() if inspect.isfunction(fn) and hasattr(fn, "clipper_spec")}
FIRSTRESULT = "Stops at first non-None result (firstresult)"
COLLECTED = "All non-None results are collected"

# Which tests exercise each hook, as "module:test" (a test module of tests/); test_every_hook_is_tested keeps this in
# step with hookspecs.py.
COVERED: dict[str, set[str]] = {
    "clipper_register_container_managers": {"test_plugins:test_registration_hooks_collect_classes_from_every_plugin"},
    "clipper_register_deployers": {"test_plugins:test_registration_hooks_collect_classes_from_every_plugin"},
    "clipper_register_caches": {"test_plugins:test_registration_hooks_collect_classes_from_every_plugin",
                                "test_plugins:test_a_third_party_cache_clashing_with_a_builtin_names_both"},
    "clipper_register_policies": {
        "test_plugins_distributions:test_third_party_distribution_is_found_through_its_entry_point",
        "test_plugins_distributions:test_third_party_policy_serves_an_app_end_to_end"},
    "clipper_register_state_stores": {"test_plugins_state_stores:test_builtin_state_stores_are_found_by_scheme",
                                      "test_plugins_state_stores:test_a_third_party_state_store_is_found_by_its_scheme"},
    "clipper_startup": {"test_plugins_distributions:test_lifecycle_hooks_run_for_both_apps"},
    "clipper_shutdown": {"test_plugins_distributions:test_lifecycle_hooks_run_for_both_apps"},
    "clipper_handle_exception": {"test_plugins_distributions:test_handle_exception_hook_replaces_a_500"},
    "clipper_add_commands": {"test_plugins:test_a_plugin_adds_a_subcommand_to_clipper"},
}


# -- the hookspecs themselves --------------------------------------------------------------------------

def test_every_hook_is_documented() -> None:
    pm = make_plugin_manager(load_entry_points=False)
    assert HOOKS, "no hookspecs found"
    for name in sorted(HOOKS):
        assert name.startswith("clipper_"), name
        fn = getattr(hookspecs, name)
        doc = inspect.getdoc(fn) or ""
        assert "called" in doc.lower(), f"{name}: the docstring must say when the hook is called"
        firstresult = bool(getattr(pm.hook, name).spec.opts.get("firstresult"))
        assert (FIRSTRESULT in doc, COLLECTED in doc) == (firstresult, not firstresult), (
            f"{name}: the docstring must say {FIRSTRESULT!r} or {COLLECTED!r}, matching the hookspec")
        assert not (firstresult and inspect.iscoroutinefunction(fn)), f"{name}: async and firstresult"
        assert "return" in fn.__annotations__, f"{name}: untyped"


def test_every_hook_is_tested() -> None:
    assert set(COVERED) == HOOKS
    for hook, tests in COVERED.items():
        for test in tests:
            module, _, name = test.partition(":")
            assert inspect.isfunction(getattr(importlib.import_module(f"tests.{module}"), name, None)), (
                f"{hook}: {test} does not exist")


# -- registration hooks --------------------------------------------------------------------------------

class AcmeManager(LocalContainerManager):
    name = "acme-manager"


class AcmeDeployer(PythonClosureDeployer):
    name = "acme-deployer"


class AcmeCache(LRUCache):
    name = "acme-cache"


class AcmePolicy(DefaultPolicy):
    name = "acme-policy"
    max_models = None


class EveryKind:
    """A plugin object (not a module) implementing every registration hook."""

    __name__ = "every-kind"

    @hookimpl
    def clipper_register_container_managers(self) -> list[type[ContainerManager]]:
        return [AcmeManager]

    @hookimpl
    def clipper_register_deployers(self) -> list[type[Deployer]]:
        return [AcmeDeployer]

    @hookimpl
    def clipper_register_policies(self) -> list[type[SelectionPolicy]]:
        return [AcmePolicy]

    @hookimpl
    def clipper_register_caches(self) -> list[type[PredictionCache]]:
        return [AcmeCache]


class Nothing:
    """Returning None from a registration hook registers nothing (and is not an error)."""

    __name__ = "nothing"

    @hookimpl
    def clipper_register_caches(self) -> None:
        return None


def test_registration_hooks_collect_classes_from_every_plugin() -> None:
    # the built-in state stores are left out here: test_builtin_state_stores_are_found_by_scheme covers them
    registry = PluginRegistry.create(make_plugin_manager(extra=[EveryKind(), Nothing()], disabled="state_stores"))
    assert registry.container_managers.get("acme-manager") is AcmeManager
    assert registry.deployers.get("acme-deployer") is AcmeDeployer
    assert registry.policies.get("acme-policy") is AcmePolicy
    assert registry.caches.get("acme-cache") is AcmeCache
    # the built-ins are collected alongside, registered like any plugin
    assert registry.container_managers.get("local") is LocalContainerManager
    assert registry.deployers.get("python_closure") is PythonClosureDeployer
    assert registry.policies.get("default") is DefaultPolicy
    assert registry.caches.get("lru") is LRUCache
    plugins = {p.name: p for p in registry.plugins()}
    assert plugins["every-kind"].hooks == ("clipper_register_caches", "clipper_register_container_managers",
                                           "clipper_register_deployers", "clipper_register_policies")
    assert plugins["nothing"].hooks == ("clipper_register_caches",)
    builtins = {name: (p.distribution, p.hooks) for name, p in plugins.items() if p.distribution == "clipper-core"}
    assert builtins == {"default_policy": ("clipper-core", ("clipper_register_policies",)),
                        "local": ("clipper-core", ("clipper_register_container_managers",)),
                        "lru": ("clipper-core", ("clipper_register_caches",)),
                        "python_closure": ("clipper-core", ("clipper_register_deployers",))}


def test_each_plugin_manager_keeps_its_own_distributions() -> None:
    first = make_plugin_manager(load_entry_points=False, extra=[EveryKind()])
    second = make_plugin_manager(load_entry_points=False)
    lru = first.get_plugin("lru")
    assert first.distribution(lru) == second.distribution(second.get_plugin("lru"))
    dist = first.distribution(lru)
    assert dist is not None and dist[0] == "clipper-core"
    assert first.distribution(first.get_plugin("every-kind")) is None  # registered directly, by no distribution
    first.unregister(name="lru")
    assert first.distribution(lru) is None and second.get_plugin("lru") is not None
    # registered again (by a test, say) it is nobody's distribution's any more
    first.register(lru, name="lru")
    assert PluginRegistry.create(first).caches.owner("lru") == "lru"


def test_extra_plugin_objects_are_registered() -> None:
    pm = make_plugin_manager(load_entry_points=False, extra=[EveryKind()])
    assert pm.has_plugin("every-kind")
    assert "acme-policy" in PluginRegistry.create(pm).policies


def test_a_class_without_a_name_is_refused() -> None:
    class Nameless(DefaultPolicy):
        name = ""

    class Plugin:
        @hookimpl
        def clipper_register_policies(self) -> list[type[SelectionPolicy]]:
            return [Nameless]

    with pytest.raises(PluginError, match=r"selection policy class .*Nameless from .* has no 'name'"):
        PluginRegistry.create(make_plugin_manager(extra=[Plugin()]))


# -- precise registry errors ---------------------------------------------------------------------------

def test_duplicate_names_from_two_distributions_name_both(activate: Activate) -> None:
    activate("acme-clipper-policy", "other-policies")
    with pytest.raises(PluginError) as info:
        PluginRegistry.create()
    assert str(info.value) in {
        "selection policy name 'acme-first' is defined by both acme-clipper-policy and other-policies",
        "selection policy name 'acme-first' is defined by both other-policies and acme-clipper-policy"}


def test_a_third_party_cache_clashing_with_a_builtin_names_both(activate: Activate) -> None:
    activate("clash-cache")
    with pytest.raises(PluginError, match=r"^cache backend name 'lru' is defined by both clash-cache and "
                                          r"clipper-core \(lru\)$"):
        PluginRegistry.create()
    # disabling the built-in resolves the clash: the third-party class takes the name
    assert PluginRegistry.create(make_plugin_manager(disabled="lru")).caches.get("lru").__module__ == "clash_cache"


class Alpha:
    __name__ = "alpha"

    @hookimpl
    def clipper_register_policies(self) -> list[type[SelectionPolicy]]:
        return [type("X1", (DefaultPolicy,), {"name": "x"})]


class Beta:
    __name__ = "beta"

    @hookimpl
    def clipper_register_policies(self) -> list[type[SelectionPolicy]]:
        return [type("X2", (DefaultPolicy,), {"name": "x"})]


def test_duplicate_names_from_two_plugin_objects_raise() -> None:
    with pytest.raises(PluginError, match=r"^selection policy name 'x' is defined by both "):
        PluginRegistry.create(make_plugin_manager(extra=[Alpha(), Beta()]))


def test_duplicate_names_from_two_plugin_objects_name_both() -> None:
    with pytest.raises(PluginError, match=r"^selection policy name 'x' is defined by both alpha and beta$"):
        PluginRegistry.create(make_plugin_manager(extra=[Alpha(), Beta()]))


@pytest.mark.parametrize(("kind", "attr"), [("container manager", "container_managers"), ("deployer", "deployers"),
                                            ("selection policy", "policies"), ("cache backend", "caches")])
def test_unknown_name_lists_what_is_installed(kind: str, attr: str) -> None:
    register = getattr(PluginRegistry.create(), attr)
    with pytest.raises(PluginError) as info:
        register.get("zzz")
    installed = register.names()
    assert installed and installed == sorted(installed)
    assert str(info.value) == f"no {kind} named 'zzz'; installed: {installed}"
    assert info.value.status == 400  # a client asked for it (e.g. add_app's policy): not a server error


def test_unknown_policy_message() -> None:
    registry = PluginRegistry.create(make_plugin_manager(load_entry_points=False))
    with pytest.raises(PluginError, match=r"^no selection policy named 'zzz'; installed: \['default'\]$"):
        registry.policies.get("zzz")


# -- disabling -----------------------------------------------------------------------------------------

def test_disabled_argument_blocks_the_builtin_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLIPPER_DISABLE_PLUGINS", raising=False)
    registry = PluginRegistry.create(make_plugin_manager(disabled="lru"))
    assert "lru" not in registry.caches
    assert "lru" not in {p.name for p in registry.plugins()}
    assert {"local", "python_closure", "default_policy"} <= {p.name for p in registry.plugins()}


def test_environment_variable_blocks_plugins(monkeypatch: pytest.MonkeyPatch, activate: Activate) -> None:
    activate("acme-clipper-policy")
    monkeypatch.setenv("CLIPPER_DISABLE_PLUGINS", " lru , acme ")
    registry = PluginRegistry.create()
    assert "lru" not in registry.caches and "acme-first" not in registry.policies
    assert "default" in registry.policies and "local" in registry.container_managers
    monkeypatch.delenv("CLIPPER_DISABLE_PLUGINS")
    assert "lru" in PluginRegistry.create().caches


def test_server_with_the_builtin_cache_disabled(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match=r"^no cache backend named 'lru'; installed: "):
        ServerThread(tmp_path / "a", disabled_plugins="lru", state_store="memory").start()
    with ServerThread(tmp_path / "b", disabled_plugins="lru", cache_size_bytes=0) as server:
        status, plugins = http_json(f"{server.admin_url}/plugins")
        assert status == 200 and "lru" not in {p["name"] for p in plugins}


# -- command-line hook ---------------------------------------------------------------------------------

def test_a_plugin_adds_a_subcommand_to_clipper(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from clipper_core import cli, plugins

    class Greeter:
        @hookimpl
        def clipper_add_commands(self, subparsers: argparse._SubParsersAction,
                                 parents: list[argparse.ArgumentParser]) -> None:
            hello = subparsers.add_parser("hello", parents=parents, help="say hello")
            hello.add_argument("--name", default="world")
            hello.set_defaults(func=lambda args: print(f"hello {args.name}") or 0)

    real = plugins.make_plugin_manager
    monkeypatch.setattr(plugins, "make_plugin_manager", lambda **options: real(**options, extra=[Greeter()]))
    assert cli.main(["hello", "--name", "clipper"]) == 0
    assert capsys.readouterr().out == "hello clipper\n"
    assert "hello" in cli.build_parser().format_help()
