"""The plugin host: documented and tested hooks, real third-party distributions installed by pip and found
through their ``clipper`` entry points, precise registry errors, broken and disabled plugins, and the lifecycle
and exception hooks wired into a running server."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from clipper_core import hookimpl, hookspecs
from clipper_core.config import Config, ConfigError
from clipper_core.default_plugins.closure_deployer import PythonClosureDeployer
from clipper_core.default_plugins.default_policy import DefaultPolicy
from clipper_core.default_plugins.local_manager import LocalContainerManager
from clipper_core.default_plugins.lru_cache import LRUCache
from clipper_core.errors import PluginError
from clipper_core.http_api import HANDLE_EXCEPTION
from clipper_core.interfaces import ContainerManager, Deployer, PredictionCache, SelectionPolicy
from clipper_core.plugins import PluginRegistry, make_plugin_manager
from clipper_core.state import StateStore
from clipper_core.state.memory import MemoryStateStore
from clipper_core.state.redis import RedisStateStore
from clipper_core.state.sqlite import SqliteStateStore
from clipper_core.testing import ServerThread, http_json
from tests import models
from tests.conftest import Deploy

HOOKS = {name for name, fn in vars(hookspecs).items() if inspect.isfunction(fn) and hasattr(fn, "clipper_spec")}
FIRSTRESULT = "Stops at first non-None result (firstresult)"
COLLECTED = "All non-None results are collected"

# Which tests exercise each hook; test_every_hook_is_tested keeps this in step with hookspecs.py.
COVERED: dict[str, set[str]] = {
    "clipper_register_container_managers": {"test_registration_hooks_collect_classes_from_every_plugin"},
    "clipper_register_deployers": {"test_registration_hooks_collect_classes_from_every_plugin"},
    "clipper_register_caches": {"test_registration_hooks_collect_classes_from_every_plugin",
                                "test_a_third_party_cache_clashing_with_a_builtin_names_both"},
    "clipper_register_policies": {"test_third_party_distribution_is_found_through_its_entry_point",
                                  "test_third_party_policy_serves_an_app_end_to_end"},
    "clipper_register_state_stores": {"test_builtin_state_stores_are_found_by_scheme",
                                      "test_a_third_party_state_store_is_found_by_its_scheme"},
    "clipper_startup": {"test_lifecycle_hooks_run_for_both_apps"},
    "clipper_shutdown": {"test_lifecycle_hooks_run_for_both_apps"},
    "clipper_handle_exception": {"test_handle_exception_hook_replaces_a_500"},
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
    module = sys.modules[__name__]
    for hook, tests in COVERED.items():
        for test in tests:
            assert inspect.isfunction(getattr(module, test, None)), f"{hook}: {test} does not exist"


# -- distributions installed by pip into temporary site dirs ------------------------------------------

BACKEND = '''
"""A minimal in-tree PEP 517 backend: the files and entry points listed in wheel.json, packed as a wheel."""
import base64, hashlib, json, zipfile
from pathlib import Path


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    spec = json.loads(Path("wheel.json").read_text())
    stem = f"{spec['name'].replace('-', '_')}-{spec['version']}"
    info = f"{stem}.dist-info"
    files = {path: Path(path).read_bytes() for path in spec["files"]}
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\\nName: {spec['name']}\\nVersion: {spec['version']}\\n".encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    files[f"{info}/entry_points.txt"] = spec["entry_points"].encode()
    digest = lambda data: base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record = [f"{path},sha256={digest(data)},{len(data)}" for path, data in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\\n".join(record) + "\\n").encode()
    wheel = f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(Path(wheel_directory) / wheel, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel
'''


@dataclass(frozen=True)
class Dist:
    name: str
    files: dict[str, str]
    entry_points: dict[str, str]
    version: str = "1.2.3"

    @property
    def modules(self) -> set[str]:
        return {path.split("/")[0].removesuffix(".py") for path in self.files}


ACME_POLICY = """
    from clipper_core.interfaces import SelectionPolicy


    class AcmeFirst(SelectionPolicy):
        \"\"\"The first linked model's output, tagged so that a test can see this policy answered.\"\"\"

        name = "acme-first"

        def select(self, state, query, models):
            return models[:1]

        def combine(self, state, query, predictions):
            for output in predictions.values():
                return f"acme:{output}", False, ""
            return self.app.default_output, True, "No connected models found for query"
