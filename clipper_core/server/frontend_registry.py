"""The registry of live query frontends in a shared state store: each frontend refreshes its RPC address (TTL
5 s); replicas learn every frontend from the RPC server's PEERS message and the local supervisor from its
``rpc_addr``, so a replica serves every frontend of the cluster."""

from __future__ import annotations

import logging

from clipper_core.context import ServerContext
from clipper_core.rpc import RpcServer
from clipper_core.server.local_replicas import LocalReplicaSupervisor

__all__ = ["FRONTEND_TTL", "REFRESH_INTERVAL", "sync_frontends"]

log = logging.getLogger(__name__)

FRONTEND_TTL = 5.0
"""Seconds a frontend's registration lives without a refresh."""
REFRESH_INTERVAL = 1.0


async def sync_frontends(ctx: ServerContext, rpc: RpcServer | None) -> None:
    """Refresh this frontend's entry in the store's registry; pass the live set to replicas and supervisor."""
    store = ctx.store
    try:
        if rpc is not None:
            await store.register_frontend(ctx.rpc_addr, ttl=FRONTEND_TTL)
        frontends = await store.list_frontends()
    except Exception as exc:  # a store outage: keep what we know, try again on the next tick
        log.warning("cannot refresh the frontend registry: %s", exc)
        return
    if rpc is not None:
        rpc.announce_peers(frontends)
    supervisor = ctx.supervisor
    if isinstance(supervisor, LocalReplicaSupervisor) and frontends:
        supervisor.rpc_addr = ",".join(frontends) if rpc is None else ctx.rpc_addr + "".join(
            f",{addr}" for addr in frontends if addr != ctx.rpc_addr)
