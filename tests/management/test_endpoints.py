"""The management API, endpoint by endpoint, in process: ``create_admin_app(ctx)`` served by aiohttp's
TestServer over a MemoryStateStore and a supervisor that records what it is asked to do.

Success bodies are Clipper's (clipper-reference §2: plain-text messages, JSON reads, verbose and non-verbose
lists); every bad request is a 4xx JSON ``{"error", "cause"}`` whose cause says what was wrong, and changes
nothing."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from aiohttp import test_utils

from clipper_core import hookimpl
from clipper_core.config import Config
from clipper_core.context import ServerContext
from clipper_core.default_plugins.default_policy import DefaultPolicy
from clipper_core.inputs import InputType
from clipper_core.interfaces import SelectionPolicy
from clipper_core.management import create_admin_app
from clipper_core.management.handlers import ROUTES
from clipper_core.management.openapi import admin_openapi
from clipper_core.plugins import PluginRegistry, make_plugin_manager
from clipper_core.state import Application, Model, Replica
from clipper_core.state.memory import MemoryStateStore

D, S = InputType.DOUBLES, InputType.STRINGS
TOKEN = "s3cret"


# -- the server under test -----------------------------------------------------------------------------

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


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[Admin]:
    admin = await start_admin(tmp_path)
    yield admin
    await admin.client.close()


# -- successes, one or more per endpoint ---------------------------------------------------------------

Expected = Any  # a JSON value, a text body, or a function of the Admin giving either


class Ok(NamedTuple):
    id: str
    method: str
    path: str
    body: Any
    expected: Expected
    after: tuple[str, Any, Expected] | None = None
    """A read that must then show the change: (path, body, expected)."""


def app_json(name: str, input_type: str, default_output: str, slo: int, links: list[str], policy: str = "default",
             policy_config: dict[str, Any] | None = None, cache_enabled: bool = True) -> dict[str, Any]:
    return {"name": name, "input_type": input_type, "default_output": default_output, "latency_slo_micros": slo,
            "linked_models": links, "policy": policy, "policy_config": policy_config or {},
            "cache_enabled": cache_enabled}


def model_json(name: str, version: str, current: bool, *, input_type: str = "doubles", labels: list[str] | None = None,
               container: str = "NO_CONTAINER", data_path: str = "DEPRECATED", batch_size: int = -1,
               replicas: int = 0) -> dict[str, Any]:
    return {"model_name": name, "model_version": version, "input_type": input_type, "labels": labels or [],
            "container_name": container, "model_data_path": data_path, "is_current_version": current,
            "batch_size": batch_size, "num_replicas": replicas}


def dm_json(admin: Admin, replicas: int = 2) -> dict[str, Any]:
    return model_json("dm", "1", True, container=str(admin.model_dir), batch_size=4, replicas=replicas)


def all_models(admin: Admin) -> list[dict[str, Any]]:
    return [dm_json(admin), model_json("gone", "1", True, container=str(admin.model_dir.parent / "missing")),
            model_json("m", "1", True, labels=["a", "b"]), model_json("m", "2", False),
            model_json("m2", "1", True), model_json("mixed", "1", True),
            model_json("mixed", "2", False, input_type="strings"), model_json("sm", "1", True, input_type="strings")]


ALL_APPS = [app_json("app", "doubles", "-1.0", 100000, []), app_json("full", "doubles", "0", 50000, ["m"]),
            app_json("mixedapp", "doubles", "0", 50000, ["mixed"]),
            app_json("multi", "doubles", "[]", 80000, ["m", "m2"], "any-number"),
            app_json("open", "doubles", "0", 80000, [], "any-number", {"k": 1}, False),
            app_json("strs", "strings", "none", 20000, [])]
APP_NAMES = ["app", "full", "mixedapp", "multi", "open", "strs"]


def replica_json(replica_id: int, pid: int) -> dict[str, Any]:
    return {"model_id": "dm:1", "model_name": "dm", "model_version": "1", "model_replica_id": replica_id,
            "input_type": "doubles", "pid": pid}


NEW_APP = {"name": "new", "input_type": "d", "default_output": "0.0", "latency_slo_micros": 2**31 - 1}
NEW_MODEL = {"model_name": "new", "model_version": "1", "labels": ["x"], "input_type": "doubles",
             "container_name": "img", "model_data_path": "/data", "batch_size": -1}

OK: list[Ok] = [
    Ok("ping", "GET", "/admin/ping", None, "PONG"),
    Ok("info", "GET", "/admin/info", None, lambda a: {
        "query_addr": "127.0.0.1:1337", "admin_addr": "127.0.0.1:1338", "metrics_addr": "127.0.0.1:1337",
        "rpc_addr": "tcp://127.0.0.1:7000", "pid": os.getpid(), "home": str(a.ctx.config.home)}),
    Ok("plugins", "GET", "/plugins", None, lambda a: [
        {"name": p.name, "distribution": p.distribution, "version": p.version, "hooks": list(p.hooks)}
        for p in a.ctx.registry.plugins()]),
    Ok("openapi", "GET", "/openapi.json", None, lambda a: admin_openapi()),
    Ok("add_app", "POST", "/admin/add_app", NEW_APP, "Successfully added application with name 'new'",
       ("get_application", {"name": "new"}, app_json("new", "doubles", "0.0", 2**31 - 1, []))),
    Ok("add_app 128-char name, policy, config", "POST", "/admin/add_app",
       {**NEW_APP, "name": "a" * 128, "input_type": "strings", "policy": "any-number", "policy_config": {"x": [1]},
        "cache_enabled": False},
       f"Successfully added application with name '{'a' * 128}'",
       ("get_application", {"name": "a" * 128},
        app_json("a" * 128, "strings", "0.0", 2**31 - 1, [], "any-number", {"x": [1]}, False))),
    Ok("delete_app", "POST", "/admin/delete_app", {"name": "full"}, "Successfully deleted application with name 'full'",
       ("get_all_applications", {}, [n for n in APP_NAMES if n != "full"])),
    Ok("set_app_policy", "POST", "/admin/set_app_policy", {"name": "full", "policy": "any-number",
                                                           "policy_config": {"k": 2}},
       "Successfully set the policy of application 'full' to 'any-number'",
       ("get_application", {"name": "full"}, app_json("full", "doubles", "0", 50000, ["m"], "any-number", {"k": 2}))),
    Ok("get_all_applications", "POST", "/admin/get_all_applications", {"verbose": False}, APP_NAMES),
    Ok("get_all_applications default", "POST", "/admin/get_all_applications", {}, APP_NAMES),
    Ok("get_all_applications verbose", "POST", "/admin/get_all_applications", {"verbose": True}, ALL_APPS),
    Ok("get_application", "POST", "/admin/get_application", {"name": "multi"}, ALL_APPS[3]),
    Ok("get_application absent", "POST", "/admin/get_application", {"name": "ghost"}, {}),
    Ok("get_state", "POST", "/admin/get_state", {"app_name": "app", "uid": 0}, "-1.0"),
    Ok("get_state no uid", "POST", "/admin/get_state", {"app_name": "strs"}, "none"),
    Ok("add_model_links", "POST", "/admin/add_model_links", {"app_name": "app", "model_names": ["m"]},
       "Successfully linked model with name 'm' to application 'app'",
       ("get_linked_models", {"app_name": "app"}, ["m"])),
    Ok("add_model_links two", "POST", "/admin/add_model_links", {"app_name": "open", "model_names": ["m2", "dm"]},
       "Successfully linked models ['m2', 'dm'] to application 'open'",
       ("get_linked_models", {"app_name": "open"}, ["m2", "dm"])),
    Ok("delete_model_links", "POST", "/admin/delete_model_links", {"app_name": "multi", "model_names": ["m"]},
       "Success!", ("get_linked_models", {"app_name": "multi"}, ["m2"])),
    Ok("get_linked_models", "POST", "/admin/get_linked_models", {"app_name": "multi"}, ["m", "m2"]),
    Ok("get_linked_models none", "POST", "/admin/get_linked_models", {"app_name": "app"}, []),
    Ok("add_model", "POST", "/admin/add_model", NEW_MODEL,
       "Successfully added model with name 'new' and input type 'doubles'",
       ("get_model", {"model_name": "new", "model_version": "1"},
        model_json("new", "1", True, labels=["x"], container="img", data_path="/data"))),
    Ok("add_model minimal, integer version, spelling", "POST", "/admin/add_model",
       {"model_name": "m", "model_version": 3, "input_type": "double", "batch_size": 8},
       "Successfully added model with name 'm' and input type 'doubles'",  # a new version becomes current
       ("get_model", {"model_name": "m", "model_version": "3"}, model_json("m", "3", True, batch_size=8))),
    Ok("set_model_version", "POST", "/admin/set_model_version", {"model_name": "m", "model_version": "2"},
       "Successfully set model with name 'm' to version '2'",
       ("get_model", {"model_name": "m", "model_version": "2"}, model_json("m", "2", True))),
    Ok("delete_versioned_model", "POST", "/admin/delete_versioned_model", {"model_name": "dm", "model_version": "1"},
       "Successfully deleted model with name 'dm' and version '1'",
       ("get_model", {"model_name": "dm", "model_version": "1"}, {})),
    Ok("get_all_models", "POST", "/admin/get_all_models", {"verbose": False},
       ["dm:1", "gone:1", "m:1", "m:2", "m2:1", "mixed:1", "mixed:2", "sm:1"]),
    Ok("get_all_models verbose", "POST", "/admin/get_all_models", {"verbose": True}, all_models),
    Ok("get_model", "POST", "/admin/get_model", {"model_name": "m", "model_version": "1"},
       model_json("m", "1", True, labels=["a", "b"])),
    Ok("get_model absent", "POST", "/admin/get_model", {"model_name": "m", "model_version": "9"}, {}),
    Ok("get_all_containers", "POST", "/admin/get_all_containers", {"verbose": False}, ["dm:1:0", "dm:1:1"]),
    Ok("get_all_containers verbose", "POST", "/admin/get_all_containers", {"verbose": True},
       [replica_json(0, 4242), replica_json(1, 4243)]),
    Ok("get_container", "POST", "/admin/get_container", {"model_name": "dm", "model_version": "1", "replica_id": 1},
       replica_json(1, 4243)),
    Ok("get_container absent", "POST", "/admin/get_container",
       {"model_name": "dm", "model_version": "1", "replica_id": 7}, {}),
    Ok("set_num_replicas", "POST", "/admin/set_num_replicas",
       {"model_name": "dm", "model_version": "1", "num_replicas": 3},
       {"model_name": "dm", "model_version": "1", "num_replicas": 3},
       ("get_model", {"model_name": "dm", "model_version": "1"}, lambda a: dm_json(a, replicas=3))),
    Ok("set_num_replicas containerless to 0", "POST", "/admin/set_num_replicas",
       {"model_name": "m", "model_version": 1, "num_replicas": 0},
       {"model_name": "m", "model_version": "1", "num_replicas": 0}),
    Ok("get_num_replicas", "POST", "/admin/get_num_replicas", {"model_name": "dm", "model_version": "1"},
       {"num_replicas": 2, "running": 2, "connected": 2}),
    Ok("get_logs", "POST", "/admin/get_logs", {}, lambda a: {"files": sorted(
        str(a.ctx.config.logs_dir / n) for n in ("clipper.log", "dm_1_0.log", "dm_1_1.log"))}),
    Ok("shutdown", "POST", "/admin/shutdown", {}, {"stopping": True}),
]


def resolve(expected: Expected, admin: Admin) -> Any:
    return expected(admin) if callable(expected) else expected


def test_every_route_has_a_success_case() -> None:
    assert {(c.method, c.path) for c in OK} == {(method, path) for method, path, _ in ROUTES}


def test_every_route_is_in_the_openapi_document() -> None:
    paths = admin_openapi()["paths"]
    assert {(m, p) for p, ops in paths.items() for m in (op.upper() for op in ops)} >= {
        (m, p) for m, p, _ in ROUTES if p != "/openapi.json"}


@pytest.mark.parametrize("case", OK, ids=[c.id for c in OK])
async def test_success(admin: Admin, case: Ok) -> None:
    reply = await admin.call(case.method, case.path, case.body)
    assert (reply.status, reply.body) == (200, resolve(case.expected, admin))
    assert reply.content_type == ("text/plain" if isinstance(reply.body, str) else "application/json")
    if case.after is not None:
        path, body, expected = case.after
        read = await admin.call("POST", f"/admin/{path}", body)
        assert (read.status, read.body) == (200, resolve(expected, admin))


async def test_replica_changes_reach_the_supervisor(admin: Admin) -> None:
    assert (await admin.call("POST", "/admin/set_num_replicas",
                             {"model_name": "dm", "model_version": "1", "num_replicas": 0})).status == 200
    assert admin.supervisor.calls == [("dm", "1", 0)]
    await admin.call("POST", "/admin/set_num_replicas", {"model_name": "dm", "model_version": "1", "num_replicas": 5})
    assert (await admin.call("POST", "/admin/get_num_replicas", {"model_name": "dm", "model_version": "1"})).body == {
        "num_replicas": 5, "running": 5, "connected": 2}
    await admin.call("POST", "/admin/delete_versioned_model", {"model_name": "dm", "model_version": "1"})
    assert admin.supervisor.calls == [("dm", "1", 0), ("dm", "1", 5), ("dm", "1", 0)]  # deleting stops replicas
    assert await admin.store.list_replicas() == []


async def test_shutdown_is_requested_after_the_response(admin: Admin) -> None:
    assert (await admin.call("POST", "/admin/shutdown")).body == {"stopping": True}
    for _ in range(200):
        if admin.shutdowns:
            break
        await asyncio.sleep(0.01)  # the handler schedules the stop 50 ms after answering
    assert admin.shutdowns == [True]


@pytest.mark.filterwarnings("error::DeprecationWarning")
async def test_shutdown_uses_no_deprecated_aiohttp_api(admin: Admin) -> None:
    reply = await admin.call("POST", "/admin/shutdown")
    assert (reply.status, reply.body) == (200, {"stopping": True})


async def test_without_a_supervisor_or_shutdown(tmp_path: Path) -> None:
    admin = await start_admin(tmp_path, supervised=False, stoppable=False)
    try:
        for path in ("set_num_replicas", "get_num_replicas"):
            reply = await admin.call("POST", f"/admin/{path}",
                                     {"model_name": "dm", "model_version": "1", "num_replicas": 1})
            assert reply.status == 400 and "does not run replicas itself" in reply.body["cause"]
        reply = await admin.call("POST", "/admin/shutdown", {})
        assert reply.status == 400 and reply.body["cause"] == "this server cannot be stopped over the admin API"
        reply = await admin.call("POST", "/admin/get_logs", {})
        assert reply.body == {"files": [str(admin.ctx.config.logs_dir / "clipper.log")]}
        reply = await admin.call("POST", "/admin/delete_versioned_model", {"model_name": "dm", "model_version": "1"})
        assert reply.status == 200
    finally:
        await admin.client.close()


# -- bad requests --------------------------------------------------------------------------------------

class Bad(NamedTuple):
    id: str
    path: str
    body: Any  # bytes are sent as they are
    status: int
    cause: str


APP = {"name": "x", "input_type": "doubles", "default_output": "-1.0", "latency_slo_micros": 100000}
MODEL = {"model_name": "x", "model_version": "1", "labels": [], "input_type": "doubles",
         "container_name": "NO_CONTAINER", "model_data_path": "DEPRECATED", "batch_size": -1}
REF = {"model_name": "m", "model_version": "1"}


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def without(base: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in base.items() if k != key}


def required(path: str, base: dict[str, Any], *keys: str) -> list[Bad]:
    return [Bad(f"{path} without {key}", path, without(base, key), 400,
                f"JSON object does not have required key: {key}") for key in keys]


BAD_NAMES = {"comma": "a,b", "colon": "a:b", "slash": "a/b", "backslash": "a\\b", "space": "a b", "tab": "a\tb",
             "newline": "a\nb", "dotdot": "..", "inner dotdot": "a..b", "dot": ".", "nbsp": "a\u00a0b"}


def bad_names(path: str, base: dict[str, Any], key: str) -> list[Bad]:
    cases = [Bad(f"{path} {key} {what}", path, with_(base, **{key: value}), 400, "is not allowed")
             for what, value in BAD_NAMES.items()]
    cases += [Bad(f"{path} {key} empty", path, with_(base, **{key: ""}), 400, f"'{key}' is empty"),
              Bad(f"{path} {key} too long", path, with_(base, **{key: "a" * 129}), 400,
                  f"'{key}' is 129 characters long; at most 128 are allowed")]
    return cases


BAD: list[Bad] = [
    # bodies that are not JSON objects
    Bad("malformed JSON", "add_app", b'{"name": ', 400, "Error parsing JSON"),
    Bad("not UTF-8", "add_app", b"\xff\xfe{}", 400, "Error parsing JSON"),
    Bad("NaN", "get_all_models", b'{"verbose": NaN}', 400, "Error parsing JSON"),
    Bad("empty body", "add_app", b"", 400, "request body is empty; expected a JSON object"),
    Bad("array body", "add_app", [APP], 400, "request body is a JSON value that is an array; expected a JSON object"),
    Bad("string body", "get_all_models", "verbose", 400, "that is a string; expected a JSON object"),
    Bad("null body", "get_application", b"null", 400, "that is null; expected a JSON object"),
    Bad("number body", "get_model", b"7", 400, "that is a number; expected a JSON object"),
    # missing fields
    *required("add_app", APP, "name", "input_type", "default_output", "latency_slo_micros"),
    *required("delete_app", {"name": "app"}, "name"),
    *required("set_app_policy", {"name": "app", "policy": "default"}, "name", "policy"),
    *required("get_application", {"name": "app"}, "name"),
    *required("get_state", {"app_name": "app"}, "app_name"),
    *required("add_model_links", {"app_name": "app", "model_names": ["m"]}, "app_name", "model_names"),
    *required("delete_model_links", {"app_name": "full", "model_names": ["m"]}, "app_name", "model_names"),
    *required("get_linked_models", {"app_name": "app"}, "app_name"),
    *required("add_model", MODEL, "model_name", "model_version", "input_type", "batch_size"),
    *required("set_model_version", REF, "model_name", "model_version"),
    *required("delete_versioned_model", REF, "model_name", "model_version"),
    *required("get_model", REF, "model_name", "model_version"),
    *required("get_container", {**REF, "replica_id": 0}, "model_name", "model_version", "replica_id"),
    *required("set_num_replicas", {"model_name": "dm", "model_version": "1", "num_replicas": 1}, "num_replicas"),
    *required("get_num_replicas", REF, "model_name", "model_version"),
    # wrong types
    Bad("slo bool", "add_app", with_(APP, latency_slo_micros=True), 400,
        "'latency_slo_micros' is a boolean; expected an integer"),
    Bad("slo float", "add_app", with_(APP, latency_slo_micros=1.5), 400,
        "'latency_slo_micros' is a number; expected an integer"),
    Bad("slo huge float", "add_app", b'{"name": "x", "input_type": "d", "default_output": "", '
                                     b'"latency_slo_micros": 100000000000000000000}', 400,
        "'latency_slo_micros' is a number; expected an integer"),
    Bad("slo string", "add_app", with_(APP, latency_slo_micros="100"), 400,
        "'latency_slo_micros' is a string; expected an integer"),
    Bad("name int", "add_app", with_(APP, name=5), 400, "'name' is a number; expected a string"),
    Bad("name null", "add_app", with_(APP, name=None), 400, "'name' is null; expected a string"),
    Bad("name array", "delete_app", {"name": ["app"]}, 400, "'name' is an array; expected a string"),
    Bad("input_type int", "add_app", with_(APP, input_type=1), 400, "'input_type' is a number; expected a string"),
    Bad("default_output int", "add_app", with_(APP, default_output=1), 400,
        "'default_output' is a number; expected a string"),
    Bad("policy int", "add_app", with_(APP, policy=1), 400, "'policy' is a number; expected a string"),
    Bad("policy_config array", "add_app", with_(APP, policy_config=[]), 400,
        "'policy_config' is an array; expected an object"),
    Bad("cache_enabled string", "add_app", with_(APP, cache_enabled="yes"), 400,
        "'cache_enabled' is a string; expected a boolean"),
    Bad("verbose string", "get_all_models", {"verbose": "yes"}, 400, "'verbose' is a string; expected a boolean"),
    Bad("verbose int", "get_all_applications", {"verbose": 1}, 400, "'verbose' is a number; expected a boolean"),
    Bad("verbose null", "get_all_containers", {"verbose": None}, 400, "'verbose' is null; expected a boolean"),
    Bad("uid string", "get_state", {"app_name": "app", "uid": "0"}, 400, "'uid' is a string; expected an integer"),
    Bad("model_names string", "add_model_links", {"app_name": "app", "model_names": "m"}, 400,
        "'model_names' is a string; expected an array"),
    Bad("model_names of ints", "delete_model_links", {"app_name": "full", "model_names": [1]}, 400,
        "'model_names' contains a number; expected an array of names"),
    Bad("model_names empty", "add_model_links", {"app_name": "app", "model_names": []}, 400,
        "'model_names' is empty; expected an array of at least one name"),
    Bad("model_names bad name", "add_model_links", {"app_name": "app", "model_names": ["m", "a:b"]}, 400,
        "is not allowed"),
    Bad("model_version bool", "get_model", {"model_name": "m", "model_version": True}, 400,
        "'model_version' is a boolean; expected a string"),
    Bad("model_version float", "set_model_version", {"model_name": "m", "model_version": 1.5}, 400,
        "'model_version' is a number; expected a string"),
    Bad("batch_size bool", "add_model", with_(MODEL, batch_size=True), 400,
        "'batch_size' is a boolean; expected an integer"),
    Bad("batch_size float", "add_model", with_(MODEL, batch_size=1.0), 400,
        "'batch_size' is a number; expected an integer"),
    Bad("labels string", "add_model", with_(MODEL, labels="a"), 400, "'labels' is a string; expected an array"),
    Bad("labels of ints", "add_model", with_(MODEL, labels=[1]), 400,
        "'labels' contains a number; expected an array of strings"),
    Bad("label with colon", "add_model", with_(MODEL, labels=["a:b"]), 400,
        "label 'a:b' contains ',' or ':', which are not allowed in labels"),
    Bad("container_name int", "add_model", with_(MODEL, container_name=1), 400,
        "'container_name' is a number; expected a string"),
    Bad("replica_id string", "get_container", {**REF, "replica_id": "0"}, 400,
        "'replica_id' is a string; expected an integer"),
    Bad("num_replicas bool", "set_num_replicas", {"model_name": "dm", "model_version": "1", "num_replicas": True},
        400, "'num_replicas' is a boolean; expected an integer"),
    Bad("batch wait negative", "add_model", with_(MODEL, batch_wait_timeout_micros=-1), 400,
        "'batch_wait_timeout_micros' is -1; expected microseconds >= 0"),
    # input types
    Bad("input_type unknown", "add_app", with_(APP, input_type="tensor"), 400,
        "invalid input_type 'tensor'; expected one of integers, floats, doubles, strings, bytes"),
    Bad("input_type empty", "add_model", with_(MODEL, input_type=""), 400, "invalid input_type ''"),
    # names
    *bad_names("add_app", APP, "name"),
    *bad_names("add_model", MODEL, "model_name"),
    *bad_names("add_model", MODEL, "model_version"),
    Bad("get_application bad name", "get_application", {"name": "../etc"}, 400, "is not allowed"),
    Bad("add_model_links empty app name", "add_model_links", {"app_name": "", "model_names": ["m"]}, 400,
        "'app_name' is empty"),
    # SLO and batch size ranges
    *[Bad(f"slo {v}", "add_app", with_(APP, latency_slo_micros=v), 400,
          f"'latency_slo_micros' is {v}; expected microseconds between 1 and 2147483647")
      for v in (0, -1, 2**31, 2**40)],
    *[Bad(f"batch_size {v}", "add_model", with_(MODEL, batch_size=v), 400,
          f"'batch_size' is {v}; expected a positive batch size or -1 (adaptive)") for v in (0, -2)],
    # duplicates and unknown names
    Bad("duplicate app", "add_app", with_(APP, name="app"), 400, "application 'app' already exists"),
    Bad("duplicate model", "add_model", with_(MODEL, model_name="m", model_version="1"), 400,
        "model with name 'm' and version '1' already exists"),
    Bad("unknown policy", "add_app", with_(APP, policy="zzz"), 400, "no selection policy named 'zzz'; installed: ["),
    Bad("set unknown policy", "set_app_policy", {"name": "app", "policy": "zzz"}, 400,
        "no selection policy named 'zzz'; installed: ["),
    Bad("set policy unknown app", "set_app_policy", {"name": "ghost", "policy": "default"}, 404,
        "Application 'ghost' does not exist"),
    Bad("set policy with too many links", "set_app_policy", {"name": "multi", "policy": "default"}, 400,
        "policy 'default' serves at most 1 linked model(s); application 'multi' has 2: unlink some first"),
    Bad("delete unknown app", "delete_app", {"name": "ghost"}, 404, "Application 'ghost' does not exist"),
    Bad("state of unknown app", "get_state", {"app_name": "ghost"}, 404, "Application 'ghost' does not exist"),
    Bad("links of unknown app", "get_linked_models", {"app_name": "ghost"}, 404, "Application 'ghost' does not exist"),
    # links
    Bad("link unknown app", "add_model_links", {"app_name": "ghost", "model_names": ["m"]}, 404,
        "Application 'ghost' does not exist"),
    Bad("link unknown model", "add_model_links", {"app_name": "app", "model_names": ["ghost"]}, 400,
        "No model with name 'ghost' exists"),
    Bad("link incompatible input type", "add_model_links", {"app_name": "strs", "model_names": ["m"]}, 400,
        "Model with name 'm' has incompatible input type 'doubles'; application 'strs' takes 'strings'"),
    Bad("second link under default policy", "add_model_links", {"app_name": "full", "model_names": ["m2"]}, 400,
        "Applications must be linked with at most one model under policy 'default'. "
        "Application 'full' is already linked to ['m']"),
    Bad("two links at once under default policy", "add_model_links", {"app_name": "app", "model_names": ["m", "m2"]},
        400, "Applications must be linked with at most one model"),
    Bad("link twice", "add_model_links", {"app_name": "multi", "model_names": ["m"]}, 400,
        "model with name 'm' is already linked to application 'multi'"),
    Bad("unlink unknown app", "delete_model_links", {"app_name": "ghost", "model_names": ["m"]}, 404,
        "Application 'ghost' does not exist"),
    Bad("unlink a model not linked", "delete_model_links", {"app_name": "full", "model_names": ["m2"]}, 404,
        "model 'm2' is not linked to application 'full'"),
    # model versions
    Bad("new version of another type than its app", "add_model", with_(MODEL, model_name="m", model_version="3",
                                                                       input_type="strings"), 400,
        "Model with name 'm' is linked to application 'full' of input type 'doubles'; version '3' has input type "
        "'strings'"),
    Bad("set version of unknown model", "set_model_version", {"model_name": "ghost", "model_version": "1"}, 400,
        "No model with name 'ghost' exists"),
    Bad("set unknown version", "set_model_version", {"model_name": "m", "model_version": "9"}, 400,
        "Requested version: 9 does not exist for model: m"),
    Bad("set version incompatible with app", "set_model_version", {"model_name": "mixed", "model_version": "2"}, 400,
        "version '2' of model 'mixed' has input type 'strings', incompatible with linked application 'mixedapp' "
        "('doubles')"),
    Bad("delete unknown version", "delete_versioned_model", {"model_name": "m", "model_version": "9"}, 400,
        "model with name 'm' and version '9' does not exist"),
    Bad("delete unknown model", "delete_versioned_model", {"model_name": "ghost", "model_version": "1"}, 400,
        "model with name 'ghost' and version '1' does not exist"),
    # replicas
    Bad("resize containerless", "set_num_replicas", {**REF, "num_replicas": 1}, 400,
        "Cannot resize the containerless model m:1"),
    Bad("resize unknown model", "set_num_replicas", {"model_name": "ghost", "model_version": "1",
                                                     "num_replicas": 1}, 404,
        "model with name 'ghost' and version '1' does not exist"),
    Bad("resize negative", "set_num_replicas", {"model_name": "dm", "model_version": "1", "num_replicas": -1}, 400,
        "'num_replicas' is -1; expected 0 to 256"),
    Bad("resize too many", "set_num_replicas", {"model_name": "dm", "model_version": "1", "num_replicas": 257}, 400,
        "'num_replicas' is 257; expected 0 to 256"),
    Bad("resize with a missing model directory", "set_num_replicas",
        {"model_name": "gone", "model_version": "1", "num_replicas": 1}, 400, "/missing of gone:1 does not exist"),
    Bad("replicas of unknown model", "get_num_replicas", {"model_name": "ghost", "model_version": "1"}, 404,
        "model with name 'ghost' and version '1' does not exist"),
]


def test_bad_case_ids_are_unique() -> None:
    assert len({c.id for c in BAD}) == len(BAD)


def assert_error(reply: Reply, status: int, cause: str) -> None:
    assert reply.status == status, reply
    assert reply.content_type == "application/json", reply
    assert isinstance(reply.body, dict) and set(reply.body) == {"error", "cause"}, reply.body
    assert isinstance(reply.body["error"], str) and reply.body["error"], reply.body
    assert cause in reply.body["cause"], reply.body


@pytest.mark.parametrize("case", BAD, ids=[c.id for c in BAD])
async def test_bad_request(admin: Admin, case: Bad) -> None:
    before = await admin.snapshot()
    raw = case.body if isinstance(case.body, bytes) else None
    reply = await admin.call("POST", f"/admin/{case.path}", None if raw is not None else case.body, raw=raw)
    assert_error(reply, case.status, case.cause)
    assert await admin.snapshot() == before  # a rejected request changes nothing


@pytest.mark.parametrize("name", ["a\x00b", "a\x1bb", "a\x7fb", "a@b", "caf\u00e9", "."],
                         ids=["NUL", "ESC", "DEL", "at", "non-ASCII", "dot"])
async def test_names_outside_the_documented_pattern_are_refused(admin: Admin, name: str) -> None:
    reply = await admin.call("POST", "/admin/add_model", with_(MODEL, model_name=name))
    assert_error(reply, 400, "is not allowed")


async def test_unknown_policy_names_what_is_installed(admin: Admin) -> None:
    reply = await admin.call("POST", "/admin/add_app", with_(APP, policy="zzz"))
    installed = admin.ctx.registry.policies.names()
    assert "any-number" in installed and "default" in installed
    assert reply.body == {"error": "Plugin error", "cause": f"no selection policy named 'zzz'; installed: {installed}"}


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p, _ in ROUTES])
async def test_wrong_method_is_a_json_405(admin: Admin, method: str, path: str) -> None:
    for wrong in (("POST", "PUT") if method == "GET" else ("GET", "DELETE")):
        reply = await admin.call(wrong, path)
        assert_error(reply, 405, f"method {wrong} is not allowed on {path}; allowed: {method}")
        assert reply.headers["Allow"] == method


@pytest.mark.parametrize(("method", "path"), [("POST", "/admin/nothing"), ("GET", "/admin"), ("GET", "/"),
                                              ("POST", "/admin/add_app/extra"), ("GET", "/admin/ping/")])
async def test_unknown_path_is_a_json_404(admin: Admin, method: str, path: str) -> None:
    assert_error(await admin.call(method, path, {}), 404, f"no such endpoint: {method} {path}")


# -- bearer token --------------------------------------------------------------------------------------

@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Admin]:
    admin = await start_admin(tmp_path, admin_token=TOKEN)
    yield admin
    await admin.client.close()


FIRST_OK = {(c.method, c.path): c for c in reversed(OK)}  # the first success case of each route


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p, _ in ROUTES])
async def test_token_guards_every_endpoint(guarded: Admin, method: str, path: str) -> None:
    case = FIRST_OK[(method, path)]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": f"Bearer {TOKEN}x"},
                    {"Authorization": "Bearer"}):
        reply = await guarded.call(method, path, case.body, headers=headers)
        assert_error(reply, 401, "requires the header 'Authorization: Bearer <CLIPPER_ADMIN_TOKEN>'")
        assert reply.body["error"] == "Unauthorized"
        assert reply.headers["WWW-Authenticate"] == 'Bearer realm="clipper-admin"'
    reply = await guarded.call(method, path, case.body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert (reply.status, reply.body) == (200, resolve(case.expected, guarded))


async def test_token_is_checked_before_routing(guarded: Admin) -> None:
    """Without the token an unknown path or a wrong method is a 401 too: nothing about the API leaks."""
    assert_error(await guarded.call("GET", "/admin/nothing"), 401, "Authorization")
    assert_error(await guarded.call("GET", "/admin/add_app"), 401, "Authorization")
    assert_error(await guarded.call("GET", "/admin/nothing", headers={"Authorization": f"Bearer {TOKEN}"}), 404,
                 "no such endpoint")


async def test_token_scheme_is_case_insensitive(guarded: Admin) -> None:
    reply = await guarded.call("GET", "/admin/ping", headers={"Authorization": f"bearer {TOKEN}"})
    assert (reply.status, reply.body) == (200, "PONG")


# -- body size limit -----------------------------------------------------------------------------------

LIMIT = 1024


@pytest.fixture
async def limited(tmp_path: Path) -> AsyncIterator[Admin]:
    admin = await start_admin(tmp_path, max_body_bytes=LIMIT)
    yield admin
    await admin.client.close()


def padded_app(size: int) -> bytes:
    """An add_app body of exactly ``size`` bytes."""
    body = json.dumps(with_(APP, default_output="")).encode()
    return json.dumps(with_(APP, default_output="x" * (size - len(body)))).encode()


BODY_ROUTES = [p for m, p, _ in ROUTES if m == "POST" and p not in ("/admin/get_logs", "/admin/shutdown")]


@pytest.mark.parametrize("path", BODY_ROUTES)
async def test_body_over_the_limit_is_a_json_413(limited: Admin, path: str) -> None:
    before = await limited.snapshot()
    reply = await limited.call("POST", path, raw=padded_app(LIMIT + 1))
    assert_error(reply, 413, str(LIMIT))
    assert await limited.snapshot() == before


async def test_body_at_the_limit_is_accepted(limited: Admin) -> None:
    body = padded_app(LIMIT)
    assert len(body) == LIMIT
    reply = await limited.call("POST", "/admin/add_app", raw=body)
    assert (reply.status, reply.body) == (200, "Successfully added application with name 'x'")


async def test_chunked_body_over_the_limit_is_a_json_413(limited: Admin) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        body = padded_app(4 * LIMIT)
        for start in range(0, len(body), 256):
            yield body[start:start + 256]

    response = await limited.client.post("/admin/add_app", data=chunks())
    assert response.status == 413 and "Content-Length" not in response.request_info.headers
    assert set(await response.json()) == {"error", "cause"}
    assert await limited.store.get_app("x") is None


def test_routes_reading_no_body_are_listed() -> None:
    """get_logs and shutdown ignore their body; every other POST route reads (and size-checks) it."""
    assert {p for m, p, _ in ROUTES if m == "POST"} - set(BODY_ROUTES) == {"/admin/get_logs", "/admin/shutdown"}