"""
ACME_HOOKS = """
    from clipper_core import hookimpl


    @hookimpl
    def clipper_register_policies():
        from acme_policy import AcmeFirst

        return [AcmeFirst]
"""
OTHER_POLICIES = """
    from clipper_core import hookimpl
    from clipper_core.default_plugins.default_policy import DefaultPolicy


    class AlsoAcmeFirst(DefaultPolicy):
        name = "acme-first"


    @hookimpl
    def clipper_register_policies():
        return [AlsoAcmeFirst]
"""
CLASH_CACHE = """
    from clipper_core import hookimpl
    from clipper_core.default_plugins.lru_cache import LRUCache


    class MyLRU(LRUCache):
        name = "lru"


    @hookimpl
    def clipper_register_caches():
        return [MyLRU]
"""
ACME_OPS = """
    from aiohttp import web

    from clipper_core import hookimpl
    from clipper_core.interfaces import SelectionPolicy

    STARTED = []
    STOPPED = []


    class Boom(SelectionPolicy):
        \"\"\"Fails every query: RuntimeError (handled by the hook below) or ValueError (not handled).\"\"\"

        name = "boom"

        def select(self, state, query, models):
            if self.config.get("error") == "runtime":
                raise RuntimeError("kaboom")
            raise ValueError("unhandled")

        def combine(self, state, query, predictions):
            raise AssertionError("never reached")


    @hookimpl
    def clipper_register_policies():
        return [Boom]


    @hookimpl
    def clipper_startup(app):
        STARTED.append(app)


    @hookimpl
    def clipper_shutdown(app):
        STOPPED.append(app)


    @hookimpl
    def clipper_handle_exception(app, request, exception):
        if isinstance(exception, RuntimeError):
            return web.json_response({"error": "acme", "cause": f"handled {exception} on {request.path}"},
                                     status=503)
        return None
"""

DISTS = {d.name: d for d in (
    Dist("acme-clipper-policy", {"acme_policy/__init__.py": ACME_POLICY, "acme_policy/hooks.py": ACME_HOOKS},
         {"acme": "acme_policy.hooks"}),
    Dist("other-policies", {"other_policies.py": OTHER_POLICIES}, {"other": "other_policies"}, version="0.9"),
    Dist("clash-cache", {"clash_cache.py": CLASH_CACHE}, {"clash": "clash_cache"}),
    Dist("acme-ops", {"acme_ops.py": ACME_OPS}, {"acme-ops": "acme_ops"}),
    Dist("needs-torch", {"needs_torch.py": "import torch_that_is_not_installed\n"}, {"needs-torch": "needs_torch"}),
    Dist("broken-runtime", {"broken_runtime.py": "raise RuntimeError('boom at import')\n"},
         {"broken-runtime": "broken_runtime"}),
    Dist("broken-import", {"broken_import.py": "from os import no_such_name\n"}, {"broken-import": "broken_import"}),
    Dist("broken-syntax", {"broken_syntax.py": "def broken(:\n"}, {"broken-syntax": "broken_syntax"}),
)}


def _write_project(root: Path, dist: Dist) -> Path:
    project = root / "src" / dist.name
    for path, source in dist.files.items():
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(textwrap.dedent(source))
    (project / "backend.py").write_text(BACKEND)
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n\n'
        f'[project]\nname = "{dist.name}"\nversion = "{dist.version}"\n\n'
        "[project.entry-points.clipper]\n" + "".join(f'"{k}" = "{v}"\n' for k, v in dist.entry_points.items()))
    entry_points = "[clipper]\n" + "".join(f"{k} = {v}\n" for k, v in dist.entry_points.items())
    (project / "wheel.json").write_text(json.dumps({"name": dist.name, "version": dist.version,
                                                    "files": sorted(dist.files), "entry_points": entry_points}))
    return project


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every test distribution, each installed by ``pip install --target`` into its own site dir."""
    root = tmp_path_factory.mktemp("plugin-dists")
    jobs = []
    for dist in DISTS.values():
        site = root / "site" / dist.name
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                   "--no-index", "--no-compile", "--disable-pip-version-check", "--target", str(site),
                   str(_write_project(root, dist))]
        jobs.append((dist.name, site, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)))
    result = {}
    for name, site, process in jobs:
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, f"pip install {name} failed:\n{output.decode()}"
        result[name] = site
    return result


