"""State stores, the plugin kind resolved by URL scheme: the built-ins, a third-party one, unknown and clashing
schemes, and a redis URL without the redis package."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from clipper_core import hookimpl
from clipper_core.config import Config, ConfigError
from clipper_core.errors import PluginError
from clipper_core.plugins import PluginRegistry, make_plugin_manager
from clipper_core.state import StateStore
from clipper_core.state.memory import MemoryStateStore
from clipper_core.state.redis import RedisStateStore
from clipper_core.state.sqlite import SqliteStateStore

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
    assert registry.state_store_class("redis://h:1/0").shared and registry.state_store_class("sqlite").shared
    assert not registry.state_store_class("memory").shared
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
