"""The shared registry of live query frontends (``clipper:frontends``: RPC address -> expiry).

Expiry times use Redis's clock (TIME), so hosts with skewed clocks agree on who is alive.
"""

from __future__ import annotations

from typing import Any

from clipper_core.state.redis.layout import FRONTENDS, text

__all__ = ["live", "register", "server_time"]


async def server_time(client: Any) -> float:
    """Redis's clock (TIME), in unix seconds."""
    seconds, micros = await client.time()
    return float(seconds) + micros / 1e6


async def register(client: Any, rpc_addr: str, ttl: float) -> None:
    """Announce or refresh ``rpc_addr`` until ``ttl`` seconds from now."""
    expiry = await server_time(client) + ttl
    await client.hset(FRONTENDS, rpc_addr, repr(expiry))


async def live(pipe: Any) -> list[str]:
    """The live frontends, sorted, reading through ``pipe`` (FRONTENDS WATCHed); expired registrations are
    deleted, so only if nobody refreshed them meanwhile."""
    now = await server_time(pipe)
    entries = {text(k): float(v) for k, v in (await pipe.hgetall(FRONTENDS)).items()}
    expired = [addr for addr, expiry in entries.items() if expiry <= now]
    if expired:
        pipe.multi()
        pipe.hdel(FRONTENDS, *expired)
        await pipe.execute()
    else:
        await pipe.reset()
    return sorted(addr for addr, expiry in entries.items() if expiry > now)
