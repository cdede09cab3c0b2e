"""Clipper's ``/admin/*`` endpoints (clipper-reference §2): same paths, POST with JSON bodies, same payloads
and success texts; errors are JSON ``{"error", "cause"}`` with Clipper's messages.

Each handler reads its body's fields (:class:`~clipper_core.management.fields.Body`: a malformed field is an
InvalidInput before anything is looked up), calls one :class:`ManagementOperations` method (which checks Clipper's
rules) and writes the answer: Clipper's plain-text message or a JSON record (:mod:`clipper_core.management.render`).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from aiohttp import web

from clipper_core.context import ServerContext
from clipper_core.errors import Conflict
from clipper_core.http_api import json_response, read_json_object
from clipper_core.management.fields import Body
from clipper_core.management.openapi import admin_openapi
from clipper_core.management.operations import ManagementOperations
from clipper_core.management.render import (
    app_json,
    autoscaling_json,
    model_json,
    model_label,
    replica_json,
    replica_label,
)
from clipper_core.management.rollouts import RolloutOperations
from clipper_core.management.tenancy import tenancy_routes
from clipper_core.names import NO_CONTAINER
from clipper_core.state import Application, Model

__all__ = ["CONTEXT", "ROUTES"]

CONTEXT = web.AppKey("clipper_admin_context", ServerContext)


def _ctx(request: web.Request) -> ServerContext:
    return request.app[CONTEXT]


def _ops(request: web.Request) -> ManagementOperations:
    # Built per request from the context, so a supervisor the server attaches after create_admin_app counts.
    return ManagementOperations.of(request.app[CONTEXT])


async def _body(request: web.Request) -> Body:
    return Body(await read_json_object(request))


def _text(message: str) -> web.Response:
    return web.Response(text=message, content_type="text/plain")


# -- applications -----------------------------------------------------------------------------------

async def add_app(request: web.Request) -> web.Response:
    body = await _body(request)
    name = body.name("name")
    app = Application(name=name, input_type=body.input_type(), default_output=body.text("default_output"),
                      latency_slo_micros=body.slo(), policy=body.text("policy", "default"),
                      policy_config=body.mapping("policy_config", {}),
                      cache_enabled=body.boolean("cache_enabled", True))
    await _ops(request).add_app(app)
    return _text(f"Successfully added application with name '{name}'")


async def delete_app(request: web.Request) -> web.Response:
    name = (await _body(request)).name("name")
    await _ops(request).delete_app(name)
    return _text(f"Successfully deleted application with name '{name}'")


async def set_app_policy(request: web.Request) -> web.Response:
    body = await _body(request)
    name, policy = body.name("name"), body.text("policy")
    ops = _ops(request)
    app = await ops.policy_change_target(name, policy)  # Clipper's order: app and policy before the config
    await ops.change_policy(app, policy, body.mapping("policy_config", {}))
    return _text(f"Successfully set the policy of application '{name}' to '{policy}'")


async def get_all_applications(request: web.Request) -> web.Response:
    verbose = (await _body(request)).boolean("verbose", False)
    ops = _ops(request)
    if not verbose:
        return json_response(await ops.app_names())
    return json_response([app_json(info) for info in await ops.app_infos()])


async def get_application(request: web.Request) -> web.Response:
    info = await _ops(request).app_info((await _body(request)).name("name"))
    return json_response({} if info is None else app_json(info))


async def get_state(request: web.Request) -> web.Response:
    body = await _body(request)
    name = body.name("app_name")
    body.integer("uid", 0)  # checked, then ignored: Clipper answers every user with the default output
    return _text(await _ops(request).default_output(name))


# -- links --------------------------------------------------------------------------------------------

async def add_model_links(request: web.Request) -> web.Response:
    body = await _body(request)
    app_name, model_names = body.name("app_name"), body.names("model_names")
    await _ops(request).link_models(app_name, model_names)
    return _text(f"Successfully linked model with name '{model_names[0]}' to application '{app_name}'"
                 if len(model_names) == 1 else
                 f"Successfully linked models {model_names} to application '{app_name}'")


async def delete_model_links(request: web.Request) -> web.Response:
    body = await _body(request)
    await _ops(request).unlink_models(body.name("app_name"), body.names("model_names"))
    return _text("Success!")


async def get_linked_models(request: web.Request) -> web.Response:
    return json_response(await _ops(request).linked_models((await _body(request)).name("app_name")))


# -- models -------------------------------------------------------------------------------------------

async def add_model(request: web.Request) -> web.Response:
    body = await _body(request)
    name, version, input_type = body.name("model_name"), body.version("model_version"), body.input_type()
    batch_size, wait = body.batch_size(), body.micros("batch_wait_timeout_micros", 0)
    ops = _ops(request)
    await ops.check_linked_input_type(name, version, input_type)  # Clipper's order: before the other fields
    model = Model(name=name, version=version, input_type=input_type, batch_size=batch_size,
                  batch_wait_timeout_micros=wait, labels=body.labels(),
                  container_name=body.text("container_name", NO_CONTAINER),
                  model_data_path=body.text("model_data_path", "DEPRECATED"), autoscaling=body.autoscaling())
    if model.autoscaling is not None and model.container_name == NO_CONTAINER:
        raise Conflict(f"Cannot autoscale the containerless model {name}:{version}: nothing to start")
    # make_current is clipper's addition (Clipper's add_model always makes the version current)
    await ops.register_model(model, make_current=body.boolean("make_current", True))
    return _text(f"Successfully added model with name '{model.name}' and input type '{model.input_type.value}'")


async def set_model_version(request: web.Request) -> web.Response:
    body = await _body(request)
    name, version = body.name("model_name"), body.version("model_version")
    await _ops(request).set_model_version(name, version)
    return _text(f"Successfully set model with name '{name}' to version '{version}'")


async def delete_versioned_model(request: web.Request) -> web.Response:
    body = await _body(request)
    name, version = body.name("model_name"), body.version("model_version")
    await _ops(request).delete_versioned_model(name, version)
    return _text(f"Successfully deleted model with name '{name}' and version '{version}'")


async def get_all_models(request: web.Request) -> web.Response:
    verbose = (await _body(request)).boolean("verbose", False)
    ops = _ops(request)
    if not verbose:
        return json_response([model_label(m) for m in await ops.models()])
    return json_response([model_json(info) for info in await ops.model_infos()])


async def get_model(request: web.Request) -> web.Response:
    body = await _body(request)
    info = await _ops(request).model_info(body.name("model_name"), body.version("model_version"))
    return json_response({} if info is None else model_json(info))


# -- replicas -----------------------------------------------------------------------------------------

async def get_all_containers(request: web.Request) -> web.Response:
    verbose = (await _body(request)).boolean("verbose", False)
    replicas = await _ops(request).replicas()
    return json_response([replica_json(r) if verbose else replica_label(r) for r in replicas])


async def get_container(request: web.Request) -> web.Response:
    body = await _body(request)
    name, version = body.name("model_name"), body.version("model_version")
    replica = await _ops(request).replica(name, version, body.integer("replica_id"))
    return json_response({} if replica is None else replica_json(replica))


async def set_num_replicas(request: web.Request) -> web.Response:
    body = await _body(request)
    ops = _ops(request)
    model = await ops.managed_model(body.name("model_name"), body.version("model_version"))
    model = await ops.resize(model, body.replica_count())  # Clipper's order: the model before the count
    return json_response({"model_name": model.name, "model_version": model.version,
                          "num_replicas": model.num_replicas})


async def set_autoscaling(request: web.Request) -> web.Response:
    body = await _body(request)
    name, version = body.name("model_name"), body.version("model_version")
    model = await _ops(request).set_autoscaling(name, version, body.autoscaling(required=True))
    return json_response(autoscaling_json(model, None))


async def get_autoscaling(request: web.Request) -> web.Response:
    body = await _body(request)
    name, version = body.name("model_name"), body.version("model_version")
    model = await _ops(request).registered_model(name, version)
    autoscaler = _ctx(request).autoscaler
    return json_response(autoscaling_json(model, autoscaler.status(name, version) if autoscaler else None))


async def get_num_replicas(request: web.Request) -> web.Response:
    body = await _body(request)
    counts = await _ops(request).replica_counts(body.name("model_name"), body.version("model_version"))
    return json_response(counts._asdict())


# -- rollouts (docs/rollouts.md): each answers the rollout's view (Rollout.view, with the controller's live look)

def _rollouts(request: web.Request) -> RolloutOperations:
    return RolloutOperations.of(request.app[CONTEXT])


async def start_rollout(request: web.Request) -> web.Response:
    body = await _body(request)
    name, version = body.name("model_name"), body.version("version")
    settings = body.rollout_settings("model_name", "version")
    return json_response(await _rollouts(request).start(name, version, settings))


async def get_rollout(request: web.Request) -> web.Response:
    name = (await _body(request)).name("model_name")
    return json_response(await _rollouts(request).get(name))


async def get_rollouts(request: web.Request) -> web.Response:
    await _body(request)  # a JSON object (no field is read)
    return json_response(await _rollouts(request).list())


async def pause_rollout(request: web.Request) -> web.Response:
    name = (await _body(request)).name("model_name")
    return json_response(await _rollouts(request).pause(name))


async def resume_rollout(request: web.Request) -> web.Response:
    name = (await _body(request)).name("model_name")
    return json_response(await _rollouts(request).resume(name))


async def abort_rollout(request: web.Request) -> web.Response:
    name = (await _body(request)).name("model_name")
    return json_response(await _rollouts(request).abort(name))


async def promote_rollout(request: web.Request) -> web.Response:
    name = (await _body(request)).name("model_name")
    return json_response(await _rollouts(request).promote(name))


# -- server -------------------------------------------------------------------------------------------

async def ping(request: web.Request) -> web.Response:
    return _text("PONG")


async def get_logs(request: web.Request) -> web.Response:
    return json_response({"files": _ops(request).log_files()})


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
    ("POST", "/admin/set_autoscaling", set_autoscaling),
    ("POST", "/admin/get_autoscaling", get_autoscaling),
    ("POST", "/admin/start_rollout", start_rollout),
    ("POST", "/admin/get_rollout", get_rollout),
    ("POST", "/admin/get_rollouts", get_rollouts),
    ("POST", "/admin/pause_rollout", pause_rollout),
    ("POST", "/admin/resume_rollout", resume_rollout),
    ("POST", "/admin/abort_rollout", abort_rollout),
    ("POST", "/admin/promote_rollout", promote_rollout),
    *tenancy_routes(_ctx),  # API keys, an app's limits and priority (management/tenancy.py)
    ("POST", "/admin/get_logs", get_logs),
    ("POST", "/admin/shutdown", shutdown),
]
