"""The plugin-manager factory and the registry of plugin classes.

One plugin manager per server or client, no import-time global (like pytest's PytestPluginManager):
add_hookspecs → set_blocked (``CLIPPER_DISABLE_PLUGINS``) → load entry points (group ``clipper``) → register
built-ins → check_pending. The :class:`PluginRegistry` then resolves names to classes once; nothing here runs
per request.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Generic, TypeVar

import pluggy

from clipper_core import hookspecs
from clipper_core.errors import PluginError
from clipper_core.interfaces import ContainerManager, Deployer, PredictionCache, SelectionPolicy

__all__ = ["ENTRY_POINT_GROUP", "ClassRegister", "PluginInfo", "PluginRegistry", "make_plugin_manager"]

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "clipper"
BUILTIN_PREFIX = "clipper-core:"
T = TypeVar("T")


@dataclass(frozen=True)
class PluginInfo:
    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...]


def _blocked_names(disabled: str | None) -> list[str]:
    raw = os.environ.get("CLIPPER_DISABLE_PLUGINS", "") if disabled is None else disabled
    return [name.strip() for name in raw.split(",") if name.strip()]


def make_plugin_manager(*, load_entry_points: bool = True, disabled: str | None = None,
                        extra: list[Any] | None = None) -> pluggy.PluginManager:
    """Build a plugin manager: hookspecs, blocked names, entry points, built-ins, ``extra`` plugin objects."""
    from clipper_core import default_plugins

    pm = pluggy.PluginManager("clipper")
    pm.add_hookspecs(hookspecs)
    for name in _blocked_names(disabled):
        pm.set_blocked(name)
    if load_entry_points:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if pm.is_blocked(ep.name):
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
            pm.register(plugin, name=ep.name)
            _DIST_OF[id(plugin)] = (dist, version)
    blocked = {name for name in _blocked_names(disabled)}
    for name, module in default_plugins.builtin_plugins(blocked).items():
        pm.register(module, name=name)
        _DIST_OF[id(module)] = ("clipper-core", _core_version())
    for plugin in extra or []:
        pm.register(plugin)
    pm.check_pending()
    return pm


_DIST_OF: dict[int, tuple[str, str]] = {}


def _core_version() -> str:
    try:
        return metadata.version("clipper-core")
    except metadata.PackageNotFoundError:
        return "0+unknown"


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

    def names(self) -> list[str]:
        return sorted(self._classes)

    def __contains__(self, name: object) -> bool:
        return name in self._classes


@dataclass
class PluginRegistry:
    """Every registered plugin class, resolved once from a plugin manager."""

    pm: pluggy.PluginManager
    container_managers: ClassRegister[ContainerManager] = field(
        default_factory=lambda: ClassRegister("container manager"))
    deployers: ClassRegister[Deployer] = field(default_factory=lambda: ClassRegister("deployer"))
    policies: ClassRegister[SelectionPolicy] = field(default_factory=lambda: ClassRegister("selection policy"))
    caches: ClassRegister[PredictionCache] = field(default_factory=lambda: ClassRegister("cache backend"))

    @classmethod
    def create(cls, pm: pluggy.PluginManager | None = None) -> PluginRegistry:
        pm = pm or make_plugin_manager()
        reg = cls(pm)
        kinds: list[tuple[str, ClassRegister[Any]]] = [
            ("clipper_register_container_managers", reg.container_managers),
            ("clipper_register_deployers", reg.deployers),
            ("clipper_register_policies", reg.policies),
            ("clipper_register_caches", reg.caches),
        ]
        for hook_name, register in kinds:
            caller = getattr(pm.hook, hook_name)
            for impl in caller.get_hookimpls():
                owner = reg._owner(impl.plugin)
                for klass in impl.function() or []:
                    register.add(klass, owner)
        return reg

    def _owner(self, plugin: object) -> str:
        name = self.pm.get_name(plugin) or repr(plugin)
        if id(plugin) not in _DIST_OF:
            return name  # registered directly (``extra=``), not from an installed distribution
        dist, _ = _DIST_OF[id(plugin)]
        return dist if dist != "clipper-core" else f"clipper-core ({name})"

    def plugins(self) -> list[PluginInfo]:
        infos = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:
                continue
            dist, version = _DIST_OF.get(id(plugin), ("unknown", ""))
            hooks = tuple(sorted(h.name for h in self.pm.get_hookcallers(plugin) or []))
            infos.append(PluginInfo(name=name, distribution=dist, version=version, hooks=hooks))
        return sorted(infos, key=lambda i: i.name)
