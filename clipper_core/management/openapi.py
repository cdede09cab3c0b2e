"""The management API's OpenAPI 3.0.3 document, served at ``GET /openapi.json`` by the admin app.

Built from the pieces every clipper document shares (:mod:`clipper_core.openapi`); tests/test_openapi.py checks
that it lists exactly the routes of :data:`clipper_core.management.handlers.ROUTES`.
"""

from __future__ import annotations

import copy
from typing import Any

from clipper_core.autoscaling.config import MAX_AUTOSCALE_REPLICAS
from clipper_core.management.fields import MAX_REPLICAS, MAX_SLO_MICROS
from clipper_core.management.tenancy_openapi import APP_LIMITS, PRIORITY, TENANCY_SCHEMAS, tenancy_paths
from clipper_core.openapi import (
    ERROR,
    INPUT_TYPE,
    INT64,
    NAME,
    VERSION,
    VERSION_NAME,
    error_components,
    error_refs,
    json_reply,
    obj,
    request_body,
    text_reply,
)
from clipper_core.rollouts.record import ACTIVE, ENDED
from clipper_core.rollouts.settings import MODES, REWARD_KINDS

__all__ = ["admin_openapi"]

TEXT = text_reply("OK: Clipper's plain-text message")
EMPTY = {"type": "object", "maxProperties": 0, "description": "{} when there is no such thing"}
STRINGS = {"type": "array", "items": {"type": "string"}}
VERBOSE = obj([], verbose={"type": "boolean"})
MODEL_REF = obj(["model_name", "model_version"], model_name=NAME, model_version=VERSION_NAME)
LINKS = obj(["app_name", "model_names"], app_name=NAME, model_names={"type": "array", "items": NAME, "minItems": 1})
SUM_MODEL = {"model_name": "sum-model", "model_version": "1"}
LINK_EXAMPLE = {"app_name": "hello-world", "model_names": ["sum-model"]}


def admin_openapi() -> dict[str, Any]:
    """The management frontend: Clipper's /admin API (POST with JSON bodies), plus info, plugins, and this."""
    return copy.deepcopy({  # a fresh document: the shared schema pieces must not be mutated through it
        "openapi": "3.0.3",
        "info": {"title": "clipper management API", "version": VERSION,
                 "description": "Clipper's /admin API. When the server has an admin token, every endpoint needs "
                                "'Authorization: Bearer <token>'. Errors are JSON {\"error\", \"cause\"}; a "
                                "method a path does not list answers 405 with that object."},
        "servers": [{"url": "/"}],
        "security": [{}, {"bearer": []}],
        "paths": {**_discovery_paths(), **_app_paths(), **_link_paths(), **_model_paths(), **_replica_paths(),
                  **_rollout_paths(), **tenancy_paths(), **_server_paths()},
        "components": {
            "schemas": {"Error": ERROR, **_record_schemas(), "Rollout": ROLLOUT, "RolloutFigures": FIGURES,
                        **TENANCY_SCHEMAS},
            "responses": error_components(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "the server's admin token (CLIPPER_ADMIN_TOKEN)"}},
        },
    })


# -- how operations are described ------------------------------------------------------------------

def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _verbose_list(item: str, terse: str) -> dict[str, Any]:
    return {"oneOf": [{**STRINGS, "description": terse},
                      {"type": "array", "items": _ref(item), "minItems": 1, "description": "verbose"}]}


def _one_or_empty(item: str) -> dict[str, Any]:
    return json_reply({"oneOf": [_ref(item), EMPTY]})


def _post(summary: str, body: dict[str, Any], ok: dict[str, Any], errors: tuple[int, ...],
          example: Any = None) -> dict[str, Any]:
    return {"post": {"summary": summary, "requestBody": request_body(body, example),
                     "responses": {"200": ok, **error_refs(*errors, 401, 413)}}}


def _ignored_body(summary: str, ok: dict[str, Any], *errors: int) -> dict[str, Any]:
    return {"post": {"summary": summary, "requestBody": request_body({"type": "object"}, required=False),
                     "responses": {"200": ok, **error_refs(*errors, 401)}}}


def _get(summary: str, ok: dict[str, Any]) -> dict[str, Any]:
    return {"get": {"summary": summary, "responses": {"200": ok, **error_refs(401)}}}


