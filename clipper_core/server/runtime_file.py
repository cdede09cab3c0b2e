"""``$CLIPPER_HOME/runtime.json``: written by a running server (its pid and the addresses it bound), read by the
local container manager to find it and by the next server to reuse the RPC port replicas still dial."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from clipper_core.config import Config

__all__ = ["previous_rpc_port", "remove_if_ours", "runtime_pid", "write_runtime"]


def write_runtime(config: Config, data: dict[str, Any]) -> None:
    """Replace the file atomically, owner-only."""
    tmp = config.runtime_file.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, config.runtime_file)


def runtime_pid(config: Config) -> int | None:
    try:
        return int(json.loads(config.runtime_file.read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def previous_rpc_port(config: Config) -> int:
    """The RPC port the previous server of this home bound (replicas that outlived it reconnect there), or 0."""
    try:
        return int(json.loads(config.runtime_file.read_text())["rpc_addr"].rsplit(":", 1)[1])
    except (OSError, ValueError, KeyError, IndexError):
        return 0


def remove_if_ours(config: Config) -> None:
    """Remove the file if this process wrote it (another server may have started since)."""
    with contextlib.suppress(FileNotFoundError):
        if runtime_pid(config) == os.getpid():
            config.runtime_file.unlink()
