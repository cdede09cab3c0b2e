"""The registry of live query frontends in a shared state store: each frontend refreshes its RPC address (TTL
5 s); replicas learn every frontend from the RPC server's PEERS message and the local supervisor from its
``rpc_addr``, so a replica serves every frontend of the cluster. Frontends on this host are given by their IPC
address where they have one (found through :func:`clipper_core.rpc.ipc.local_address`)."""

from __future__ import annotations

import logging

from clipper_core.context import ServerContext
from clipper_core.rpc import RpcServer
from clipper_core.rpc.ipc import local_address
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
    if ctx.query_path is not None:  # rate limits start with an equal share of each (``serving.tenancy``)
        ctx.query_path.snapshot.quotas.frontends = max(1, len(frontends))
    local = _local_addresses(ctx, rpc, frontends)
    if rpc is not None:
        rpc.announce_peers(frontends, local)
    supervisor = ctx.supervisor
    if isinstance(supervisor, LocalReplicaSupervisor) and frontends:
        if rpc is not None:  # this process's frontend first, so it is the replica's first session
            frontends = [ctx.rpc_addr, *(addr for addr in frontends if addr != ctx.rpc_addr)]
        supervisor.rpc_addr = ",".join(local.get(addr, addr) for addr in frontends)


def _local_addresses(ctx: ServerContext, rpc: RpcServer | None, frontends: list[str]) -> dict[str, str]:
    """The IPC addresses of the live frontends on this host (by RPC address): this process's own, and the
    others' from the pointer files in ``$CLIPPER_HOME/run/ipc/`` (none when IPC is off)."""
    if not ctx.config.rpc_ipc:
        return {}
    own = {ctx.rpc_addr: rpc.ipc.address} if rpc is not None and rpc.ipc is not None else {}
    found = {addr: local_address(ctx.config.home, addr) for addr in frontends if addr not in own}
    return {**own, **{addr: ipc for addr, ipc in found.items() if ipc is not None}}
