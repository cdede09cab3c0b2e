"""The server under test of the management API's endpoint tests: ``create_admin_app(ctx)`` served by aiohttp's
TestServer over a seeded MemoryStateStore and a supervisor that records what it is asked to do; ``assert_error``
checks a refusal's JSON ``{"error", "cause"}``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import test_utils

from clipper_core import hookimpl
from clipper_core.config import Config
from clipper_core.context import ServerContext
from clipper_core.default_plugins.default_policy import DefaultPolicy
from clipper_core.inputs import InputType
from clipper_core.interfaces import SelectionPolicy
from clipper_core.management import create_admin_app
from clipper_core.plugins import PluginRegistry, make_plugin_manager
from clipper_core.state import Application, Model, Replica
from clipper_core.state.memory import MemoryStateStore

D, S = InputType.DOUBLES, InputType.STRINGS


class AnyNumber(DefaultPolicy):
    """A policy that allows any number of linked models."""

    name = "any-number"
    max_models = None


class TestPolicies:
    __test__ = False  # not a test class
    __name__ = "test-policies"

    @hookimpl
    def clipper_register_policies(self) -> list[type[SelectionPolicy]]:
        return [AnyNumber]


class RecordingSupervisor:
    """The ReplicaSupervisor protocol, recording every call instead of starting processes."""

    def __init__(self, logs_dir: Path) -> None:
        self.logs_dir = logs_dir
        self.calls: list[tuple[str, str, int]] = []
        self.replicas: dict[tuple[str, str], int] = {("dm", "1"): 2}

    async def set_replicas(self, model: Model, num_replicas: int) -> None:
        self.calls.append((model.name, model.version, num_replicas))
        self.replicas[model.key] = num_replicas

    def desired(self, name: str, version: str) -> int:
        return self.replicas.get((name, version), 0)

    def running(self, name: str, version: str) -> int:
        return self.replicas.get((name, version), 0)

    def log_files(self) -> list[Path]:
        return [self.logs_dir / "dm_1_1.log", self.logs_dir / "dm_1_0.log"]


@dataclass
class Reply:
    status: int
    body: Any
    content_type: str
    headers: dict[str, str]


@dataclass
class Admin:
    client: test_utils.TestClient[Any, Any]
    ctx: ServerContext
    supervisor: RecordingSupervisor
    model_dir: Path
    shutdowns: list[bool] = field(default_factory=list)

    @property
    def store(self) -> MemoryStateStore:
        assert isinstance(self.ctx.store, MemoryStateStore)
        return self.ctx.store

    async def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
                   headers: dict[str, str] | None = None) -> Reply:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        response = await self.client.request(method, path, data=data,
                                             headers={"Content-Type": "application/json", **(headers or {})})
        payload = await response.read()
        value: Any = json.loads(payload) if response.content_type == "application/json" else payload.decode()
        return Reply(response.status, value, response.content_type, dict(response.headers))

    async def snapshot(self) -> Any:
        apps = await self.store.list_apps()
        return (apps, await self.store.list_models(), await self.store.current_versions(),
                {a.name: await self.store.get_links(a.name) for a in apps}, await self.store.list_replicas(),
                list(self.supervisor.calls))


async def seed(store: MemoryStateStore, model_dir: Path) -> None:
    for app, links in (
        (Application("app", D, "-1.0", 100000), []),
        (Application("full", D, "0", 50000), ["m"]),
        (Application("mixedapp", D, "0", 50000), ["mixed"]),
        (Application("multi", D, "[]", 80000, policy="any-number"), ["m", "m2"]),
        (Application("open", D, "0", 80000, policy="any-number", policy_config={"k": 1}, cache_enabled=False), []),
        (Application("strs", S, "none", 20000), []),
    ):
        await store.add_app(app)
        if links:
            await store.add_links(app.name, links)
    for model, current in (
        (Model("m", "1", D, labels=("a", "b")), True),
        (Model("m", "2", D), False),
        (Model("m2", "1", D), True),
        (Model("sm", "1", S), True),
        (Model("dm", "1", D, container_name=str(model_dir), batch_size=4, num_replicas=2), True),
        (Model("gone", "1", D, container_name=str(model_dir.parent / "missing")), True),
        (Model("mixed", "1", D), True),
        (Model("mixed", "2", S), False),
    ):
        await store.add_model(model, make_current=current)
    for replica_id, pid in ((0, 4242), (1, 4243)):
        await store.add_replica(Replica("dm", "1", replica_id, D, frontend="tcp://127.0.0.1:7000",
                                        info={"pid": pid}))


async def start_admin(tmp_path: Path, *, supervised: bool = True, stoppable: bool = True,
                      **config: Any) -> Admin:
    home = tmp_path / "home"
    model_dir = tmp_path / "models" / "dm-1"
    model_dir.mkdir(parents=True, exist_ok=True)
    cfg = Config(home=home, state_store="memory", **config)
    cfg.logs_dir.mkdir(parents=True, exist_ok=True)
    (cfg.logs_dir / "clipper.log").write_text("server log\n")
    store = MemoryStateStore()
    await store.open()
    await seed(store, model_dir)
    supervisor = RecordingSupervisor(cfg.logs_dir)
    registry = PluginRegistry.create(make_plugin_manager(extra=[TestPolicies()]))
    ctx = ServerContext(config=cfg, store=store, registry=registry, supervisor=supervisor if supervised else None,
                        rpc_addr="tcp://127.0.0.1:7000",
                        extra={"query_addr": "127.0.0.1:1337", "admin_addr": "127.0.0.1:1338",
                               "metrics_addr": "127.0.0.1:1337"})
    client: test_utils.TestClient[Any, Any] = test_utils.TestClient(test_utils.TestServer(create_admin_app(ctx)))
    await client.start_server()
    admin = Admin(client, ctx, supervisor, model_dir)
    if stoppable:
        ctx.request_shutdown = lambda: admin.shutdowns.append(True)
    return admin


def assert_error(reply: Reply, status: int, cause: str) -> None:
    assert reply.status == status, reply
    assert reply.content_type == "application/json", reply
    assert isinstance(reply.body, dict) and set(reply.body) == {"error", "cause"}, reply.body
    assert isinstance(reply.body["error"], str) and reply.body["error"], reply.body
    assert cause in reply.body["cause"], reply.body
