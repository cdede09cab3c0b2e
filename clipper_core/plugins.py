"""The plugin manager and the registry of plugin classes.

One :class:`ClipperPluginManager` per server or client, no import-time global (like pytest's
PytestPluginManager): add_hookspecs → set_blocked (``CLIPPER_DISABLE_PLUGINS``) → load entry points (group
``clipper``) → register built-ins (:data:`DEFAULT_PLUGINS`) → check_pending. The :class:`PluginRegistry` then
resolves names (and state-store URL schemes) to classes once; nothing here runs per request.
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pluggy

import clipper_core.hookspecs as hookspecs
from clipper_core.config import ConfigError
from clipper_core.errors import PluginError
from clipper_core.interfaces import ContainerManager, Deployer, PredictionCache, SelectionPolicy

if TYPE_CHECKING:
    from clipper_core.config import Config
    from clipper_core.state.base import StateStore

__all__ = ["DEFAULT_PLUGINS", "ENTRY_POINT_GROUP", "OPTIONAL_SCHEMES", "ClassRegister", "ClipperPluginManager",
           "PluginInfo", "PluginRegistry", "make_plugin_manager", "url_scheme"]

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "clipper"
CORE_DISTRIBUTION = "clipper-core"
T = TypeVar("T")

DEFAULT_PLUGINS: dict[str, str] = {
    "local": "clipper_core.default_plugins.local_manager",
    "python_closure": "clipper_core.default_plugins.closure_deployer",
    "default_policy": "clipper_core.default_plugins.default_policy",
    "lru": "clipper_core.default_plugins.lru_cache",
    "state_stores": "clipper_core.default_plugins.state_stores",
}
"""The built-in plugins: plugin name (usable in ``CLIPPER_DISABLE_PLUGINS``) -> module, imported only when a
plugin manager registers it."""

OPTIONAL_SCHEMES: dict[str, tuple[str, str]] = {
    scheme: ("redis", "clipper-core[redis]") for scheme in ("redis", "rediss", "unix")}
"""State-store schemes of built-ins that need an optional package: scheme -> (the package's import name, what
to ``pip install``). They are the Redis store's ``url_schemes``, known here without importing redis."""


@dataclass(frozen=True)
class PluginInfo:
    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...]


def _blocked_names(disabled: str | None) -> list[str]:
    raw = os.environ.get("CLIPPER_DISABLE_PLUGINS", "") if disabled is None else disabled
    return [name.strip() for name in raw.split(",") if name.strip()]


def _core_version() -> str:
    try:
        return metadata.version(CORE_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"


class ClipperPluginManager(pluggy.PluginManager):
    """A pluggy plugin manager with clipper's hookspecs that remembers which distribution (and version)
    registered each plugin: an entry point's distribution, ``clipper-core`` for a built-in, none for a plugin
    object registered directly."""

    def __init__(self) -> None:
        super().__init__("clipper")
        self.add_hookspecs(hookspecs)
        self._distributions: dict[str, tuple[str, str]] = {}

    def register_from(self, plugin: object, name: str, distribution: str, version: str) -> str | None:
        """Register ``plugin`` as ``name``, recording the distribution that provides it."""
        registered = self.register(plugin, name=name)
        if registered is not None:
            self._distributions[registered] = (distribution, version)
        return registered

    def unregister(self, plugin: Any = None, name: str | None = None) -> Any:
        name = name or (self.get_name(plugin) if plugin is not None else None)
        if name is not None:
            self._distributions.pop(name, None)
        return super().unregister(plugin, name)

    def distribution(self, plugin: object) -> tuple[str, str] | None:
        """(distribution, version) that registered ``plugin``, or None for a directly registered object."""
        name = self.get_name(plugin)
        return self._distributions.get(name) if name is not None else None

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Register every entry point of ``group`` that is not blocked. One whose import fails with
        ModuleNotFoundError (a missing optional framework) is logged and skipped; any other error aborts."""
        for ep in metadata.entry_points(group=group):
            if self.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
            except ModuleNotFoundError as exc:
                log.warning("skipping clipper plugin %r: %s", ep.name, exc)
                continue
            except Exception as exc:
                raise PluginError(f"clipper plugin {ep.name!r} ({ep.value}) failed to import: {exc!r}") from exc
            dist = ep.dist.name if ep.dist is not None else "unknown"
            version = ep.dist.version if ep.dist is not None else "unknown"
            self.register_from(plugin, ep.name, dist, version)

    def register_builtins(self) -> None:
        """Import and register each of :data:`DEFAULT_PLUGINS` that is not blocked."""
        for name, module in DEFAULT_PLUGINS.items():
            if not self.is_blocked(name):
                self.register_from(importlib.import_module(module), name, CORE_DISTRIBUTION, _core_version())


def make_plugin_manager(*, load_entry_points: bool = True, disabled: str | None = None,
                        extra: list[Any] | None = None) -> ClipperPluginManager:
    """Build a plugin manager: hookspecs, blocked names (``disabled``, default ``$CLIPPER_DISABLE_PLUGINS``),
    entry points, built-ins, then the ``extra`` plugin objects."""
    pm = ClipperPluginManager()
    for name in _blocked_names(disabled):
        pm.set_blocked(name)
    if load_entry_points:
        pm.load_entry_points()
    pm.register_builtins()
    for plugin in extra or []:
        pm.register(plugin)
    pm.check_pending()
    return pm


class ClassRegister(Generic[T]):
    """Named classes of one plugin kind, with precise errors for duplicates and unknown names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, type[T]] = {}
        self._owners: dict[str, str] = {}

    def add(self, cls: type[T], owner: str) -> None:
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"{self.kind} class {cls.__qualname__} from {owner} has no 'name'")
        if name in self._classes and self._classes[name] is not cls:
            raise PluginError(f"{self.kind} name {name!r} is defined by both {self._owners[name]} and {owner}")
        self._classes[name] = cls
        self._owners[name] = owner

    def get(self, name: str) -> type[T]:
        try:
            return self._classes[name]
        except KeyError:
            raise PluginError(f"no {self.kind} named {name!r}; installed: {sorted(self._classes)}",
                              status=400) from None

    def owner(self, name: str) -> str:
        """Who registered the class called ``name`` (a distribution, ``clipper-core (<plugin>)`` or a plugin)."""
        return self._owners[name]

    def names(self) -> list[str]:
        return sorted(self._classes)

    def __contains__(self, name: object) -> bool:
        return name in self._classes


