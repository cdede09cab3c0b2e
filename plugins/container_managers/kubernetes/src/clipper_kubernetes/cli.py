"""``clipper kubernetes render``: the objects ``start_clipper`` (and ``deploy_model``) would create, as YAML for
GitOps (``clipper kubernetes render --frontends 3 > clipper.yaml && kubectl apply -f clipper.yaml``). They come
from :mod:`clipper_kubernetes.manifests`, the code the manager itself applies.

The managed Redis's password is generated afresh (``--redis-password`` to give one) and printed in its Secret, as
is the admin token of ``--admin-token`` / ``$CLIPPER_ADMIN_TOKEN``: keep the file where Secrets may be kept, or
drop those Secrets from it and create them with ``kubectl create secret generic``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from typing import Any

import yaml
from clipper_docker import names as docker_names

from clipper_kubernetes.manifests import SERVICE_TYPE_KEYS, ClusterSpec, ModelSpec, cluster_objects, model_deployment

__all__ = ["add_commands", "render"]


def _service_type(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or key not in SERVICE_TYPE_KEYS:
        raise argparse.ArgumentTypeError(f"expected KEY=TYPE with KEY one of {', '.join(SERVICE_TYPE_KEYS)}")
    return key, value


def _model(text: str) -> ModelSpec:
    parts = text.split(":")
    if len(parts) < 4:
        raise argparse.ArgumentTypeError("expected NAME:VERSION:INPUT_TYPE:IMAGE[:REPLICAS] (the image may hold ':')")
    name, version, input_type, *rest = parts
    replicas = 1
    if len(rest) > 1 and rest[-1].isdigit():
        replicas = int(rest.pop())
    return ModelSpec(name, version, input_type, ":".join(rest), replicas)


def add_commands(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    kube = subparsers.add_parser("kubernetes", parents=parents, help="clipper on Kubernetes (clipper-kubernetes)")
    sub = kube.add_subparsers(dest="kubernetes_command", required=True)
    render_p = sub.add_parser("render", help="print the cluster's Kubernetes objects as YAML (for kubectl apply)")
    render_p.add_argument("--cluster-name", default="default-cluster")
    render_p.add_argument("--namespace", default="default")
    render_p.add_argument("--frontends", type=int, default=1, help="query frontend replicas (default 1)")
    render_p.add_argument("--redis-ip", default=None, help="an existing Redis instead of the managed one")
    render_p.add_argument("--redis-port", type=int, default=6379)
    render_p.add_argument("--redis-password", default=None, help="default: generated (managed Redis)")
    render_p.add_argument("--redis-storage", default="1Gi", help="the managed Redis's volume claim (default 1Gi)")
    render_p.add_argument("--storage-class", default=None)
    render_p.add_argument("--admin-token", default=os.environ.get("CLIPPER_ADMIN_TOKEN"),
                          help="bearer token of the management API (default $CLIPPER_ADMIN_TOKEN)")
    render_p.add_argument("--service-type", type=_service_type, action="append", default=[], metavar="KEY=TYPE",
                          help=f"a Service type ({', '.join(SERVICE_TYPE_KEYS)}); repeatable")
    render_p.add_argument("--frontend-image", default=docker_names.DEFAULT_FRONTEND_IMAGE)
    render_p.add_argument("--redis-image", default=docker_names.DEFAULT_REDIS_IMAGE)
    render_p.add_argument("--cache-size", type=int, default=None)
    render_p.add_argument("--image-pull-policy", default="IfNotPresent", choices=["Always", "IfNotPresent", "Never"])
    render_p.add_argument("--model", type=_model, action="append", default=[],
                          metavar="NAME:VERSION:INPUT_TYPE:IMAGE[:REPLICAS]",
                          help="also a model version's Deployment; repeatable")
    render_p.set_defaults(func=_run_render)


def render(spec: ClusterSpec, *, redis_password: str | None, admin_token: str | None,
           models: list[ModelSpec] | None = None) -> str:
    """The YAML of the cluster's objects and of ``models``' Deployments, in the order they are applied."""
    objects = cluster_objects(spec, redis_password=redis_password, admin_token=admin_token)
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
                       service_types=dict(args.service_type), cache_size=args.cache_size,
                       image_pull_policy=args.image_pull_policy,
                       has_redis_password=args.redis_ip is None or bool(args.redis_password),
                       has_admin_token=bool(args.admin_token))
    password = args.redis_password or (secrets.token_hex(16) if args.redis_ip is None else None)
    sys.stdout.write(render(spec, redis_password=password, admin_token=args.admin_token, models=args.model))
    return 0
