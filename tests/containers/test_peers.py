"""Joining announced frontends (clipper_container.peers): a frontend already reached over IPC is never joined a
second time over TCP; ``local`` aliases are dialled only where their socket exists."""

from __future__ import annotations

import socket
from pathlib import Path

from clipper_container.peers import plan_peers, usable_ipc

A, B = "tcp://127.0.0.1:7001", "tcp://127.0.0.1:7002"


def test_a_frontend_reached_over_ipc_is_not_joined_over_tcp() -> None:
    sessions = [("ipc:///x/a.sock", A, True)]  # welcomed: WELCOME's address made A its canonical address
    plan = plan_peers(sessions, [A, B], {})
    assert plan is not None and plan.join == [(B, B)] and plan.leave == []


def test_an_unwelcomed_ipc_session_is_recognised_by_its_alias() -> None:
    sessions = [("ipc:///x/a.sock", "ipc:///x/a.sock", True)]
    plan = plan_peers(sessions, [A], {A: "ipc:///x/a.sock"})
    assert plan is not None and plan.join == []


def test_a_local_alias_is_dialled_only_when_its_socket_exists(tmp_path: Path) -> None:
    path = tmp_path / "b.sock"
    plan = plan_peers([], [B], {B: f"ipc://{path}"})
    assert plan is not None and plan.join == [(B, B)]  # no such socket here (another host, a Docker container)
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        assert usable_ipc(f"ipc://{path}")
        plan = plan_peers([], [B], {B: f"ipc://{path}"})
        assert plan is not None and plan.join == [(f"ipc://{path}", B)]


def test_announced_sessions_leave_by_canonical_address() -> None:
    sessions = [("ipc:///x/b.sock", B, False), (A, A, True)]
    plan = plan_peers(sessions, [B], None)
    assert plan is not None and plan.leave == [] and plan.join == []
    plan = plan_peers(sessions, [], None)
    assert plan is not None and plan.leave == ["ipc:///x/b.sock"]  # the bootstrap session A is kept


def test_old_frontends_announce_without_local_and_non_lists_are_ignored() -> None:
    assert plan_peers([], "nonsense", None) is None
    plan = plan_peers([], [A, "ipc:///not-tcp", 3], "not a map")
    assert plan is not None and plan.join == [(A, A)]
