"""Where the Redis state store keeps what, and in which form. Every key is under ``clipper:``; NUL separates
the parts of a composite hash field::

    clipper:apps              hash    app name -> JSON application (a record written before API keys lacks
                                      require_api_key, priority and limits: it reads with their defaults)
    clipper:links             hash    app name -> JSON list of linked model names, in link order
                                      (present exactly while the app exists)
    clipper:models            hash    "name\\0version" -> JSON model plus "seq" (its creation order)
    clipper:model_seq         string  counter behind a model's "seq" (INCR)
    clipper:current           hash    model name -> current version
    clipper:rollouts          hash    model name -> JSON rollout record (as given; kept when the model's versions
                                      are deleted)
    clipper:replicas          hash    "name\\0version\\0replica id" -> JSON replica
    clipper:api_keys          hash    key id -> JSON API key (its salted digest, never the secret; deleted with
                                      its app)
    clipper:replica_ids       hash    "name\\0version" -> replica ids handed out so far (HINCRBY, never reset)
    clipper:policy:<app>      hash    uid -> policy state bytes (deleted with the app)
    clipper:feedback:<app>    list    JSON feedback; the item at index i has seq i + 1 (never trimmed, and
                                      kept when the app is deleted)
    clipper:feedback_seq      hash    app name -> last feedback seq (= the list's length)
    clipper:frontends         hash    query frontend RPC address -> expiry (Redis server clock, unix seconds)
    clipper:load              hash    query frontend -> JSON {"expiry": Redis server clock, "figures": its load
                                      report}, see :mod:`clipper_core.state.redis.load`
    clipper:changes           channel change announcements (PUBLISH), see :mod:`clipper_core.state.redis.feed`

A JSON record is :mod:`clipper_core.state.codec`'s object of the record's fields (:func:`dump`), a model's
with its creation ``seq`` added; a feedback item's ``seq`` is its list position instead.
"""

from __future__ import annotations

from typing import Any

from clipper_core.state import codec
from clipper_core.state.records import ApiKey, Application, Feedback, Model, Replica

__all__ = ["API_KEYS", "APPS", "CHANNEL", "CURRENT", "FEEDBACK_SEQ", "FRONTENDS", "LINKS", "LOAD", "MODELS",
           "MODEL_SEQ", "PREFIX", "REPLICAS", "REPLICA_IDS", "ROLLOUTS", "SEP", "dump", "dump_feedback", "feedback_key",
           "model_field", "policy_key", "read_api_key", "read_app", "read_feedback", "read_model", "read_replica",
           "replica_field", "text"]

PREFIX = "clipper:"
APPS, LINKS, MODELS, MODEL_SEQ = PREFIX + "apps", PREFIX + "links", PREFIX + "models", PREFIX + "model_seq"
CURRENT, REPLICAS, REPLICA_IDS = PREFIX + "current", PREFIX + "replicas", PREFIX + "replica_ids"
FEEDBACK_SEQ, FRONTENDS, CHANNEL = PREFIX + "feedback_seq", PREFIX + "frontends", PREFIX + "changes"
LOAD, ROLLOUTS, API_KEYS = PREFIX + "load", PREFIX + "rollouts", PREFIX + "api_keys"
SEP = "\0"


def policy_key(app_name: str) -> str:
    return PREFIX + "policy:" + app_name


def feedback_key(app_name: str) -> str:
    return PREFIX + "feedback:" + app_name


def model_field(name: str, version: str) -> str:
    """The field of a model version in ``clipper:models`` (and ``clipper:replica_ids``)."""
    return name + SEP + version


def replica_field(name: str, version: str, replica_id: int) -> str:
    """The field of a replica in ``clipper:replicas``; its model version's field plus SEP is its prefix."""
    return f"{name}{SEP}{version}{SEP}{replica_id}"


def text(value: bytes | str) -> str:
    """A reply of a client that does not decode responses, as text."""
    return value.decode() if isinstance(value, bytes) else value


# -- the JSON records -----------------------------------------------------------------------------------
def dump(record: Application | Model | Replica | ApiKey, **extra: Any) -> str:
    """The record's JSON object, with ``extra`` fields (a model's ``seq``) at the end."""
    return codec.dumps({**codec.encode(record), **extra})


def dump_feedback(feedback: Feedback) -> str:
    data = codec.encode(feedback)
    del data["seq"]  # the list index is the seq
    return codec.dumps(data)


def read_app(raw: str | bytes) -> Application:
    return codec.decode(Application, codec.loads(raw))


def read_model(raw: str | bytes) -> tuple[int, Model]:
    """(creation seq, model)."""
    data = codec.loads(raw)
    seq = int(data.pop("seq", 0))
    return seq, codec.decode(Model, data)


def read_replica(raw: str | bytes) -> Replica:
    return codec.decode(Replica, codec.loads(raw))


def read_api_key(raw: str | bytes) -> ApiKey:
    return codec.decode(ApiKey, codec.loads(raw))


def read_feedback(raw: str | bytes, seq: int) -> Feedback:
    return codec.decode(Feedback, {**codec.loads(raw), "seq": seq})
