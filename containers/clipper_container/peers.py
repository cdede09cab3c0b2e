"""Which frontends a container should join or leave when WELCOME or PEERS announces the live set (docs/rpc.md,
"Transports").

A frontend is known by its *canonical* address, the TCP address the frontend registry and ``frontends`` list.
A session opened over IPC is the same frontend: its canonical address comes from WELCOME's ``address`` (or, for
a session opened from a ``local`` alias, from the announcement itself). So a container never opens a second
session, over TCP, to a frontend it already reaches over IPC.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PeerPlan", "plan_peers", "usable_ipc"]


@dataclass
class PeerPlan:
    join: list[tuple[str, str]] = field(default_factory=list)
    """(address to dial, canonical address) for each frontend to join."""
    leave: list[str] = field(default_factory=list)
    """Addresses (session keys) of announced-only sessions whose frontend left the set."""


def usable_ipc(address: str) -> bool:
    """An ``ipc://`` address whose socket exists in this container's file system (not so in another host's or
    a Docker container's: those keep TCP)."""
    if not address.startswith("ipc://"):
        return False
    try:
        return stat.S_ISSOCK(os.stat(address[len("ipc://"):]).st_mode)
    except OSError:
        return False


def plan_peers(sessions: Iterable[tuple[str, str, bool]], frontends: Any, local: Any) -> PeerPlan | None:
    """``sessions``: (address, canonical address, bootstrap) of each open session. ``frontends``: the announced
    TCP addresses; ``local``: an optional map of TCP address -> IPC address of the frontends on this host.
    None when ``frontends`` is not a list (nothing to do)."""
    if not isinstance(frontends, list):
        return None
    wanted = {addr for addr in frontends if isinstance(addr, str) and addr.startswith("tcp://")}
    aliases = {k: v for k, v in local.items() if isinstance(k, str) and isinstance(v, str)} \
        if isinstance(local, dict) else {}
    current = list(sessions)
    covered = {addr for addr, _, _ in current} | {canonical for _, canonical, _ in current}
    plan = PeerPlan()
    for addr in sorted(wanted):
        alias = aliases.get(addr)
        if addr in covered or (alias is not None and alias in covered):
            continue
        plan.join.append((alias if alias is not None and usable_ipc(alias) else addr, addr))
    plan.leave = [addr for addr, canonical, bootstrap in current if not bootstrap and canonical not in wanted]
    return plan