Activate = Callable[..., None]


@pytest.fixture
def activate(sites: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Activate]:
    """``activate("acme-clipper-policy", ...)``: put those distributions' site dirs on sys.path."""
    def on_path(*names: str) -> None:
        for name in names:
            monkeypatch.syspath_prepend(str(sites[name]))

    yield on_path
    ours = set().union(*(d.modules for d in DISTS.values()))
    for module in [m for m in sys.modules if m.split(".")[0] in ours]:
        del sys.modules[module]


def test_pip_installed_what_a_wheel_installs(sites: dict[str, Path]) -> None:
    info = sites["acme-clipper-policy"] / "acme_clipper_policy-1.2.3.dist-info"
    assert {"METADATA", "RECORD", "entry_points.txt", "INSTALLER", "WHEEL"} <= {p.name for p in info.iterdir()}
    assert (info / "INSTALLER").read_text().strip() == "pip"
    assert (sites["acme-clipper-policy"] / "acme_policy" / "hooks.py").is_file()


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


# -- state stores: a plugin kind resolved by URL scheme ------------------------------------------------

class EtcdStore(MemoryStateStore):
    """A stand-in third-party store: what matters here is its name and schemes."""

    name = "acme-etcd"
    url_schemes = ("etcd", "etcd+tls")

    @classmethod
    def from_url(cls, url: str, config: Config) -> EtcdStore:
        store = cls()
        store.url = url  # type: ignore[attr-defined]
        return store


class EtcdPlugin:
    __name__ = "acme-etcd"

    @hookimpl
    def clipper_register_state_stores(self) -> list[type[StateStore]]:
        return [EtcdStore]


class RedisClash:
    __name__ = "redis-clash"

    @hookimpl
    def clipper_register_state_stores(self) -> list[type[StateStore]]:
        return [type("OtherRedis", (MemoryStateStore,), {"name": "other-redis", "url_schemes": ("redis",)})]


def test_builtin_state_stores_are_found_by_scheme() -> None:
    registry = PluginRegistry.create(make_plugin_manager(load_entry_points=False))
    assert registry.state_stores.names() == ["memory", "redis", "sqlite"]
    assert registry.state_stores.owner("sqlite") == "clipper-core (state_stores)"
    for url, store in [("sqlite", SqliteStateStore), ("sqlite:///var/clipper/state.db", SqliteStateStore),
                       ("memory", MemoryStateStore), ("redis://h:1/0", RedisStateStore),
                       ("rediss://:pw@h:6380/2", RedisStateStore), ("unix:///run/redis.sock", RedisStateStore)]:
        assert registry.state_store_class(url) is store, url
    assert registry.state_store_class("redis://h:1/0").shared and not registry.state_store_class("sqlite").shared
    info = {p.name: p for p in registry.plugins()}["state_stores"]
    assert (info.distribution, info.hooks) == ("clipper-core", ("clipper_register_state_stores",))


