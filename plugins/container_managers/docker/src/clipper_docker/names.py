"""Labels, container names, image names and internal ports: everything two clipper-docker processes (the
manager in the user's process, the supervisor in the cluster) must agree on.

Label keys are Clipper's (clipper-reference §3.2), so tooling written for Clipper's Docker mode still finds
the containers; ``ai.clipper.role`` and the ``ai.clipper.model.*`` labels are ours.
"""

from __future__ import annotations

import re

from clipper_core.errors import ClipperException

__all__ = [
    "CLUSTER_LABEL", "DEFAULT_FRONTEND_IMAGE", "DEFAULT_MODEL_BASE_IMAGE", "DEFAULT_REDIS_IMAGE", "FATAL_EXITS",
    "FRAMEWORK_DEPLOYERS", "IMAGE_VERSION",
    "MANAGEMENT_LABEL", "MODEL_CONTAINER_LABEL", "MODEL_NAME_LABEL", "MODEL_VERSION_LABEL", "QUERY_FRONTEND_LABEL",
    "READY_FILE", "READY_FILE_LABEL", "ROLE_LABEL", "Role", "check_cluster_name", "container_name", "framework_image",
    "model_image_name",
    "replica_name",
]

IMAGE_VERSION = "0.1.0"
"""The tag of the images ``containers/docker/build.sh`` builds (clipper's version, in lockstep)."""
DEFAULT_FRONTEND_IMAGE = f"clipper/frontend:{IMAGE_VERSION}"
DEFAULT_MODEL_BASE_IMAGE = f"clipper/model-base:{IMAGE_VERSION}"
DEFAULT_REDIS_IMAGE = f"clipper/redis:{IMAGE_VERSION}"
FRAMEWORK_DEPLOYERS = ("sklearn", "pytorch", "tensorflow", "keras", "xgboost")
"""Deployers with a framework base image (``build.sh sklearn pytorch ...``); keras models use the tensorflow one."""


def framework_image(deployer: str) -> str:
    """The model base image with ``deployer``'s framework, e.g. ``clipper/model-sklearn:0.1.0``."""
    return f"clipper/model-{'tensorflow' if deployer == 'keras' else deployer}:{IMAGE_VERSION}"


# Ports inside the containers (the host ports they are published on may differ).
QUERY_PORT, MANAGEMENT_PORT, RPC_PORT, REDIS_PORT = 1337, 1338, 7000, 6379

CLUSTER_LABEL = "ai.clipper.container.label"
MODEL_CONTAINER_LABEL = "ai.clipper.model_container.label"  # "<name>_<version>", as in Clipper
QUERY_FRONTEND_LABEL = "ai.clipper.query_frontend.label"
MANAGEMENT_LABEL = "ai.clipper.management_frontend.label"
ROLE_LABEL = "ai.clipper.role"
MODEL_NAME_LABEL = "ai.clipper.model.name"
MODEL_VERSION_LABEL = "ai.clipper.model.version"
READY_FILE_LABEL = "ai.clipper.ready_file"
"""Image label: the file a replica writes once a frontend has welcomed it (how the manager checks readiness)."""
READY_FILE = "/tmp/clipper_ready.json"
FATAL_EXITS = {2: "bad arguments", 3: "rejected by the frontend", 4: "the model could not be loaded"}
"""Exit statuses of a replica (``python -m clipper_container``) that restarting cannot help."""
VOLUME_LABEL = "ai.clipper.volume"
NETWORK_LABEL = "ai.clipper.network"


class Role:
    REDIS = "redis"
    MANAGEMENT = "management"
    QUERY = "query"
    SUPERVISOR = "supervisor"
    MODEL = "model"


_CLUSTER = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")


def check_cluster_name(name: str) -> str:
    """Cluster names become part of container, volume and image names: lower-case letters, digits and '-'."""
    if not _CLUSTER.match(name):
        raise ClipperException(f"invalid cluster name {name!r}: use 1 to 40 lower-case letters, digits and '-', "
                               "starting and ending with a letter or digit")
    return name


def container_name(cluster: str, role: str, index: int | None = None) -> str:
    """``<cluster>-redis``, ``<cluster>-mgmt-frontend``, ``<cluster>-query-frontend-<i>``,
    ``<cluster>-supervisor``: fixed names, so a second start of the same cluster cannot slip in beside it."""
    base = {Role.REDIS: "redis", Role.MANAGEMENT: "mgmt-frontend", Role.QUERY: "query-frontend",
            Role.SUPERVISOR: "supervisor"}[role]
    return f"{cluster}-{base}" if index is None else f"{cluster}-{base}-{index}"


def replica_name(cluster: str, model: str, version: str, suffix: str) -> str:
    return f"{cluster}-{model}-{version}-{suffix}"


def model_image_name(cluster: str, model: str, version: str, registry: str | None = None) -> str:
    """Clipper's ``<cluster>-<name>:<version>`` (prefixed by ``registry/`` when given). Docker wants a lowercase
    repository and a tag that starts with a letter, digit or '_': ``Sum-Model`` becomes ``sum-model`` and a
    version such as ``.5`` the tag ``_.5``."""
    tag = version if version[:1] not in (".", "-") else f"_{version}"
    name = f"{cluster}-{model.lower()}:{tag}"
    return f"{registry.rstrip('/')}/{name}" if registry else name
