"""The local container manager takes its defaults from the server's Config: what is not passed to it comes from
the ``CLIPPER_*`` variables (else 1337/1338/7000), never from numbers of its own."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from clipper_core.client.admin_http import health_ok
from clipper_core.default_plugins.local_manager import LocalContainerManager
from clipper_core.processes import pid_alive
from clipper_core.testing import http_json


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports the OS had free a moment ago (held together, so they differ)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture
def no_clipper_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in ("CLIPPER_HOST", "CLIPPER_QUERY_PORT", "CLIPPER_ADMIN_HOST", "CLIPPER_MANAGEMENT_PORT",
                "CLIPPER_RPC_PORT", "CLIPPER_ADMIN_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_only_what_was_given_is_on_the_servers_command_line(tmp_path: Path, no_clipper_env: pytest.MonkeyPatch
                                                            ) -> None:
    assert LocalContainerManager(clipper_home=tmp_path, python="py")._command() == [
        "py", "-m", "clipper_core.cli", "start", "--foreground", "--home", str(tmp_path)]
    given = LocalContainerManager(clipper_home=tmp_path, host="0.0.0.0", clipper_query_port=0,
                                  clipper_rpc_port=7100)._command()
    assert given[given.index("--home"):] == ["--home", str(tmp_path), "--host", "0.0.0.0", "--query-port", "0",
                                             "--rpc-port", "7100"]


def test_addresses_before_start_are_the_configs(tmp_path: Path, no_clipper_env: pytest.MonkeyPatch) -> None:
    assert LocalContainerManager(clipper_home=tmp_path).get_query_addr() == "127.0.0.1:1337"
    assert LocalContainerManager(clipper_home=tmp_path).get_admin_addr() == "127.0.0.1:1338"
    no_clipper_env.setenv("CLIPPER_HOST", "127.0.0.2")
    no_clipper_env.setenv("CLIPPER_QUERY_PORT", "2337")
    no_clipper_env.setenv("CLIPPER_MANAGEMENT_PORT", "2338")
    manager = LocalContainerManager(clipper_home=tmp_path)
    assert (manager.get_query_addr(), manager.get_admin_addr(), manager.get_metric_addr()) == (
        "127.0.0.2:2337", "127.0.0.1:2338", "127.0.0.2:2337")
    explicit = LocalContainerManager(clipper_home=tmp_path, host="127.0.0.3", clipper_query_port=9,
                                     clipper_management_port=10)
    assert (explicit.get_query_addr(), explicit.get_admin_addr()) == ("127.0.0.3:9", "127.0.0.1:10")
    # the server's environment includes extra_env
    assert LocalContainerManager(clipper_home=tmp_path, extra_env={"CLIPPER_QUERY_PORT": "4000"}
                                 ).get_query_addr() == "127.0.0.2:4000"


def test_a_new_user_sets_the_ports_in_the_environment(tmp_path: Path, no_clipper_env: pytest.MonkeyPatch) -> None:
    query, admin, rpc = free_ports(3)
    home = tmp_path / "home"
    for var, value in (("CLIPPER_HOME", str(home)), ("CLIPPER_HOST", "127.0.0.1"), ("CLIPPER_QUERY_PORT", query),
                       ("CLIPPER_MANAGEMENT_PORT", admin), ("CLIPPER_RPC_PORT", rpc)):
        no_clipper_env.setenv(var, str(value))
    manager = LocalContainerManager()
    manager.start_clipper()
    try:
        assert manager.home == home
        assert manager.get_query_addr() == f"127.0.0.1:{query}"
        assert manager.get_admin_addr() == f"127.0.0.1:{admin}"
        assert str(manager.runtime["rpc_addr"]).endswith(f":{rpc}")
        assert health_ok(f"127.0.0.1:{query}")
        status, apps = http_json(f"http://127.0.0.1:{admin}/admin/get_all_applications", {})
        assert (status, apps) == (200, [])
        with socket.create_connection(("127.0.0.1", rpc), timeout=5):
            pass  # the RPC server listens there
    finally:
        manager.stop_all()
    assert not (home / "runtime.json").exists()


def test_a_manager_that_never_connected_stops_clipper_gracefully(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    """``clipper stop`` makes a fresh manager: it must ask the server to shut down, not wait and SIGKILL it."""
    starter = LocalContainerManager(clipper_home=tmp_path, clipper_query_port=0, clipper_management_port=0,
                                    clipper_rpc_port=0)
    starter.start_clipper()
    pid = int(starter.runtime["pid"])
    killed: list[int] = []
    killpg = os.killpg

    def record(pgid: int, sig: int) -> None:
        killed.append(pgid)
        killpg(pgid, sig)

    monkeypatch.setattr(os, "killpg", record)
    try:
        LocalContainerManager(clipper_home=tmp_path).stop_all()
    finally:
        starter.stop_all(graceful=False)
    assert killed == [] and not pid_alive(pid)
    assert not (tmp_path / "runtime.json").exists()
