"""Clipper's ``/admin/*`` endpoints (clipper-reference §2): same paths, POST with JSON bodies, same payloads
and success texts; errors are JSON ``{"error", "cause"}`` with Clipper's messages."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from aiohttp import web

from clipper_core.context import ServerContext
from clipper_core.errors import Conflict, InvalidInput, NotFound
from clipper_core.http_api import json_response, read_json_object
from clipper_core.management.fields import MAX_REPLICAS, Body
from clipper_core.management.openapi import admin_openapi
from clipper_core.names import NO_CONTAINER
from clipper_core.state import Application, Model

__all__ = ["CONTEXT", "ROUTES"]

CONTEXT = web.AppKey("clipper_admin_context", ServerContext)


def _ctx(request: web.Request) -> ServerContext:
    return request.app[CONTEXT]


async def _body(request: web.Request) -> Body:
    return Body(await read_json_object(request))


def _text(message: str) -> web.Response:
    return web.Response(text=message, content_type="text/plain")


# -- applications -----------------------------------------------------------------------------------

async def add_app(request: web.Request) -> web.Response:
    ctx, body = _ctx(request), await _body(request)
    name = body.name("name")
    input_type = body.input_type()
    default_output = body.text("default_output")
    slo = body.slo()
    policy = body.text("policy", "default")
    app = Application(name=name, input_type=input_type, default_output=default_output, latency_slo_micros=slo,
                      policy=policy, policy_config=body.mapping("policy_config", {}),
                      cache_enabled=body.boolean("cache_enabled", True))
    _check_policy(ctx, app)
    await ctx.store.add_app(app)
    return _text(f"Successfully added application with name '{name}'")


async def delete_app(request: web.Request) -> web.Response:
    ctx, body = _ctx(request), await _body(request)
    name = body.name("name")
    await ctx.store.delete_app(name)
    return _text(f"Successfully deleted application with name '{name}'")


def _app_json(app: Application, links: list[str]) -> dict[str, Any]:
    return {"name": app.name, "input_type": app.input_type.value, "default_output": app.default_output,
            "latency_slo_micros": app.latency_slo_micros, "linked_models": links, "policy": app.policy,
            "policy_config": app.policy_config, "cache_enabled": app.cache_enabled}


async def set_app_policy(request: web.Request) -> web.Response:
    """Change an app's selection policy (and its config); per-user policy state starts afresh."""
    ctx, body = _ctx(request), await _body(request)
    name = body.name("name")
    policy = body.text("policy")
    policy_class = ctx.registry.policies.get(policy)
    app = await ctx.store.get_app(name)
    if app is None:
        raise NotFound(f"Application '{name}' does not exist")
    links = await ctx.store.get_links(name)
    if policy_class.max_models is not None and len(links) > policy_class.max_models:
        raise Conflict(f"policy '{policy}' serves at most {policy_class.max_models} linked model(s); application "
                       f"'{name}' has {len(links)}: unlink some first")
    app = app.replace(policy=policy, policy_config=body.mapping("policy_config", {}))
    _check_policy(ctx, app)
    await ctx.store.update_app(app)
    return _text(f"Successfully set the policy of application '{name}' to '{policy}'")


def _check_policy(ctx: ServerContext, app: Application) -> None:
    """Build the app's policy once, as the query frontends will: an unknown policy is a 400 naming what is
    installed, and a ``policy_config`` the policy refuses is a 400 quoting the policy's reason."""
    policy_class = ctx.registry.policies.get(app.policy)
    try:
        policy_class(app, app.policy_config)
    except Exception as exc:
        raise InvalidInput(f"policy_config {app.policy_config!r} is refused by policy '{app.policy}': {exc}") from None


async def get_all_applications(request: web.Request) -> web.Response:
    ctx, body = _ctx(request), await _body(request)
    verbose = body.boolean("verbose", False)
    apps = await ctx.store.list_apps()
    if not verbose:
        return json_response([a.name for a in apps])
    return json_response([_app_json(a, await ctx.store.get_links(a.name)) for a in apps])


