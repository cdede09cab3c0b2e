"""``clipper kubernetes render``: the objects ``start_clipper`` (and ``deploy_model``) would create, as YAML for
GitOps (``clipper kubernetes render --frontends 3 > clipper.yaml && kubectl apply -f clipper.yaml``). They come
from :mod:`clipper_kubernetes.manifests`, the code the manager itself applies, with the same rules: a managed
Redis gets a password, and a management API reachable from outside the cluster (not ClusterIP) a token.

Both are printed in their Secrets, generated afresh on each run unless given (``--redis-password``,
``--admin-token`` / ``$CLIPPER_ADMIN_TOKEN``): re-rendering without them makes new ones, and a running Redis keeps
the password it started with, so give them (or keep the first file's Secrets) to re-apply. Keep the file where
Secrets may be kept. A ``--model`` Deployment runs replicas; the version must still be registered
(``ClipperConnection.register_model`` or the management API) for the frontends to route to it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import yaml
from clipper_docker import names as docker_names

from clipper_kubernetes.manifests import (
    SERVICE_TYPE_KEYS,
    ClusterSpec,
    ModelSpec,
    cluster_objects,
    cluster_secrets,
    model_deployment,
    namespace_object,
)

__all__ = ["add_commands", "render"]


def _service_type(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or key not in SERVICE_TYPE_KEYS:
        raise argparse.ArgumentTypeError(f"expected KEY=TYPE with KEY one of {', '.join(SERVICE_TYPE_KEYS)}")
    return key, value


def _model(text: str) -> ModelSpec:
    parts = text.split(":", 4)
    if len(parts) != 5 or not parts[3].isdigit() or not parts[4]:
        raise argparse.ArgumentTypeError("expected NAME:VERSION:INPUT_TYPE:REPLICAS:IMAGE (the image last: it may "
                                         "hold ':')")
    name, version, input_type, replicas, image = parts
    return ModelSpec(name, version, input_type, image, int(replicas))


def _resources(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError('expected a JSON object: {"model": {"limits": {"cpu": "1"}}, ...}')
    return value


def add_commands(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    kube = subparsers.add_parser("kubernetes", parents=parents, help="clipper on Kubernetes (clipper-kubernetes)")
    sub = kube.add_subparsers(dest="kubernetes_command", required=True)
    p = sub.add_parser("render", help="print the cluster's Kubernetes objects as YAML (for kubectl apply)")
    p.add_argument("--cluster-name", default="default-cluster")
    p.add_argument("--namespace", default="default")
    p.add_argument("--create-namespace", action="store_true", help="also the Namespace, first")
    p.add_argument("--frontends", type=int, default=1, help="query frontend replicas (default 1)")
    p.add_argument("--redis-ip", default=None, help="an existing Redis instead of the managed one")
    p.add_argument("--redis-port", type=int, default=6379)
    p.add_argument("--redis-password", default=None, help="default: generated (managed Redis)")
    p.add_argument("--redis-storage", default="1Gi", help="the managed Redis's volume claim (default 1Gi)")
    p.add_argument("--storage-class", default=None)
    p.add_argument("--admin-token", default=os.environ.get("CLIPPER_ADMIN_TOKEN"),
                   help="bearer token of the management API (default $CLIPPER_ADMIN_TOKEN; generated when the "
                        "management Service is not ClusterIP)")
    p.add_argument("--service-type", type=_service_type, action="append", default=[], metavar="KEY=TYPE",
                   help=f"a Service type ({', '.join(SERVICE_TYPE_KEYS)}); repeatable")
    p.add_argument("--frontend-image", default=docker_names.DEFAULT_FRONTEND_IMAGE)
    p.add_argument("--redis-image", default=docker_names.DEFAULT_REDIS_IMAGE)
    p.add_argument("--resources", type=_resources, default=None, metavar="JSON",
                   help='requests/limits per role: {"query"|"model"|"management"|"redis": {"limits": {...}}}')
    p.add_argument("--cache-size", type=int, default=None)
    p.add_argument("--drain-timeout", type=int, default=10, help="seconds a stopping replica may finish (10)")
    p.add_argument("--deploy-timeout", type=float, default=300.0,
                   help="seconds the autoscaler waits for new replicas to be ready (300)")
    p.add_argument("--no-autoscaler", action="store_true",
                   help="no autoscaler in the management pod: no ServiceAccount, Role or RoleBinding, no token")
    p.add_argument("--image-pull-policy", default="IfNotPresent", choices=["Always", "IfNotPresent", "Never"])
    p.add_argument("--model", type=_model, action="append", default=[],
                   metavar="NAME:VERSION:INPUT_TYPE:REPLICAS:IMAGE",
                   help="also a model version's Deployment; repeatable")
    p.set_defaults(func=_run_render)


def render(spec: ClusterSpec, *, redis_password: str | None, admin_token: str | None,
           models: list[ModelSpec] | None = None, create_namespace: bool = False) -> str:
    """The YAML of the cluster's objects and of ``models``' Deployments, in the order they are applied."""
    objects = [namespace_object(spec.namespace)] if create_namespace else []
    objects += cluster_objects(spec, redis_password=redis_password, admin_token=admin_token)
    objects += [model_deployment(spec, model) for model in models or []]
    header = (f"# clipper cluster {spec.cluster!r} in namespace {spec.namespace!r}: {len(objects)} objects, "
              "rendered by `clipper kubernetes render`.\n"
              "# The Secrets hold a password / token in clear (base64): keep this file where Secrets may be kept.\n")
    return header + yaml.safe_dump_all(objects, sort_keys=False, explicit_start=True)


def _run_render(args: argparse.Namespace) -> int:
    spec = ClusterSpec(cluster=args.cluster_name, namespace=args.namespace, num_frontends=args.frontends,
                       frontend_image=args.frontend_image, management_image=args.frontend_image,
                       redis_image=args.redis_image, redis_ip=args.redis_ip, redis_port=args.redis_port,
                       redis_storage=args.redis_storage, storage_class=args.storage_class,
                       service_types=dict(args.service_type), resources=args.resources or {},
                       cache_size=args.cache_size, image_pull_policy=args.image_pull_policy,
                       has_redis_password=args.redis_ip is None or bool(args.redis_password),
                       drain_seconds=args.drain_timeout, deploy_seconds=args.deploy_timeout,
                       autoscaler=not args.no_autoscaler)
    password, token, made = cluster_secrets(spec, args.redis_password, args.admin_token)
    spec = spec.replace(has_admin_token=bool(token))
    if made:
        print(f"clipper kubernetes render: generated {' and '.join(made)} (in the Secrets); pass them "
              "(--redis-password, --admin-token) to render the same objects again", file=sys.stderr)
    sys.stdout.write(render(spec, redis_password=password, admin_token=token, models=args.model,
                            create_namespace=args.create_namespace))
    return 0