def test_open_state_store_opens_what_the_config_names(tmp_path: Path) -> None:
    registry = PluginRegistry.create(make_plugin_manager(load_entry_points=False))
    sqlite = registry.open_state_store(Config(home=tmp_path))
    assert isinstance(sqlite, SqliteStateStore) and sqlite.path == tmp_path / "state.db"
    named = registry.open_state_store(Config(home=tmp_path, state_store=f"sqlite://{tmp_path}/other.db"))
    assert isinstance(named, SqliteStateStore) and named.path == tmp_path / "other.db"
    assert isinstance(registry.open_state_store(Config(state_store="memory")), MemoryStateStore)
    redis = registry.open_state_store(Config(state_store="redis://127.0.0.1:9/3"))
    assert isinstance(redis, RedisStateStore) and redis.url == "redis://127.0.0.1:9/3"
    assert not (tmp_path / "state.db").exists()  # constructing does no I/O
    with pytest.raises(ConfigError, match=r"use 'sqlite' or 'sqlite:///absolute/path\.db'"):
        registry.open_state_store(Config(state_store="sqlite://relative.db"))


@pytest.mark.parametrize("url", ["foo://x", "etcd", "REDIS://h:1/0", ""])
def test_an_unknown_scheme_is_named_with_the_installed_ones(url: str) -> None:
    registry = PluginRegistry.create(make_plugin_manager(load_entry_points=False))
    scheme = url.partition("://")[0]
    with pytest.raises(ConfigError) as info:
        registry.state_store_class(url)
    assert str(info.value) == (f"no state store for scheme {scheme!r}; installed schemes: "
                               "['memory', 'redis', 'rediss', 'sqlite', 'unix']")


def test_a_third_party_state_store_is_found_by_its_scheme() -> None:
    registry = PluginRegistry.create(make_plugin_manager(load_entry_points=False, extra=[EtcdPlugin()]))
    assert registry.state_stores.get("acme-etcd") is EtcdStore
    assert registry.state_store_class("etcd+tls://h:2379") is EtcdStore
    store = registry.open_state_store(Config(state_store="etcd://h:2379"))
    assert isinstance(store, EtcdStore) and store.url == "etcd://h:2379"  # type: ignore[attr-defined]
    assert registry.state_store_class("sqlite") is SqliteStateStore  # the built-ins stay


def test_a_scheme_defined_by_two_stores_names_both() -> None:
    with pytest.raises(PluginError, match=r"^state store scheme 'redis' is defined by both 'other-redis' from "
                                          r"redis-clash and 'redis' from clipper-core \(state_stores\)$"):
        PluginRegistry.create(make_plugin_manager(load_entry_points=False, extra=[RedisClash()]))
    # disabling the built-ins resolves the clash
    registry = PluginRegistry.create(make_plugin_manager(load_entry_points=False, extra=[RedisClash()],
                                                         disabled="state_stores"))
    assert registry.state_store_class("redis://h:1/0").name == "other-redis"


def test_without_the_redis_package_a_redis_url_says_what_to_install() -> None:
    code = textwrap.dedent("""
        import sys
        sys.modules["redis"] = None  # as if clipper-core had been installed without its [redis] extra
        from clipper_core.config import ConfigError
        from clipper_core.plugins import PluginRegistry, make_plugin_manager
        registry = PluginRegistry.create(make_plugin_manager(load_entry_points=False))
        print(registry.state_stores.names())
        for url in ("redis://h:1/0", "unix:///run/redis.sock"):
            try:
                registry.state_store_class(url)
            except ConfigError as exc:
                print(exc)
        print(registry.state_store_class("sqlite").__name__)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "['memory', 'sqlite']",
        "state store scheme 'redis' needs the redis package, which is not installed: pip install 'clipper-core[redis]'",
        "state store scheme 'unix' needs the redis package, which is not installed: pip install 'clipper-core[redis]'",
        "SqliteStateStore"]


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