async def get_application(request: web.Request) -> web.Response:
    ctx, body = _ctx(request), await _body(request)
    app = await ctx.store.get_app(body.name("name"))
    if app is None:
        return json_response({})
    return json_response(_app_json(app, await ctx.store.get_links(app.name)))


async def get_state(request: web.Request) -> web.Response:
    ctx, body = _ctx(request), await _body(request)
    name = body.name("app_name")
    body.integer("uid", 0)
    app = await ctx.store.get_app(name)
    if app is None:
        raise NotFound(f"Application '{name}' does not exist")
    return _text(app.default_output)


# -- links --------------------------------------------------------------------------------------------

async def add_model_links(request: web.Request) -> web.Response:
    ctx, body = _ctx(request), await _body(request)
    app_name, model_names = body.name("app_name"), body.names("model_names")
    store = ctx.store
    app = await store.get_app(app_name)
    if app is None:
        raise NotFound(f"Application '{app_name}' does not exist")
    linked = await store.get_links(app_name)
    for model_name in model_names:
        current = await store.get_current_version(model_name)
        if current is None:
            raise NotFound(f"No model with name '{model_name}' exists", status=400)
        model = await store.get_model(model_name, current)
        assert model is not None
        if model.input_type is not app.input_type:
            raise Conflict(f"Model with name '{model_name}' has incompatible input type "
                           f"'{model.input_type.value}'; application '{app_name}' takes '{app.input_type.value}'")
        if model_name in linked:
            raise Conflict(f"model with name '{model_name}' is already linked to application '{app_name}'")
    max_models = ctx.registry.policies.get(app.policy).max_models
    if max_models is not None and len(linked) + len(model_names) > max_models:
        limit = "one model" if max_models == 1 else f"{max_models} models"
        raise Conflict(f"Applications must be linked with at most {limit} under policy '{app.policy}'. "
                       f"Application '{app_name}' is already linked to {linked}")
    await store.add_links(app_name, model_names)
    return _text(f"Successfully linked model with name '{model_names[0]}' to application '{app_name}'"
                 if len(model_names) == 1 else
                 f"Successfully linked models {model_names} to application '{app_name}'")


async def delete_model_links(request: web.Request) -> web.Response:
    ctx, body = _ctx(request), await _body(request)
    await ctx.store.delete_links(body.name("app_name"), body.names("model_names"))
    return _text("Success!")


async def get_linked_models(request: web.Request) -> web.Response:
    ctx, body = _ctx(request), await _body(request)
    return json_response(await ctx.store.get_links(body.name("app_name")))


# -- models -------------------------------------------------------------------------------------------

async def _apps_linking(ctx: ServerContext, model_name: str) -> list[Application]:
    return [app for app in await ctx.store.list_apps() if model_name in await ctx.store.get_links(app.name)]


async def add_model(request: web.Request) -> web.Response:
    ctx, body = _ctx(request), await _body(request)
    name, version = body.name("model_name"), body.version("model_version")
    input_type = body.input_type()
    batch_size = body.integer("batch_size")
    if batch_size != -1 and batch_size <= 0:
        raise InvalidInput(f"'batch_size' is {batch_size}; expected a positive batch size or -1 (adaptive)")
    wait = body.integer("batch_wait_timeout_micros", 0)
    if wait < 0:
        raise InvalidInput(f"'batch_wait_timeout_micros' is {wait}; expected microseconds >= 0")
    for app in await _apps_linking(ctx, name):
        if app.input_type is not input_type:
            raise Conflict(f"Model with name '{name}' is linked to application '{app.name}' of input type "
                           f"'{app.input_type.value}'; version '{version}' has input type '{input_type.value}'")
    model = Model(name=name, version=version, input_type=input_type, labels=body.labels(),
                  container_name=body.text("container_name", NO_CONTAINER),
                  model_data_path=body.text("model_data_path", "DEPRECATED"), batch_size=batch_size,
                  batch_wait_timeout_micros=wait, created_at=time.time())
    await ctx.store.add_model(model)
    return _text(f"Successfully added model with name '{name}' and input type '{input_type.value}'")


