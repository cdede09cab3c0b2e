"""The query frontends' load reports in Redis (``clipper:load``: frontend -> JSON ``{"expiry", "figures"}``).

As in the frontend registry (:mod:`clipper_core.state.redis.frontends`), expiry times use Redis's clock (TIME),
so hosts with skewed clocks agree on which reports are current.
"""

from __future__ import annotations

from typing import Any

from clipper_core.state import codec
from clipper_core.state.records import LoadFigures
from clipper_core.state.redis.frontends import server_time
from clipper_core.state.redis.layout import LOAD, text

__all__ = ["live", "put"]


async def put(client: Any, frontend: str, figures: LoadFigures, ttl: float) -> None:
    """Replace ``frontend``'s report with ``figures`` until ``ttl`` seconds from now."""
    report = codec.dumps(figures)  # fail on an unstorable value before any I/O
    expiry = await server_time(client) + ttl
    await client.hset(LOAD, frontend, f'{{"expiry":{expiry!r},"figures":{report}}}')


async def live(pipe: Any) -> dict[str, LoadFigures]:
    """The reports that have not expired, by frontend (sorted), reading through ``pipe`` (LOAD WATCHed); expired
    reports are deleted, so only if nobody replaced them meanwhile."""
    now = await server_time(pipe)
    entries = {text(k): codec.loads(v) for k, v in (await pipe.hgetall(LOAD)).items()}
    expired = [frontend for frontend, entry in entries.items() if float(entry["expiry"]) <= now]
    if expired:
        pipe.multi()
        pipe.hdel(LOAD, *expired)
        await pipe.execute()
    else:
        await pipe.reset()
    return {frontend: entries[frontend]["figures"] for frontend in sorted(entries) if frontend not in expired}
