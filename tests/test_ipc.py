"""Local replicas over IPC (docs/rpc.md, "Transports"): a replica the local supervisor starts connects to the
frontend's ``ipc://`` endpoint, the socket is owner-only and removed at stop, TCP is used with IPC off, and a
killed-and-restarted server is rejoined over IPC."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
from pathlib import Path
from typing import Any

import pytest
import zmq
from clipper_container.protocol import PROTOCOL_VERSION, MsgType, pack, unpack

from clipper_core import ClipperConnection, LocalContainerManager
from clipper_core.config import Config, ConfigError
from clipper_core.deployers import python as python_deployer
from clipper_core.rpc.ipc import MAX_SOCKET_PATH, ipc_dir, local_address, prepare
from clipper_core.testing import ServerThread, wait_until
from tests import models
from tests.conftest import Deploy


def vias(server: ServerThread) -> list[str]:
    return server.call(lambda: sorted(r.via for r in server.server.rpc.replicas.values()))


def welcomes(home: Path) -> list[str]:
    """The frontend address of every WELCOME the replicas of ``home`` logged."""
    return [match for log_file in sorted((home / "logs").glob("adder_*.log"))
            for match in re.findall(r"WELCOME from (\S+): replica", log_file.read_text())]


def test_a_local_replica_connects_over_ipc_to_an_owner_only_socket(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with ServerThread(home) as server:
        ipc = server.server.rpc.ipc
        assert ipc is not None and ipc.address.startswith("ipc://")
        deploy = Deploy(server, tmp_path)
        deploy.app("sums")
        deploy("adder", 1, models.feature_sum, app="sums")
        assert vias(server) == [ipc.address]  # the container's HELLO says which address it dialled
        assert server.predict("sums", {"input": [1.0, 2.0]})[1]["output"] == 3.0
        socket_path = Path(ipc.address[len("ipc://"):])
        assert stat.S_ISSOCK(socket_path.stat().st_mode)
        assert stat.S_IMODE(socket_path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(socket_path.stat().st_mode) & 0o077 == 0
        assert stat.S_IMODE(ipc_dir(home).stat().st_mode) == 0o700
        assert stat.S_IMODE(ipc_dir(home).parent.stat().st_mode) == 0o700
        assert local_address(home, server.server.ctx.rpc_addr) == ipc.address
    assert not socket_path.exists()
    assert local_address(home, server.server.ctx.rpc_addr) is None
    assert list(ipc_dir(home).iterdir()) == []


def test_with_ipc_off_replicas_use_tcp(tmp_path: Path) -> None:
    with ServerThread(tmp_path / "home", rpc_ipc=False) as server:
        assert server.server.rpc.ipc is None
        Deploy(server, tmp_path)("adder", 1, models.feature_sum)
        assert vias(server) == [server.server.ctx.rpc_addr]
        assert vias(server)[0].startswith("tcp://")


def test_a_socket_path_too_long_falls_back_to_a_short_private_directory(tmp_path: Path) -> None:
    home = tmp_path / ("h" * 120)
    endpoint = prepare(home, "tcp://127.0.0.1:7000")
    path = endpoint.socket_path
    assert len(str(path).encode()) <= MAX_SOCKET_PATH and not str(path).startswith(str(home))
    assert path.parent.stat().st_uid == os.getuid() and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    endpoint.remove()


def test_a_killed_server_is_rejoined_over_ipc(tmp_path: Path) -> None:
    home = tmp_path / "home"
    manager = LocalContainerManager(clipper_home=home, clipper_query_port=0, clipper_management_port=0,
                                    clipper_rpc_port=0)
    conn = ClipperConnection(manager)
    conn.start_clipper()
    try:
        conn.register_application("sums", "doubles", "-1.0", 2_000_000)
        python_deployer.deploy_python_closure(conn, name="adder", version=1, input_type="doubles",
                                              func=models.feature_sum)
        conn.link_model_to_app("sums", "adder")
        wait_until(lambda: len(welcomes(home)) == 1, 30, what="the replica's first WELCOME")
        assert welcomes(home)[0].startswith("ipc://")
        server_pid = json.loads((home / "runtime.json").read_text())["pid"]
        os.kill(server_pid, signal.SIGKILL)
        wait_until(lambda: not Path(f"/proc/{server_pid}").exists() or
                   Path(f"/proc/{server_pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z",
                   10, what="the server to die")
        conn = ClipperConnection(LocalContainerManager(clipper_home=home, clipper_query_port=0,
                                                       clipper_management_port=0, clipper_rpc_port=0))
        conn.start_clipper()
        wait_until(lambda: len(welcomes(home)) == 2, 30, what="the replica to rejoin the restarted server")
        assert welcomes(home)[0] == welcomes(home)[1]  # the same IPC endpoint, not TCP
        wait_until(lambda: len(conn.get_all_model_replicas()) == 1, 15, what="the replica in the store")
    finally:
        conn.stop_all()


def test_with_two_frontends_a_replica_holds_one_ipc_session_with_each(cluster: tuple[Any, Path]) -> None:
    conn, home = cluster
    conn.register_application("multi", "doubles", "-1.0", 2_000_000)
    wait_until(lambda: len(list(ipc_dir(home).glob("*.json"))) == 2, 20, what="both frontends' IPC endpoints")
    python_deployer.deploy_python_closure(conn, name="adder", version=1, input_type="doubles",
                                          func=models.feature_sum)
    conn.link_model_to_app("multi", "adder")
    wait_until(lambda: len(conn.get_all_model_replicas()) == 2, 20, what="the replica on both frontends")
    wait_until(lambda: len(welcomes(home)) == 2, 20, what="a WELCOME from each frontend")
    sessions = welcomes(home)
    assert len(set(sessions)) == 2 and all(addr.startswith("ipc://") for addr in sessions), sessions
    log_text = "".join(p.read_text() for p in (home / "logs").glob("adder_*.log"))
    joined = [line for line in log_text.splitlines() if "joining frontend" in line]
    assert all(" over ipc://" in line for line in joined), joined  # a frontend PEERS named: over IPC too
    assert len(conn.get_all_model_replicas()) == 2


def test_clipper_rpc_ipc_turns_it_off() -> None:
    assert Config.from_env({}).rpc_ipc is True
    assert Config.from_env({"CLIPPER_RPC_IPC": "0"}).rpc_ipc is False
    assert Config.from_env({"CLIPPER_RPC_IPC": "on"}).rpc_ipc is True
    with pytest.raises(ConfigError, match="CLIPPER_RPC_IPC='maybe' is not a boolean"):
        Config.from_env({"CLIPPER_RPC_IPC": "maybe"})


def _hello(address: str, extra: dict[str, object]) -> dict[str, object]:
    """Say HELLO to ``address`` from a bare DEALER and return the frontend's answer."""
    ctx = zmq.Context()
    try:
        dealer = ctx.socket(zmq.DEALER)
        dealer.connect(address)
        dealer.send(pack({"t": int(MsgType.HELLO), "v": PROTOCOL_VERSION, "model": "bare", "version": "1",
                          "input_type": "doubles", "pid": os.getpid(), "instance": "x", "runtime": "test",
                          "max_batch_size": -1, **extra}))
        assert dealer.poll(10_000), f"no answer from {address}"
        answer = unpack(dealer.recv())
        dealer.close(linger=0)
        return answer
    finally:
        ctx.term()


def test_welcome_names_the_frontend_and_gives_local_aliases_only_over_ipc(tmp_path: Path) -> None:
    with ServerThread(tmp_path / "home") as server:
        tcp, ipc = server.server.ctx.rpc_addr, server.server.rpc.ipc.address
        old = _hello(tcp, {})  # an older container: no "frontend" key, and it ignores the new ones
        assert old["t"] == MsgType.WELCOME and old["address"] == tcp and "local" not in old
        remote = _hello(tcp, {"frontend": tcp})
        assert remote["address"] == tcp and "local" not in remote
        local = _hello(ipc, {"frontend": ipc})
        assert local["address"] == tcp and local["local"] == {tcp: ipc}