async def set_model_version(request: web.Request) -> web.Response:
    ctx, body = _ctx(request), await _body(request)
    name, version = body.name("model_name"), body.version("model_version")
    versions = await ctx.store.list_models(name)
    if not versions:
        raise NotFound(f"No model with name '{name}' exists", status=400)
    model = next((m for m in versions if m.version == version), None)
    if model is None:
        raise NotFound(f"Requested version: {version} does not exist for model: {name}", status=400)
    for app in await _apps_linking(ctx, name):
        if app.input_type is not model.input_type:
            raise Conflict(f"version '{version}' of model '{name}' has input type '{model.input_type.value}', "
                           f"incompatible with linked application '{app.name}' ('{app.input_type.value}')")
    await ctx.store.set_current_version(name, version)
    return _text(f"Successfully set model with name '{name}' to version '{version}'")


async def delete_versioned_model(request: web.Request) -> web.Response:
    ctx, body = _ctx(request), await _body(request)
    name, version = body.name("model_name"), body.version("model_version")
    model = await ctx.store.get_model(name, version)
    if model is None:
        raise NotFound(f"model with name '{name}' and version '{version}' does not exist", status=400)
    if ctx.supervisor is not None and ctx.supervisor.desired(name, version):
        await ctx.supervisor.set_replicas(model, 0)
    await ctx.store.delete_model(name, version)
    return _text(f"Successfully deleted model with name '{name}' and version '{version}'")


def _model_json(model: Model, current: str | None) -> dict[str, Any]:
    return {"model_name": model.name, "model_version": model.version, "input_type": model.input_type.value,
            "labels": list(model.labels), "container_name": model.container_name,
            "model_data_path": model.model_data_path, "is_current_version": model.version == current,
            "batch_size": model.batch_size, "num_replicas": model.num_replicas}


async def get_all_models(request: web.Request) -> web.Response:
    ctx, body = _ctx(request), await _body(request)
    verbose = body.boolean("verbose", False)
    models = await ctx.store.list_models()
    if not verbose:
        return json_response([f"{m.name}:{m.version}" for m in models])
    current = await ctx.store.current_versions()
    return json_response([_model_json(m, current.get(m.name)) for m in models])


async def get_model(request: web.Request) -> web.Response:
    ctx, body = _ctx(request), await _body(request)
    name, version = body.name("model_name"), body.version("model_version")
    model = await ctx.store.get_model(name, version)
    if model is None:
        return json_response({})
    return json_response(_model_json(model, await ctx.store.get_current_version(name)))


# -- replicas -----------------------------------------------------------------------------------------

def _replica_json(r: Any) -> dict[str, Any]:
    return {"model_id": f"{r.model_name}:{r.model_version}", "model_name": r.model_name,
            "model_version": r.model_version, "model_replica_id": r.replica_id, "input_type": r.input_type.value,
            "pid": r.info.get("pid")}


async def get_all_containers(request: web.Request) -> web.Response:
    ctx, body = _ctx(request), await _body(request)
    verbose = body.boolean("verbose", False)
    replicas = await ctx.store.list_replicas()
    if not verbose:
        return json_response([f"{r.model_name}:{r.model_version}:{r.replica_id}" for r in replicas])
    return json_response([_replica_json(r) for r in replicas])


async def get_container(request: web.Request) -> web.Response:
    ctx, body = _ctx(request), await _body(request)
    name, version = body.name("model_name"), body.version("model_version")
    replica_id = body.integer("replica_id")
    for r in await ctx.store.list_replicas(name, version):
        if r.replica_id == replica_id:
            return json_response(_replica_json(r))
    return json_response({})


async def _managed_model(ctx: ServerContext, body: Body) -> Model:
    name, version = body.name("model_name"), body.version("model_version")
    model = await ctx.store.get_model(name, version)
    if model is None:
        raise NotFound(f"model with name '{name}' and version '{version}' does not exist")
    if ctx.supervisor is None:
        raise Conflict("this clipper server does not run replicas itself; its container manager "
                       "(e.g. Docker or Kubernetes) starts them")
    return model


