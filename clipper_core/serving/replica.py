"""What the query path needs of a connected model replica: the RPC server's ReplicaConnection provides it, and
tests drive the serving core with a fake one (no processes, no sockets)."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from clipper_core.inputs import InputType

__all__ = ["Replica"]


class Replica(Protocol):
    """One connected replica of one model version.

    ``predict`` sends a batch (``fields`` is the PREDICT header, ``buffers`` the encoded inputs) and returns a
    future of the RESULT header (``out``, ``errs``, ``error``, ``compute_ms``); it fails with
    :class:`clipper_core.rpc.ReplicaLost` when the replica goes away with the batch in flight.
    """

    identity: bytes
    model_name: str
    model_version: str
    input_type: InputType
    replica_id: int
    info: dict[str, Any]
    alive: bool
    pending: dict[int, asyncio.Future[dict[str, Any]]]
    """Batches sent and not answered yet, by message id."""

    def predict(self, fields: dict[str, Any], buffers: list[Any]) -> asyncio.Future[dict[str, Any]]: ...