# -- the records reads answer with -----------------------------------------------------------------

AUTOSCALING = obj([], min_replicas={"type": "integer", "minimum": 0, "maximum": MAX_AUTOSCALE_REPLICAS},
                  max_replicas={"type": "integer", "minimum": 1, "maximum": MAX_AUTOSCALE_REPLICAS},
                  target_inflight_per_replica={"type": "number", "minimum": 0, "exclusiveMinimum": True,
                                               "nullable": True},
                  target_latency_fraction={"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 1,
                                           "nullable": True},
                  upscale_delay_s={"type": "number", "minimum": 0, "maximum": 3600},
                  downscale_delay_s={"type": "number", "minimum": 0, "maximum": 3600},
                  smoothing_window_s={"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 600})
AUTOSCALING["additionalProperties"] = False
AUTOSCALING["description"] = ("min_replicas <= max_replicas; exactly one target (target_inflight_per_replica, the "
                              "default 4, or target_latency_fraction)")
"""A model version's autoscaling settings (clipper_core.autoscaling.config.AutoscalingConfig)."""
AUTOSCALING_REPLY = obj(["model_name", "model_version", "autoscaling", "status"], model_name={"type": "string"},
                        model_version={"type": "string"}, autoscaling={**AUTOSCALING, "nullable": True},
                        status={"type": "object", "nullable": True})


def _nullable(schema: dict[str, Any], off: str = "null: the guard is off") -> dict[str, Any]:
    return {**schema, "nullable": True, "description": off}


RATE = {"type": "number", "minimum": 0, "maximum": 1}
COUNT = {"type": "integer", "minimum": 1, "maximum": 10**9}
ROLLOUT_SETTINGS: dict[str, Any] = {
    "mode": {"type": "string", "enum": list(MODES),
             "description": "canary (default): the candidate answers a growing share of the users; shadow: a share "
                            "of the queries is mirrored to it, the current version answers all"},
    "steps": {"type": "array", "minItems": 1, "maxItems": 20,
              "items": {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 100},
              "description": "the candidate's shares in percent, increasing (default [5, 25, 50, 100]; shadow: [100])"},
    "step_seconds": {"type": "number", "minimum": 0, "maximum": 7 * 24 * 3600,
                     "description": "how long a step lasts at least (60)"},
    "min_queries_per_step": {**COUNT, "description": "queries the candidate answers in a step before it passes, and "
                                                     "before the guards are checked (100)"},
    "max_error_rate": _nullable(RATE, "the candidate's failed share of its queries (0.01; null: off)"),
    "max_p99_ms": _nullable({"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 3_600_000},
                            "the candidate's p99 latency (null, the default: off)"),
    "max_default_rate": _nullable(RATE, "the share of its queries with no output in time (0.05; null: off)"),
    "min_feedback_reward": _nullable(RATE, "the mean reward of the feedback on its answers (null, the default: off)"),
    "min_feedback": {**COUNT, "description": "feedback a step needs before the reward is checked (20)"},
    "reward": {"type": "string", "enum": list(REWARD_KINDS), "description": "how feedback is scored (match)"},
    "min_agreement": _nullable(RATE, "shadow only: its outputs' share equal to the current version's (null, the "
                                     "default: off)"),
    "agreement_tolerance": {"type": "number", "minimum": 0, "maximum": 1e9,
                            "description": "numbers within it agree (1e-6, absolute or relative)"},
}
"""The rollout settings (clipper_core.rollouts.settings.RolloutSettings), as start_rollout takes them."""
FIGURES = obj(["queries", "errors", "defaults", "error_rate", "default_rate", "p99_ms", "slow", "agreement",
               "compared", "dropped", "mean_reward", "feedback"],
              queries={"type": "integer"}, errors={"type": "integer"}, defaults={"type": "integer"},
              error_rate={"type": "number"}, default_rate={"type": "number"},
              p99_ms={"type": "number", "nullable": True,
                      "description": "the upper bound of the p99's latency bucket; null: no output yet"},
              slow={"type": "integer", "description": "outputs later than max_p99_ms (counted exactly)"},
              agreement={"type": "number", "nullable": True, "description": "shadow: null until compared"},
              compared={"type": "integer"}, dropped={"type": "integer"},
              mean_reward={"type": "number", "nullable": True, "description": "null: no feedback yet"},
              feedback={"type": "integer"})
FIGURES["additionalProperties"] = False
FIGURES["description"] = "A version's figures over the step (StepFigures.summary)"
ROLLOUT = obj(["model", "candidate", "baseline", "settings", "state", "step", "step_id", "step_started_at",
               "started_at", "ended_at", "reason", "figures", "history", "weights"],
              model={"type": "string"}, candidate={"type": "string"},
              baseline={"type": "string", "description": "the version current when the rollout started"},
              settings={**obj(list(ROLLOUT_SETTINGS), **ROLLOUT_SETTINGS), "additionalProperties": False},
              state={"type": "string", "enum": [*ACTIVE, *ENDED]},
              step={"type": "integer", "minimum": 0, "description": "the index in settings.steps"},
              step_id={"type": "integer", "description": "changes whenever the split does"},
              step_started_at={"type": "number"}, started_at={"type": "number"},
              ended_at={"type": "number", "nullable": True}, reason={"type": "string"},
              figures={"oneOf": [EMPTY, {**obj(["candidate", "baseline"], candidate=_ref("RolloutFigures"),
                                                baseline=_ref("RolloutFigures")), "additionalProperties": False}],
                       "description": "the step's figures per version, once judged"},
              history={"type": "array", "items": obj(
                  ["event", "at", "step", "share", "reason"], event={"type": "string"}, at={"type": "number"},
                  step={"type": "integer"}, share={"type": "number"}, reason={"type": "string"},
                  figures=_ref("RolloutFigures"))},
              weights={"type": "object", "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
                       "description": "each version's share of the answers"},
              mirrored={"type": "number", "minimum": 0, "maximum": 1,
                        "description": "shadow mode: the share of the queries mirrored to the candidate"},
              judged_at={"type": "number", "description": "when the controller last judged the active rollout"})
ROLLOUT["additionalProperties"] = False
ROLLOUT["description"] = "A model's rollout (Rollout.view) with the controller's live reason and figures"


def _record_schemas() -> dict[str, Any]:
    """What :mod:`clipper_core.management.render` writes for an application, a model version and a replica."""
    app = obj(["name", "input_type", "default_output", "latency_slo_micros", "linked_models", "policy",
               "policy_config", "cache_enabled", "require_api_key", "priority", "limits"],
              name={"type": "string"}, input_type={"type": "string"}, default_output={"type": "string"},
              latency_slo_micros={"type": "integer"}, linked_models={"type": "array", "items": {"type": "string"}},
              policy={"type": "string"}, policy_config={"type": "object"}, cache_enabled={"type": "boolean"},
              require_api_key={"type": "boolean"}, priority=PRIORITY,
              limits={**APP_LIMITS, "nullable": True, "description": "null: no limits (see /admin/get_app_limits)"})
    model = obj(["model_name", "model_version", "input_type", "labels", "container_name", "model_data_path",
                 "is_current_version", "batch_size", "batch_wait_timeout_micros", "num_replicas", "autoscaling"],
                model_name={"type": "string"}, model_version={"type": "string"}, input_type={"type": "string"},
                labels={"type": "array", "items": {"type": "string"}}, container_name={"type": "string"},
                model_data_path={"type": "string"}, is_current_version={"type": "boolean"},
                batch_size={"type": "integer"}, batch_wait_timeout_micros={"type": "integer"},
                num_replicas={"type": "integer"}, autoscaling={**AUTOSCALING, "nullable": True})
    replica = obj(["model_id", "model_name", "model_version", "model_replica_id", "input_type", "pid"],
                  model_id={"type": "string"}, model_name={"type": "string"}, model_version={"type": "string"},
                  model_replica_id={"type": "integer"}, input_type={"type": "string"},
                  pid={"type": "integer", "nullable": True})
    return {"Application": app, "Model": model, "Replica": replica}


# -- the paths, grouped as handlers.ROUTES is ------------------------------------------------------

def _discovery_paths() -> dict[str, Any]:
    return {
        "/admin/ping": _get("Liveness", text_reply("PONG")),
        "/admin/info": _get("Where this server listens", json_reply(obj(
            ["query_addr", "admin_addr", "metrics_addr", "rpc_addr", "pid", "home"],
            query_addr={"type": "string", "nullable": True}, admin_addr={"type": "string", "nullable": True},
            metrics_addr={"type": "string", "nullable": True}, rpc_addr={"type": "string", "nullable": True},
            pid={"type": "integer"}, home={"type": "string"}))),
        "/plugins": _get("Installed plugins", json_reply({"type": "array", "items": obj(
            ["name", "distribution", "version", "hooks"], name={"type": "string"},
            distribution={"type": "string"}, version={"type": "string"}, hooks=STRINGS)})),
        "/openapi.json": _get("This document", json_reply(obj(["openapi", "info", "paths"]))),
    }


def _app_paths() -> dict[str, Any]:
    return {
        "/admin/add_app": _post(
            "Register an application",
            obj(["name", "input_type", "default_output", "latency_slo_micros"], name=NAME, input_type=INPUT_TYPE,
                default_output={"type": "string"},
                latency_slo_micros={"type": "integer", "minimum": 1, "maximum": MAX_SLO_MICROS},
                policy={"type": "string", "description": "an installed selection policy (default 'default')"},
                policy_config={"type": "object"}, cache_enabled={"type": "boolean"}),
            TEXT, (400,), {"name": "hello-world", "input_type": "doubles", "default_output": "-1.0",
                           "latency_slo_micros": 100000}),
        "/admin/delete_app": _post("Delete an application", obj(["name"], name=NAME), TEXT, (400, 404),
                                   {"name": "hello-world"}),
        "/admin/set_app_policy": _post(
            "Change an application's selection policy",
            obj(["name", "policy"], name=NAME, policy={"type": "string"}, policy_config={"type": "object"}),
            TEXT, (400, 404), {"name": "hello-world", "policy": "default"}),
        "/admin/get_all_applications": _post("List applications (names, or verbose objects)", VERBOSE,
                                             json_reply(_verbose_list("Application", "names")), (400,),
                                             {"verbose": True}),
        "/admin/get_application": _post("One application ({} if there is none)", obj(["name"], name=NAME),
                                        _one_or_empty("Application"), (400,), {"name": "hello-world"}),
        "/admin/get_state": _post("An application's default output",
                                  obj(["app_name"], app_name=NAME, uid=INT64),
                                  TEXT, (400, 404), {"app_name": "hello-world"}),
    }


def _link_paths() -> dict[str, Any]:
    return {
        "/admin/add_model_links": _post("Link models to an application", LINKS, TEXT, (400, 404), LINK_EXAMPLE),
        "/admin/delete_model_links": _post("Unlink models from an application", LINKS, TEXT, (400, 404),
                                           LINK_EXAMPLE),
        "/admin/get_linked_models": _post("The models linked to an application", obj(["app_name"], app_name=NAME),
                                          json_reply(STRINGS), (400, 404), {"app_name": "hello-world"}),
    }


def _model_paths() -> dict[str, Any]:
    return {
        "/admin/add_model": _post(
            "Register a model version (and make it current, unless make_current is false)",
            obj(["model_name", "model_version", "input_type", "batch_size"], model_name=NAME,
                model_version=VERSION_NAME, input_type=INPUT_TYPE,
                labels={"type": "array", "items": {"type": "string", "pattern": "^[^,:]*$"}},
                container_name={"type": "string", "description": "a closure model directory, or NO_CONTAINER"},
                model_data_path={"type": "string"},
                batch_size={**INT64, "minimum": -1, "not": {"enum": [0]},
                            "description": "a fixed batch size, or -1 for adaptive batching"},
                batch_wait_timeout_micros={**INT64, "minimum": 0},
                autoscaling={**AUTOSCALING, "nullable": True},
                make_current={"type": "boolean", "description": "false: the model's current version stays (a "
                                                                "rollout's candidate); default true, as in Clipper"}),
            TEXT, (400,), {**SUM_MODEL, "input_type": "doubles", "batch_size": -1}),
        "/admin/set_model_version": _post("Make a version current", MODEL_REF, TEXT, (400, 404), SUM_MODEL),
        "/admin/delete_versioned_model": _post("Delete a model version (and stop its replicas)", MODEL_REF, TEXT,
                                               (400, 404), SUM_MODEL),
        "/admin/get_all_models": _post("List models ('name:version', or verbose objects)", VERBOSE,
                                       json_reply(_verbose_list("Model", "name:version")), (400,),
                                       {"verbose": True}),
        "/admin/get_model": _post("One model version ({} if there is none)", MODEL_REF, _one_or_empty("Model"),
                                  (400,), SUM_MODEL),
    }


def _replica_paths() -> dict[str, Any]:
    return {
        "/admin/get_all_containers": _post("List connected replicas ('name:version:id', or verbose objects)",
                                           VERBOSE, json_reply(_verbose_list("Replica", "name:version:replica_id")),
                                           (400,), {"verbose": True}),
        "/admin/get_container": _post(
            "One connected replica ({} if there is none)",
            obj(["model_name", "model_version", "replica_id"], model_name=NAME, model_version=VERSION_NAME,
                replica_id=INT64),
            _one_or_empty("Replica"), (400,), {**SUM_MODEL, "replica_id": 0}),
        "/admin/set_num_replicas": _post(
            "Start or stop replicas of a closure model",
            obj(["model_name", "model_version", "num_replicas"], model_name=NAME, model_version=VERSION_NAME,
                num_replicas={"type": "integer", "minimum": 0, "maximum": MAX_REPLICAS}),
            json_reply(obj(["model_name", "model_version", "num_replicas"], model_name={"type": "string"},
                           model_version={"type": "string"}, num_replicas={"type": "integer"})),
            (400, 404), {**SUM_MODEL, "num_replicas": 1}),
        "/admin/set_autoscaling": _post(
            "Turn autoscaling of a model version on (settings; omitted ones take their defaults) or off (null)",
            obj(["model_name", "model_version", "autoscaling"], model_name=NAME, model_version=VERSION_NAME,
                autoscaling={**AUTOSCALING, "nullable": True}),
            json_reply(AUTOSCALING_REPLY), (400, 404),
            {**SUM_MODEL, "autoscaling": {"min_replicas": 0, "max_replicas": 4, "target_inflight_per_replica": 4}}),
        "/admin/get_autoscaling": _post("A model version's autoscaling settings and the autoscaler's last decision",
                                        MODEL_REF, json_reply(AUTOSCALING_REPLY), (400, 404), SUM_MODEL),
        "/admin/get_num_replicas": _post(
            "Replicas wanted, running and connected", MODEL_REF,
            json_reply(obj(["num_replicas", "running", "connected"], num_replicas={"type": "integer"},
                           running={"type": "integer"}, connected={"type": "integer"})),
            (400, 404), SUM_MODEL),
    }


def _rollout_paths() -> dict[str, Any]:
    model = obj(["model_name"], model_name=NAME)
    reply = json_reply(_ref("Rollout"))
    example = {"model_name": "sum-model"}
    start = {**obj(["model_name", "version"], model_name=NAME, version=VERSION_NAME, **ROLLOUT_SETTINGS),
             "additionalProperties": False}
    return {
        "/admin/start_rollout": _post(
            "Roll a registered version that is not current out against the current one (omitted settings take "
            "their defaults)", start, reply, (400, 404),
            {"model_name": "sum-model", "version": "2", "steps": [5, 25, 50, 100], "step_seconds": 60,
             "min_queries_per_step": 100, "max_error_rate": 0.01, "max_p99_ms": 80}),
        "/admin/get_rollout": _post("A model's rollout: the active one, else the last", model, reply, (400, 404),
                                    example),
        "/admin/get_rollouts": _post("Every model's rollout", obj([]),
                                     json_reply({"type": "array", "items": _ref("Rollout")}), (400,), {}),
        "/admin/pause_rollout": _post("Hold an active rollout at its step (the guards still roll it back)", model,
                                      reply, (400, 404), example),
        "/admin/resume_rollout": _post("Resume a paused rollout (its step starts over)", model, reply, (400, 404),
                                       example),
        "/admin/abort_rollout": _post("End an active rollout; the current version answers every query", model,
                                      reply, (400, 404), example),
        "/admin/promote_rollout": _post("End an active rollout, making the candidate the current version", model,
                                        reply, (400, 404), example),
    }


def _server_paths() -> dict[str, Any]:
    return {
        "/admin/get_logs": _ignored_body("Log files (the body is ignored)",
                                         json_reply(obj(["files"], files=STRINGS))),
        "/admin/shutdown": _ignored_body("Stop the server gracefully (the body is ignored)",
                                         json_reply(obj(["stopping"], stopping={"type": "boolean"})), 400),
    }
