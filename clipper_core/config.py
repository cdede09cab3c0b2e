"""Typed configuration, validated at startup. Every ``CLIPPER_*`` environment variable is in :data:`ENV`."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ENV", "Config", "ConfigError", "clipper_home"]


class ConfigError(ValueError):
    """A configuration value is invalid; the message says which and what to do."""


ENV: dict[str, tuple[str, str]] = {
    # variable: (Config field, meaning)
    "CLIPPER_HOME": ("home", "state, logs and model directories (default ~/.clipper)"),
    "CLIPPER_HOST": ("query_host", "address the query frontend binds (default 127.0.0.1)"),
    "CLIPPER_QUERY_PORT": ("query_port", "query REST port (default 1337; 0 = any free port)"),
    "CLIPPER_ADMIN_HOST": ("admin_host", "address the management frontend binds (default 127.0.0.1)"),
    "CLIPPER_MANAGEMENT_PORT": ("admin_port", "management REST port (default 1338; 0 = any free port)"),
    "CLIPPER_GRPC_PORT": ("grpc_port", "V2 gRPC port (off unless set; 0 = any free port; needs clipper-core[grpc])"),
    "CLIPPER_GRPC_HOST": ("grpc_host", "address the V2 gRPC endpoint binds (default: the query frontend's)"),
    "CLIPPER_RPC_HOST": ("rpc_host", "address the RPC server binds (default 127.0.0.1)"),
    "CLIPPER_RPC_PORT": ("rpc_port", "ZeroMQ RPC port model containers connect to (default 7000)"),
    "CLIPPER_STATE_STORE": ("state_store", "sqlite (default), memory, or a redis:// URL"),
    "CLIPPER_CACHE": ("cache_backend", "prediction cache backend (default lru)"),
    "CLIPPER_CACHE_SIZE": ("cache_size_bytes", "prediction cache budget in bytes (default 33554432)"),
    "CLIPPER_CACHE_REDIS_URL": ("cache_url", "where a remote cache lives (default: the shared state store's URL)"),
    "CLIPPER_ADMIN_TOKEN": ("admin_token", "bearer token required on every /admin endpoint when set"),
    "CLIPPER_MAX_BODY_BYTES": ("max_body_bytes", "largest accepted request body (default 16 MiB)"),
    "CLIPPER_HEARTBEAT_INTERVAL": ("heartbeat_interval", "seconds between container heartbeats (default 0.5)"),
    "CLIPPER_MAX_QUEUE_LENGTH": ("max_queue_length", "tasks one model version may queue before 503 (10000)"),
    "CLIPPER_STUCK_BATCH_SECONDS": ("stuck_batch_seconds",
                                    "restart a local replica stuck on a batch this long (0: off)"),
    "CLIPPER_BATCHES_IN_FLIGHT": ("batches_in_flight", "batches sent to one replica before its first answers (2)"),
    "CLIPPER_DISABLE_PLUGINS": ("disabled_plugins", "comma-separated plugin names not to load"),
    "CLIPPER_RPC_ADVERTISE": ("rpc_advertise", "RPC address announced to replicas (tcp://host:port)"),
    "CLIPPER_RPC_IPC": ("rpc_ipc", "also bind an ipc:// endpoint that replicas on this host use (default 1; 0: TCP)"),
    "CLIPPER_CONTAINER_MANAGER": ("container_manager", "container manager `clipper start` uses (default local)"),
    "CLIPPER_ADMISSION_SLO_FRACTION": ("admission_slo_fraction",
                                       "refuse work predicted to finish later than this fraction of the SLO (0.9)"),
    "CLIPPER_SLO_BUDGET_FRACTION": ("slo_budget_fraction",
                                    "share of the tightest linked app's SLO one batch may take (0.5)"),
    "CLIPPER_RECENT_PREDICTIONS": ("recent_predictions",
                                   "predictions remembered to join feedback with (100000)"),
    "CLIPPER_POLICY_STATES_PER_APP": ("policy_states_per_app",
                                      "per-user policy states cached in memory per app (10000)"),
    "CLIPPER_AUTOSCALE_INTERVAL": ("autoscale_interval", "seconds between two looks of the autoscaler (0.5)"),
    "CLIPPER_AUTOSCALE_MANAGER": ("autoscale_manager",
                                  "container manager the autoscaler acts through where replicas are not local"),
    "CLIPPER_AUTOSCALE_MANAGER_OPTIONS": ("autoscale_manager_options",
                                          "that manager's constructor arguments, as a JSON object"),
    "CLIPPER_ROLLOUT_INTERVAL": ("rollout_interval", "seconds between two looks of the rollout controller (1.0)"),
    "CLIPPER_ACCESS_LOG": ("access_log", "json: a JSON line per HTTP request on the clipper.access logger (off)"),
}


def clipper_home() -> Path:
    return Path(os.environ.get("CLIPPER_HOME") or Path.home() / ".clipper").expanduser()


@dataclass(frozen=True)
class Config:
    home: Path = dataclasses.field(default_factory=clipper_home)
    query_host: str = "127.0.0.1"
    query_port: int = 1337
    admin_host: str = "127.0.0.1"
    admin_port: int = 1338
    grpc_port: int | None = None
    """The Open Inference Protocol's gRPC endpoint (``inference.GRPCInferenceService``): off unless set, since it
    needs the optional grpcio (``clipper-core[grpc]``) and opens a port; 0 = any free port."""
    grpc_host: str = ""
    """Where the gRPC endpoint binds; empty: ``query_host``."""
    rpc_host: str = "127.0.0.1"
    rpc_port: int = 7000
    state_store: str = "sqlite"
    cache_backend: str = "lru"
    cache_size_bytes: int = 32 * 1024 * 1024
    cache_url: str = ""
    admin_token: str | None = None
    max_body_bytes: int = 16 * 1024 * 1024
    heartbeat_interval: float = 0.5
    batches_in_flight: int = 2
    max_queue_length: int = 10_000
    stuck_batch_seconds: float = 0.0
    disabled_plugins: str = ""
    container_manager: str = "local"
    admission_slo_fraction: float = 0.9
    slo_budget_fraction: float = 0.5
    recent_predictions: int = 100_000
    policy_states_per_app: int = 10_000
    autoscale_interval: float = 0.5
    rollout_interval: float = 1.0
    access_log: str = ""
    """``json``: the JSON access log (``server.access_log``); empty: none."""
    autoscale_manager: str = ""
    """A container manager (e.g. ``docker``) the management server's autoscaler acts through when this process
    runs no local replica supervisor; empty: no autoscaler there."""
    autoscale_manager_options: str = ""
    """Its constructor arguments as a JSON object (e.g. the cluster name)."""
    manage_replicas: bool = True
    """Run the local replica supervisor in this process (embedded mode)."""
    write_runtime: bool = True
    """Write $CLIPPER_HOME/runtime.json (the process a LocalContainerManager talks to)."""
    reuse_port: bool = False
    """Bind the query port with SO_REUSEPORT, so several frontend processes share it."""
    rpc_advertise: str = ""
    """The RPC address replicas should use for this frontend (default: the bound one), e.g. in containers."""
    rpc_ipc: bool = True
    """Bind an ``ipc://`` endpoint beside the TCP one; the local supervisor's replicas connect through it."""
    advertise_query: str = ""
    """The query address written to runtime.json (default: the bound one)."""

    def __post_init__(self) -> None:
        for port_field in ("query_port", "admin_port", "rpc_port", "grpc_port"):
            port = getattr(self, port_field)
            if port is not None and not 0 <= port <= 65535:
                raise ConfigError(f"{port_field}={port} is not a TCP port; use 0..65535 (0 = any free port)")
        if self.cache_size_bytes < 0:
            raise ConfigError("cache_size_bytes must be >= 0 (0 disables the cache)")
        if self.max_body_bytes < 1024:
            raise ConfigError("max_body_bytes must be at least 1024")
        if self.max_queue_length < 1:
            raise ConfigError("max_queue_length must be at least 1")
        if not 1 <= self.batches_in_flight <= 64:
            raise ConfigError("batches_in_flight must be between 1 and 64")
        if not 0.05 <= self.heartbeat_interval <= 60:
            raise ConfigError("heartbeat_interval must be between 0.05 and 60 seconds")
        for fraction_field in ("admission_slo_fraction", "slo_budget_fraction"):
            if not 0 < getattr(self, fraction_field) <= 1:
                raise ConfigError(f"{fraction_field}={getattr(self, fraction_field)} must be in (0, 1]")
        if self.recent_predictions < 0:
            raise ConfigError("recent_predictions must be >= 0 (0 remembers none)")
        if self.policy_states_per_app < 1:
            raise ConfigError("policy_states_per_app must be at least 1")
        if not 0.05 <= self.autoscale_interval <= 60:
            raise ConfigError("autoscale_interval must be between 0.05 and 60 seconds")
        if self.access_log not in ("", "json"):
            raise ConfigError(f"access_log is {self.access_log!r}; expected json, or empty for none")
        if not 0.05 <= self.rollout_interval <= 60:
            raise ConfigError("rollout_interval must be between 0.05 and 60 seconds")

    @property
    def state_path(self) -> Path:
        return self.home / "state.db"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def runtime_file(self) -> Path:
        """Written by a running server: its pid and the addresses it actually bound."""
        return self.home / "runtime.json"

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Config:
        env = os.environ if environ is None else environ
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for var, (name, _) in ENV.items():
            if var in env and env[var] != "":
                values[name] = _convert(var, env[var], fields[name].type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "home" in values:
            values["home"] = Path(values["home"]).expanduser()
        return cls(**values)


_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False,
             "off": False}


def _convert(var: str, raw: str, type_name: Any) -> Any:
    text = str(type_name)
    if text.startswith("bool"):
        flag = raw.strip().lower()
        if flag not in _BOOLEANS:
            raise ConfigError(f"{var}={raw!r} is not a boolean; use 1/0, true/false, yes/no or on/off")
        return _BOOLEANS[flag]
    try:
        if text.startswith("int"):
            return int(raw)
        if text.startswith("float"):
            return float(raw)
    except ValueError:
        raise ConfigError(f"{var}={raw!r} is not a number") from None
    if text == "Path":
        return Path(raw)
    return raw