def _missing_package(scheme: str) -> tuple[str, str] | None:
    """:data:`OPTIONAL_SCHEMES`' entry for ``scheme`` when its package does not import, else None."""
    needed = OPTIONAL_SCHEMES.get(scheme)
    if needed is None:
        return None
    try:
        importlib.import_module(needed[0])
    except ImportError:
        return needed
    return None


def url_scheme(url: str) -> str:
    """``redis://h:1/0`` -> ``redis``; a bare name (``sqlite``, ``memory``) is its own scheme."""
    return url.partition("://")[0] if "://" in url else url


@dataclass
class PluginRegistry:
    """Every registered plugin class, resolved once from a plugin manager."""

    pm: ClipperPluginManager
    container_managers: ClassRegister[ContainerManager] = field(
        default_factory=lambda: ClassRegister("container manager"))
    deployers: ClassRegister[Deployer] = field(default_factory=lambda: ClassRegister("deployer"))
    policies: ClassRegister[SelectionPolicy] = field(default_factory=lambda: ClassRegister("selection policy"))
    caches: ClassRegister[PredictionCache] = field(default_factory=lambda: ClassRegister("cache backend"))
    state_stores: ClassRegister[StateStore] = field(default_factory=lambda: ClassRegister("state store"))
    _schemes: dict[str, type[StateStore]] = field(default_factory=dict, repr=False)

    @classmethod
    def create(cls, pm: ClipperPluginManager | None = None) -> PluginRegistry:
        pm = pm or make_plugin_manager()
        reg = cls(pm)
        kinds: list[tuple[str, ClassRegister[Any]]] = [
            ("clipper_register_container_managers", reg.container_managers),
            ("clipper_register_deployers", reg.deployers),
            ("clipper_register_policies", reg.policies),
            ("clipper_register_caches", reg.caches),
            ("clipper_register_state_stores", reg.state_stores),
        ]
        for hook_name, register in kinds:
            caller = getattr(pm.hook, hook_name)
            for impl in caller.get_hookimpls():
                owner = reg._owner(impl.plugin)
                for klass in impl.function() or []:
                    register.add(klass, owner)
        reg._index_schemes()
        return reg

    def _owner(self, plugin: object) -> str:
        name = self.pm.get_name(plugin) or repr(plugin)
        dist = self.pm.distribution(plugin)
        if dist is None:
            return name  # registered directly (``extra=``), not from an installed distribution
        return dist[0] if dist[0] != CORE_DISTRIBUTION else f"{CORE_DISTRIBUTION} ({name})"

    def _index_schemes(self) -> None:
        for name in self.state_stores.names():
            store = self.state_stores.get(name)
            for scheme in store.url_schemes:
                other = self._schemes.get(scheme)
                if other is not None and other is not store:
                    raise PluginError(f"state store scheme {scheme!r} is defined by both {other.name!r} from "
                                      f"{self.state_stores.owner(other.name)} and {name!r} from "
                                      f"{self.state_stores.owner(name)}")
                self._schemes[scheme] = store

    def state_store_class(self, url: str) -> type[StateStore]:
        """The state-store class that opens ``url`` (a ``CLIPPER_STATE_STORE`` value), by its scheme.

        :raises ConfigError: no installed store has that scheme (the message lists those that are), or the
            built-in store for it needs a package that is not installed (the message says what to install)
        """
        scheme = url_scheme(url)
        store = self._schemes.get(scheme)
        if store is not None:
            return store
        missing = _missing_package(scheme)
        if missing is not None:
            raise ConfigError(f"state store scheme {scheme!r} needs the {missing[0]} package, which is not "
                              f"installed: pip install '{missing[1]}'")
        raise ConfigError(f"no state store for scheme {scheme!r}; installed schemes: {sorted(self._schemes)}")

    def open_state_store(self, config: Config) -> StateStore:
        """The (unopened) state store ``config.state_store`` names; constructing it does no I/O."""
        return self.state_store_class(config.state_store).from_url(config.state_store, config)

    def plugins(self) -> list[PluginInfo]:
        infos = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:
                continue
            dist, version = self.pm.distribution(plugin) or ("unknown", "")
            hooks = tuple(sorted(h.name for h in self.pm.get_hookcallers(plugin) or []))
            infos.append(PluginInfo(name=name, distribution=dist, version=version, hooks=hooks))
        return sorted(infos, key=lambda i: i.name)
