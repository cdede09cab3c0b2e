"""What the dashboard's JSON endpoints answer, read from the server's own objects.

:func:`overview` reads the records (apps, models, replicas, rollouts) the admin API reads, plus the local
supervisor's slots and the autoscaler's last decisions. :func:`live` reads the query path's plain counters and
histogram buckets as they are now (cumulative): the page turns two readings into rates and quantiles over the
interval between them, so the server keeps nothing per dashboard and the query path is neither called nor locked
(the same reads a ``/metrics`` scrape makes). A management server without a query frontend of its own answers the
figures the frontends publish in their load reports instead.
"""

from __future__ import annotations

import os
import time
from typing import Any

from clipper_core.context import ServerContext
from clipper_core.management.operations import ManagementOperations
from clipper_core.management.render import app_json, model_json
from clipper_core.management.rollouts import RolloutOperations
from clipper_core.metrics import FastHistogram
from clipper_core.server.local_replicas import LocalReplicaSupervisor
from clipper_core.serving.query_path import QueryPath

__all__ = ["live", "overview"]


def _histogram(h: FastHistogram) -> dict[str, Any]:
    """Bucket bounds and (non-cumulative) counts, the last beyond the last bound, and the count and sum."""
    return {"bounds": list(h.bounds), "counts": list(h.counts), "count": h.count, "sum": h.sum}


async def overview(ctx: ServerContext) -> dict[str, Any]:
    """Apps, model versions, replicas (connected and supervised), frontends, rollouts, plugins, this server."""
    ops = ManagementOperations.of(ctx)
    apps = [app_json(info) for info in await ops.app_infos()]
    connected: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for replica in await ops.replicas():
        connected.setdefault((replica.model_name, replica.model_version), []).append(
            {"replica_id": replica.replica_id, "pid": replica.info.get("pid"), "frontend": replica.frontend})
    slots = ctx.supervisor.slots() if isinstance(ctx.supervisor, LocalReplicaSupervisor) else []
    autoscaler = ctx.autoscaler
    models = []
    for info in await ops.model_infos():
        record = model_json(info)
        key = (info.model.name, info.model.version)
        record["replicas"] = _replicas(connected.get(key, []), [s for s in slots if (s["model"], s["version"]) == key])
        record["autoscaler"] = autoscaler.status(*key) if autoscaler is not None else None
        models.append(record)
    return {
        "server": {"pid": os.getpid(), "query_addr": ctx.extra.get("query_addr"),
                   "admin_addr": ctx.extra.get("admin_addr"), "rpc_addr": ctx.rpc_addr,
                   "embedded": ctx.query_path is not None, "supervisor": ctx.supervisor is not None,
                   "token_required": bool(ctx.config.admin_token)},
        "apps": apps,
        "models": models,
        "frontends": await ctx.store.list_frontends(),
        "rollouts": await RolloutOperations.of(ctx).list(),
        "plugins": [{"name": p.name, "distribution": p.distribution, "version": p.version, "hooks": list(p.hooks)}
                    for p in ctx.registry.plugins()],
        "at": time.time(),
    }


def _replicas(connected: list[dict[str, Any]], slots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per supervised slot (joined by pid with its connection, if any) and per connection no slot of
    this server owns (a replica another manager started)."""
    by_pid = {c["pid"]: c for c in connected if c["pid"] is not None}
    rows: list[dict[str, Any]] = []
    for slot in slots:
        connection = by_pid.pop(slot["pid"], None) if slot["pid"] is not None else None
        state = slot["state"]
        if state == "running":
            state = "connected" if connection is not None else "starting"
        rows.append({**slot, "state": state, "replica_id": connection["replica_id"] if connection else None,
                     "frontend": connection["frontend"] if connection else None})
    for c in connected:
        if c["pid"] is None or by_pid.get(c["pid"]) is c:  # not popped: no slot here runs it
            rows.append({"slot": None, "pid": c["pid"], "state": "connected", "restarts": None, "uptime_s": None,
                         "log": None, "replica_id": c["replica_id"], "frontend": c["frontend"]})
    return rows


async def live(ctx: ServerContext) -> dict[str, Any]:
    """The live figures now: ``in-process`` (this process's query path, cumulative) or ``load-reports`` (the
    query frontends' last published figures, already rates, per model version only)."""
    path = ctx.query_path
    at = time.monotonic()
    if path is not None:
        return {"source": "in-process", "t": at, **_in_process(path)}
    reports = await ctx.store.list_load()
    return {"source": "load-reports", "t": at, "apps": {}, "models": _from_reports(reports)}


def _in_process(path: QueryPath) -> dict[str, Any]:
    snapshot = path.snapshot
    apps: dict[str, Any] = {}
    for name, rt in snapshot.apps.items():
        hits = misses = 0
        for model in rt.linked:
            mr = path.models.get((model, snapshot.current.get(model, "")))
            if mr is not None:
                hits += mr.cache_hits
                misses += mr.cache_misses
        apps[name] = {"predictions": rt.predictions, "defaults": rt.defaults, "latency": _histogram(rt.latency),
                      "slo_s": rt.slo, "cache_hits": hits, "cache_misses": misses}
    models: dict[str, Any] = {}
    for (name, version), mr in path.models.items():
        models[f"{name}:{version}"] = {
            "model": name, "version": version, "predictions": mr.predictions, "errors": mr.errors,
            "queue_length": len(mr.queue), "inflight": mr.inflight_items, "replicas": mr.num_replicas,
            "cache_hits": mr.cache_hits, "cache_misses": mr.cache_misses,
            "batch_size": _histogram(mr.batch_sizes), "queue_time": _histogram(mr.queue_time),
            "compute": _histogram(mr.compute_latency), "rpc": _histogram(mr.rpc_latency)}
    return {"apps": apps, "models": models}


def _from_reports(reports: dict[str, dict[str, dict[str, float]]]) -> dict[str, Any]:
    """The frontends' reports summed per version (rates and counts), the worst p99 of them."""
    models: dict[str, Any] = {}
    for figures in reports.values():
        for key, version in figures.items():
            if key.startswith("@"):  # not a model version: the rate limits' demand (``@tenancy``)
                continue
            name, _, number = key.rpartition(":")
            row = models.setdefault(key, {"model": name, "version": number, "queue_length": 0.0, "inflight": 0.0,
                                          "replicas": 0.0, "answered_per_s": 0.0, "arrivals_per_s": 0.0,
                                          "p99_s": None})
            row["queue_length"] += version.get("queued", 0.0)
            row["inflight"] += version.get("inflight", 0.0)
            row["replicas"] += version.get("ready_replicas", 0.0)
            row["answered_per_s"] += version.get("answered", 0.0)
            row["arrivals_per_s"] += version.get("arrivals", 0.0)
            p99 = version.get("p99_latency_s")
            if p99 is not None:
                row["p99_s"] = max(p99, row["p99_s"] or 0.0)
    return models
