"""clipper's model-container runtime: ``python -m clipper_container --model-dir DIR --frontend tcp://HOST:PORT``.

Loads a model directory (see :mod:`clipper_container.manifest`), connects a ZeroMQ DEALER to a clipper
frontend and serves its batches (the protocol is in docs/rpc.md and :mod:`clipper_container.protocol`).
Depends only on pyzmq, numpy, cloudpickle and msgpack.
"""

from __future__ import annotations

from clipper_container.loading import Predictor, load_model
from clipper_container.manifest import (
    MANIFEST_NAME,
    IncompatibleModel,
    ManifestError,
    check_compatible,
    read_manifest,
    write_manifest,
)
from clipper_container.protocol import PROTOCOL_VERSION, MsgType, ProtocolError
from clipper_container.runtime import ContainerRuntime

__version__ = "0.1.0"

__all__ = [
    "MANIFEST_NAME",
    "PROTOCOL_VERSION",
    "ContainerRuntime",
    "IncompatibleModel",
    "ManifestError",
    "MsgType",
    "Predictor",
    "ProtocolError",
    "__version__",
    "check_compatible",
    "load_model",
    "read_manifest",
    "write_manifest",
]
