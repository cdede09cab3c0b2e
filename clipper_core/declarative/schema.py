"""The JSON Schema of a clipper file (``clipper apply -f clipper.yaml``), as data: ``clipper schema`` prints it,
``docs/clipper.schema.json`` is a copy for editors (a test keeps the two equal), and :mod:`.load` checks every
file against it before anything else. What one field alone cannot say (exactly one model source, installed
deployers, links to declared objects) is checked after it, in :mod:`.load`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["API_VERSION", "SCHEMA", "SOURCE_FIELDS"]

API_VERSION = "clipper/v1"
SOURCE_FIELDS = ("module", "file", "model_dir", "image")
"""Where a model version comes from: exactly one of these."""

_NAME = {"type": "string", "pattern": r"^[A-Za-z0-9._-]+$", "minLength": 1, "maxLength": 128}
_MODEL_NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 128,
               "description": "lower-case letters, digits and '-', starting and ending with a letter or digit"}
_VERSION = {"type": ["string", "integer"], "pattern": r"^[A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?$",
            "minimum": 0, "description": "letters, digits, '-', '_' and '.' (a number is read as its text)"}
_INPUT_TYPE = {"enum": ["integers", "ints", "floats", "doubles", "bytes", "strings"],
               "description": "what the application's inputs are"}
_RATE = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
_POSITIVE = {"type": "number", "exclusiveMinimum": 0}


def _object(required: list[str], description: str, **properties: Any) -> dict[str, Any]:
    return {"type": "object", "description": description, "required": required, "properties": properties,
            "additionalProperties": False}


APPLICATION = _object(
    ["name", "input_type"], "An application: an endpoint POST /{name}/predict with its SLO and default output.",
    name=_NAME, input_type=_INPUT_TYPE,
    slo_micros={"type": "integer", "minimum": 1,
                "description": "latency objective in microseconds (100000); fixed once registered"},
    default_output={"type": "string", "description": "answered when no model answers in time (\"None\"); fixed "
                                                    "once registered"},
    policy={"type": "string", "minLength": 1,
            "description": "selection policy (default: Clipper's one-model policy); may change"},
    policy_config={"type": "object", "description": "the policy's settings ({}); may change"},
    cache={"type": "boolean", "description": "cache predictions (true); fixed once registered"},
)

AUTOSCALING = _object(
    ["max_replicas"], "Let the autoscaler size this version (docs: README, Autoscaling); its replica count then "
                      "belongs to the autoscaler.",
    min_replicas={"type": "integer", "minimum": 0, "description": "fewest replicas; 0 scales to zero (1)"},
    max_replicas={"type": "integer", "minimum": 1, "description": "most replicas"},
    target_inflight_per_replica={**_POSITIVE, "type": ["number", "null"],
                                 "description": "outstanding inputs per replica to aim for (4)"},
    target_latency_fraction={**_POSITIVE, "type": ["number", "null"], "maximum": 1,
                             "description": "or: p99 to aim for, as a fraction of the smallest linked SLO"},
    upscale_delay_s={"type": "number", "minimum": 0, "description": "seconds (3)"},
    downscale_delay_s={"type": "number", "minimum": 0, "description": "seconds (30)"},
    smoothing_window_s={**_POSITIVE, "description": "seconds (5)"},
)

ROLLOUT = _object(
    [], "Roll this version out against the model's current one (docs/rollouts.md); started once, then the "
        "rollout decides which version is current.",
    mode={"enum": ["canary", "shadow"], "description": "canary (default) or shadow"},
    steps={"type": "array", "items": {"type": "number", "exclusiveMinimum": 0, "maximum": 100}, "minItems": 1,
           "description": "the candidate's shares in percent, increasing"},
    step_seconds={"type": "number", "minimum": 0},
    min_queries_per_step={"type": "integer", "minimum": 0},
    max_error_rate={**_RATE, "description": "null turns the guard off"},
    max_p99_ms={"type": ["number", "null"], "exclusiveMinimum": 0},
    max_default_rate={**_RATE, "description": "null turns the guard off"},
    min_feedback_reward={"type": ["number", "null"]},
    min_feedback={"type": "integer", "minimum": 1},
    reward={"enum": ["match", "abs_error", "squared_error"]},
    min_agreement={**_RATE},
    agreement_tolerance={"type": "number", "minimum": 0},
)

MODEL = _object(
    ["name", "version", "input_type"],
    "A model version, from exactly one of module, file, model_dir or image. Its source, input type, batching and "
    "labels are fixed once registered (a change needs a new version); replicas, autoscaling and which version "
    "is current may change.",
    name=_MODEL_NAME, version=_VERSION, input_type=_INPUT_TYPE,
    deployer={"type": "string", "minLength": 1,
              "description": "the deployer (`clipper deploy --help` lists those installed); default: python_closure "
                             "for module, else the one deployer that takes the file's suffix"},
    module={"type": "string", "pattern": r"^.+\.py:[A-Za-z_][A-Za-z0-9_]*$",
            "description": "FILE.py:FUNCTION, a function of a batch returning one output per input"},
    file={"type": "string", "minLength": 1,
          "description": "a saved model for a framework deployer: model.skops, model.json (XGBoost), model.pt2, "
                         "model.keras, a SavedModel directory..."},
    model_dir={"type": "string", "minLength": 1,
               "description": "a model directory already saved by a deployer (it holds clipper_model.json)"},
    image={"type": "string", "minLength": 1,
           "description": "what the container manager runs, as it is (a Docker image); NO_CONTAINER: a model "
                          "without replicas"},
    digest={"type": "string", "pattern": "^[0-9a-f]{64}$",
            "description": "written by clipper export: the sha256 of the source the version was built from, "
                           "recorded instead of model_dir's or image's own"},
    options={"type": "object", "description": "the deployer's save options (method, format, sample_input, "
                                              "input_shape, signature...)"},
    base_image={"type": "string", "minLength": 1},
    pkgs_to_install={"type": "array", "items": {"type": "string"}},
    replicas={"type": "integer", "minimum": 0, "description": "replicas to run (1)"},
    batch_size={"type": "integer", "minimum": -1, "not": {"const": 0},
                "description": "fixed batch size, -1: adaptive (-1)"},
    batch_wait_timeout_micros={"type": "integer", "minimum": 0,
                               "description": "wait up to this long for a fuller batch (0)"},
    labels={"type": "array", "items": {"type": "string", "pattern": "^[^,:=]*$"}},
    current={"type": "boolean",
             "description": "whether this version answers the queries (default: the model's last version in the "
                            "file that has no rollout and is not current: false)"},
    autoscaling={**AUTOSCALING, "type": ["object", "null"]},
    rollout=ROLLOUT,
)

LINK = _object(["app", "model"], "A model linked to an application.", app=_NAME, model=_MODEL_NAME)

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "clipper file",
    "description": "The applications, model versions and links a clipper should run (clipper apply -f FILE; "
                   "docs/declarative.md).",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": API_VERSION},
        "applications": {"type": "array", "items": APPLICATION},
        "models": {"type": "array", "items": MODEL},
        "links": {"type": "array", "items": LINK},
    },
}