async def set_num_replicas(request: web.Request) -> web.Response:
    ctx, body = _ctx(request), await _body(request)
    model = await _managed_model(ctx, body)
    n = body.integer("num_replicas")
    if not 0 <= n <= MAX_REPLICAS:
        raise InvalidInput(f"'num_replicas' is {n}; expected 0 to {MAX_REPLICAS}")
    if model.container_name == NO_CONTAINER and n > 0:
        raise Conflict(f"Cannot resize the containerless model {model.name}:{model.version}")
    if model.container_name != NO_CONTAINER and not os.path.isdir(model.container_name):
        raise Conflict(f"model directory {model.container_name} of {model.name}:{model.version} does not exist")
    await ctx.store.update_model(model.replace(num_replicas=n))
    assert ctx.supervisor is not None
    await ctx.supervisor.set_replicas(model, n)
    return json_response({"model_name": model.name, "model_version": model.version, "num_replicas": n})


async def get_num_replicas(request: web.Request) -> web.Response:
    ctx, body = _ctx(request), await _body(request)
    model = await _managed_model(ctx, body)
    assert ctx.supervisor is not None
    connected = len(await ctx.store.list_replicas(model.name, model.version))
    return json_response({"num_replicas": ctx.supervisor.desired(model.name, model.version),
                          "running": ctx.supervisor.running(model.name, model.version), "connected": connected})


# -- server -------------------------------------------------------------------------------------------

async def ping(request: web.Request) -> web.Response:
    return _text("PONG")


async def get_logs(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    files = [str(p) for p in ctx.supervisor.log_files()] if ctx.supervisor is not None else []
    server_log = ctx.config.logs_dir / "clipper.log"
    if server_log.exists() and str(server_log) not in files:
        files.append(str(server_log))
    return json_response({"files": sorted(files)})


async def shutdown(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    if ctx.request_shutdown is None:
        raise Conflict("this server cannot be stopped over the admin API")
    asyncio.get_running_loop().call_later(0.05, ctx.request_shutdown)  # after this response has been written
    return json_response({"stopping": True})


async def info(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    return json_response({"query_addr": ctx.extra.get("query_addr"), "admin_addr": ctx.extra.get("admin_addr"),
                          "metrics_addr": ctx.extra.get("metrics_addr"), "rpc_addr": ctx.rpc_addr,
                          "pid": os.getpid(), "home": str(ctx.config.home)})


async def plugins(request: web.Request) -> web.Response:
    return json_response([{"name": p.name, "distribution": p.distribution, "version": p.version,
                           "hooks": list(p.hooks)} for p in _ctx(request).registry.plugins()])


async def openapi(request: web.Request) -> web.Response:
    return json_response(admin_openapi())


ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/admin/ping", ping),
    ("GET", "/admin/info", info),
    ("GET", "/plugins", plugins),
    ("GET", "/openapi.json", openapi),
    ("POST", "/admin/add_app", add_app),
    ("POST", "/admin/delete_app", delete_app),
    ("POST", "/admin/set_app_policy", set_app_policy),
    ("POST", "/admin/get_all_applications", get_all_applications),
    ("POST", "/admin/get_application", get_application),
    ("POST", "/admin/get_state", get_state),
    ("POST", "/admin/add_model_links", add_model_links),
    ("POST", "/admin/delete_model_links", delete_model_links),
    ("POST", "/admin/get_linked_models", get_linked_models),
    ("POST", "/admin/add_model", add_model),
    ("POST", "/admin/set_model_version", set_model_version),
    ("POST", "/admin/delete_versioned_model", delete_versioned_model),
    ("POST", "/admin/get_all_models", get_all_models),
    ("POST", "/admin/get_model", get_model),
    ("POST", "/admin/get_all_containers", get_all_containers),
    ("POST", "/admin/get_container", get_container),
    ("POST", "/admin/set_num_replicas", set_num_replicas),
    ("POST", "/admin/get_num_replicas", get_num_replicas),
    ("POST", "/admin/get_logs", get_logs),
    ("POST", "/admin/shutdown", shutdown),
]
