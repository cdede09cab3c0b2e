"""The management API, endpoint by endpoint, in process (the server under test is tests/management/harness.py's):
every route's success bodies are Clipper's (clipper-reference §2: plain-text messages, JSON reads, verbose and
non-verbose lists), and with an admin token every route needs it. Bad requests are test_bad_requests.py's."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from clipper_core.management.handlers import ROUTES
from clipper_core.management.openapi import admin_openapi
from clipper_core.management.tenancy_openapi import tenancy_paths
from tests.management.harness import Admin, assert_error, start_admin

TOKEN = "s3cret"


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
            "cache_enabled": cache_enabled, "require_api_key": False, "priority": "normal", "limits": None}


def model_json(name: str, version: str, current: bool, *, input_type: str = "doubles", labels: list[str] | None = None,
               container: str = "NO_CONTAINER", data_path: str = "DEPRECATED", batch_size: int = -1,
               replicas: int = 0, autoscaling: dict[str, Any] | None = None, wait_micros: int = 0) -> dict[str, Any]:
    return {"model_name": name, "model_version": version, "input_type": input_type, "labels": labels or [],
            "container_name": container, "model_data_path": data_path, "is_current_version": current,
            "batch_size": batch_size, "batch_wait_timeout_micros": wait_micros, "num_replicas": replicas,
            "autoscaling": autoscaling}


AUTOSCALED = {"min_replicas": 2, "max_replicas": 6, "target_inflight_per_replica": 4.0,
              "target_latency_fraction": None, "upscale_delay_s": 3.0, "downscale_delay_s": 30.0,
              "smoothing_window_s": 5.0}
"""The settings set_autoscaling stores for {"min_replicas": 2, "max_replicas": 6} (the rest are defaults)."""


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
    Ok("set_autoscaling", "POST", "/admin/set_autoscaling",
       {"model_name": "dm", "model_version": "1", "autoscaling": {"min_replicas": 2, "max_replicas": 6}},
       {"model_name": "dm", "model_version": "1", "autoscaling": AUTOSCALED, "status": None},
       ("get_model", {"model_name": "dm", "model_version": "1"},
        lambda a: {**dm_json(a), "autoscaling": AUTOSCALED})),
    Ok("set_autoscaling off", "POST", "/admin/set_autoscaling",
       {"model_name": "dm", "model_version": "1", "autoscaling": None},
       {"model_name": "dm", "model_version": "1", "autoscaling": None, "status": None}),
    Ok("get_autoscaling", "POST", "/admin/get_autoscaling", {"model_name": "dm", "model_version": "1"},
       {"model_name": "dm", "model_version": "1", "autoscaling": None, "status": None}),
    Ok("get_logs", "POST", "/admin/get_logs", {}, lambda a: {"files": sorted(
        str(a.ctx.config.logs_dir / n) for n in ("clipper.log", "dm_1_0.log", "dm_1_1.log"))}),
    Ok("shutdown", "POST", "/admin/shutdown", {}, {"stopping": True}),
]


def resolve(expected: Expected, admin: Admin) -> Any:
    return expected(admin) if callable(expected) else expected


ROLLOUT_ROUTES = {(method, path) for method, path, _ in ROUTES if path.endswith(("_rollout", "_rollouts"))}
"""Their successes need a candidate version with a connected replica (and a rollout started): they are
tests/management/test_rollout_api.py's, on a real server, the bearer token over them included."""
TENANCY_ROUTES = {("POST", path) for path in tenancy_paths()}
"""A new key's answer holds a random secret: these are tests/management/test_tenancy_api.py's, the bearer token over
them included."""


def test_every_route_has_a_success_case() -> None:
    assert {(c.method, c.path) for c in OK} == {(method, path) for method, path, _ in ROUTES} - ROLLOUT_ROUTES \
        - TENANCY_ROUTES


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


# -- bearer token --------------------------------------------------------------------------------------

@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Admin]:
    admin = await start_admin(tmp_path, admin_token=TOKEN)
    yield admin
    await admin.client.close()


FIRST_OK = {(c.method, c.path): c for c in reversed(OK)}  # the first success case of each route


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p, _ in ROUTES
                                              if (m, p) not in ROLLOUT_ROUTES | TENANCY_ROUTES])
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
