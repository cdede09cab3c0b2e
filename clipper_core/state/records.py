"""The records a state store holds. Plain frozen dataclasses: cheap to copy into the frontend's snapshot."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from clipper_core.inputs import InputType
from clipper_core.names import NO_CONTAINER

__all__ = ["ApiKey", "Application", "ChangeEvent", "Feedback", "LoadFigures", "Model", "ModelKey", "Replica",
           "load_key", "parse_load_key"]

ModelKey = tuple[str, str]
"""(model name, model version)."""

LoadFigures = dict[str, dict[str, float]]
"""One query frontend's load report (:meth:`~clipper_core.state.StateStore.put_load`): ``"name:version"``
(:func:`load_key`) -> figure name -> value. The figures are
:mod:`clipper_core.server.load_report`'s; a store keeps them as given (JSON numbers)."""


def load_key(name: str, version: str) -> str:
    """The key of a model version in a load report: ``"name:version"``. Unambiguous because neither a model name
    nor a version may hold ':' (:data:`clipper_core.names.NAME_PATTERN`); the same text as a ModelRuntime's label
    and the Prometheus rows."""
    return f"{name}:{version}"


def parse_load_key(key: str) -> ModelKey:
    """(name, version) of a :func:`load_key`."""
    name, _, version = key.partition(":")
    return name, version


@dataclass(frozen=True)
class Application:
    name: str
    input_type: InputType
    default_output: str
    latency_slo_micros: int
    policy: str = "default"
    policy_config: dict[str, Any] = field(default_factory=dict)
    cache_enabled: bool = True
    require_api_key: bool = False
    """Whether the query API answers this app only to a request carrying one of its API keys (:class:`ApiKey`)."""
    priority: str = "normal"
    """The app's priority class: ``high``, ``normal`` or ``low`` (:data:`clipper_core.tenancy.limits.PRIORITIES`)."""
    limits: dict[str, Any] | None = None
    """The app's rate limits, quotas and input limits as a plain JSON object (validated by
    :class:`clipper_core.tenancy.limits.AppLimits` before it is stored; a store keeps it as given); None: none."""

    def replace(self, **changes: Any) -> Application:
        return dataclasses.replace(self, **changes)

    def same_policy(self, other: Application) -> bool:
        """Whether per-user policy state learned under ``self`` still applies under ``other`` (stores drop it
        when an app's policy or its config changes)."""
        return (self.policy, self.policy_config) == (other.policy, other.policy_config)


@dataclass(frozen=True)
class Model:
    name: str
    version: str
    input_type: InputType
    labels: tuple[str, ...] = ()
    container_name: str = NO_CONTAINER
    """Clipper's name for the image; for the local manager, the model directory."""
    model_data_path: str = "DEPRECATED"
    batch_size: int = -1
    """-1 = adaptive; otherwise the fixed batch size the model asks for."""
    batch_wait_timeout_micros: int = 0
    num_replicas: int = 0
    """Desired replica count, kept so a restarted manager can bring them back."""
    created_at: float = 0.0
    autoscaling: dict[str, Any] | None = None
    """The version's autoscaling settings as a plain JSON object (validated by
    :class:`clipper_core.autoscaling.config.AutoscalingConfig` before it is stored; a store keeps it as given);
    None: not autoscaled."""

    @property
    def key(self) -> ModelKey:
        return (self.name, self.version)

    def replace(self, **changes: Any) -> Model:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Replica:
    model_name: str
    model_version: str
    replica_id: int
    input_type: InputType
    frontend: str = ""
    """Which frontend this replica is connected to (its RPC address)."""
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Feedback:
    app_name: str
    uid: int
    input: Any
    label: Any
    query_id: int | None = None
    received_at: float = 0.0
    seq: int = 0
    """Assigned by the store when the feedback is appended (monotonic per app)."""


@dataclass(frozen=True)
class ApiKey:
    """One API key of an application's query API, as a store keeps it: never the secret, only its salted digest.
    :mod:`clipper_core.tenancy.keys` makes keys (``new_key``) and checks a secret against one (``matches``)."""

    key_id: str
    """12 hex characters, public: the part of the secret that finds this record."""
    app_name: str
    label: str = ""
    """What the key is for, as its creator said (may be empty)."""
    salt: str = ""
    """16 random bytes as hex."""
    digest: str = ""
    """HMAC-SHA256 of the whole secret under ``salt``, as hex."""
    created_at: float = 0.0
    limits: dict[str, Any] | None = None
    """The key's own rate limits as a plain JSON object (validated by
    :class:`clipper_core.tenancy.limits.KeyLimits` before it is stored); None: only the app's limits apply."""

    def public(self) -> dict[str, Any]:
        """What listings show of the key: everything but ``salt`` and ``digest``."""
        return {"key_id": self.key_id, "app_name": self.app_name, "label": self.label, "limits": self.limits,
                "created_at": self.created_at}

    def replace(self, **changes: Any) -> ApiKey:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class ChangeEvent:
    """A change a store announces to its subscribers. ``kind`` is one of:

    ``app`` (added, changed or deleted; ``name`` is the app), ``model`` (``name``/``version``), ``link``
    (``name`` is the app), ``current_version`` (``name`` is the model), ``replica``, ``rollout`` (a rollout record
    was stored or deleted; ``name`` is the model), ``api_key`` (an API key was added or revoked, or an app's keys
    were deleted with it; ``name`` is the app) and ``reload`` (subscribers must re-read everything, e.g. after a
    reconnect).
    """

    kind: str
    name: str = ""
    version: str = ""
