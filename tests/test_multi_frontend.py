"""Several query frontends over one shared store (the SQLite file of this host, or Redis): admin changes reach
every frontend within 1 s, replicas serve every frontend (they learn of new ones from PEERS), every frontend
answers on the shared port and a killed one comes back with the state, a Redis restart mid-traffic loses
nothing; ``--frontends auto`` and ``start_clipper(num_frontend_replicas="auto")``."""

from __future__ import annotations

import http.client
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from clipper_core import ClipperConnection, LocalContainerManager
from clipper_core.cli import build_parser
from clipper_core.deployers import python as python_deployer
from clipper_core.server.multi import auto_frontends
from clipper_core.testing import http_json, wait_until
from tests import models


def frontend_pids(home: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"clipper_core.cli" in args and b"frontend" in args and str(home).encode() in args:
                pids.append(int(entry.name))
    return sorted(pids)


def accepted_connections(pid: int, port: int) -> int:
    """How many established TCP connections to local ``port`` process ``pid`` holds (Linux: its socket fds
    matched against /proc/net/tcp*)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local_port, state, inode = int(fields[1].rsplit(":", 1)[1], 16), fields[3], fields[9]
                count += local_port == port and state == "01" and inode in inodes
    return count


@pytest.mark.parametrize("cluster", ["sqlite", "redis"], indirect=True)
def test_two_frontends_share_the_port_and_follow_admin_changes(cluster: Any) -> None:
    conn, home = cluster
    wait_until(lambda: len(frontend_pids(home)) == 2, 20, what="two frontend processes")
    conn.register_application("multi", "doubles", "-1.0", 2_000_000)
    python_deployer.deploy_python_closure(conn, name="adder", version=1, input_type="doubles",
                                          func=models.feature_sum)
    conn.link_model_to_app("multi", "adder")
    url = f"http://{conn.get_query_addr()}/multi/predict"
    # each replica connects to both frontends: every connection (whichever process accepts it) is served
    wait_until(lambda: len(conn.get_all_model_replicas()) == 2, 20, what="the replica on both frontends")
    answers = [http_json(url, {"input": [float(i), 1.0]})[1] for i in range(20)]
    assert all(a["default"] is False for a in answers), answers
    # an admin change is followed by every frontend within a second
    conn.unregister_application("multi")
    time.sleep(1.0)  # the bound: every frontend follows within 1 s
    statuses = {http_json(url, {"input": [1.0]})[0] for _ in range(20)}
    assert statuses == {404}
    runtime = json.loads((home / "runtime.json").read_text())
    assert runtime["query_addr"] == conn.get_query_addr()


def test_redis_kill_9_mid_traffic_loses_nothing(tmp_path: Path, redis_server: Any) -> None:
    import threading

    home = tmp_path / "home"
    conn = ClipperConnection(LocalContainerManager(clipper_home=home, clipper_query_port=0,
                                                   clipper_management_port=0, clipper_rpc_port=0))
    conn.start_clipper(num_frontend_replicas=2, state_store=redis_server.url)
    try:
        conn.register_application("steady", "doubles", "-1.0", 2_000_000)
        python_deployer.deploy_python_closure(conn, name="adder", version=1, input_type="doubles",
                                              func=models.feature_sum)
        conn.link_model_to_app("steady", "adder")
        base = f"http://{conn.get_query_addr()}/steady"
        wait_until(lambda: len(conn.get_all_model_replicas()) == 2, 30, what="the replica on both frontends")
        accepted: list[int] = []
        answers: list[dict[str, Any]] = []
        stop = threading.Event()

        def traffic() -> None:
            i = 0
            while not stop.is_set() and i < 5000:  # bounded in count and by the stop event
                i += 1
                answers.append(http_json(f"{base}/predict", {"input": [float(i), 1.0]})[1])
                status, _ = http_json(f"{base}/update", {"uid": i, "input": [float(i), 1.0], "label": 1.0})
                if status == 200:
                    accepted.append(i)

        worker = threading.Thread(target=traffic)
        worker.start()
        wait_until(lambda: len(accepted) >= 20, 20, what="feedback before the outage")
        redis_server.kill9()
        time.sleep(1.0)  # an outage of a second, with traffic running
        redis_server.start()
        before = len(accepted)
        wait_until(lambda: len(accepted) >= before + 20, 30, what="feedback accepted again after the restart")
        stop.set()
        worker.join(30)
        defaults = [a for a in answers if "output" in a and a.get("default") is not False]
        assert not defaults, defaults[:3]  # answered from memory
        assert conn.get_all_apps() == ["steady"]
        assert conn.get_linked_models("steady") == ["adder"]

        import asyncio

        from clipper_core.state.redis_store import RedisStateStore

        async def stored_uids() -> list[int]:
            store = RedisStateStore(redis_server.url)
            await store.open()
            try:
                return [f.uid for f in await store.list_feedback("steady", limit=100_000)]
            finally:
                await store.close()

        assert set(accepted) <= set(asyncio.run(stored_uids()))  # every acknowledged feedback survived
    finally:
        conn.stop_all()


def test_a_frontend_joining_later_is_served_by_running_replicas(tmp_path: Path, redis_url: str) -> None:
    """The replica was started knowing only frontend A; it learns of B from PEERS and serves it, and
    leaves it again when B stops."""
    from clipper_core.testing import ServerThread
    from tests.conftest import Deploy

    with ServerThread(tmp_path / "a", state_store=redis_url) as a:
        deploy = Deploy(a, tmp_path)
        deploy.app("late", slo_micros=2_000_000)
        deploy("adder", 1, models.feature_sum, app="late")
        b = ServerThread(tmp_path / "b", state_store=redis_url, manage_replicas=False).start()
        try:
            b.wait_replicas("adder", "1", 1, timeout=15)  # joined through PEERS, no restart
            status, answer = http_json(f"{b.query_url}/late/predict", {"input": [2.0, 3.0]})
            assert status == 200 and answer["output"] == 5.0 and answer["default"] is False
        finally:
            b.stop()
        # B left the registry: A's replica stays connected to A and keeps serving
        assert http_json(f"{a.query_url}/late/predict", {"input": [4.0]})[1]["output"] == 4.0


def test_over_sqlite_both_frontends_answer_and_a_killed_one_keeps_the_state(cluster: Any) -> None:
    """``--frontends 2`` without Redis: the frontends share the SQLite file; the app and model registered
    through the admin API are served by both processes through the shared port, and a frontend killed with
    SIGKILL is restarted by the admin process and serves them again, from the file."""
    conn, home = cluster
    assert not (home / "redis").exists() and (home / "state.db").exists()
    wait_until(lambda: len(frontend_pids(home)) == 2, 20, what="two frontend processes")
    first = frontend_pids(home)
    conn.register_application("shared", "doubles", "-1.0", 2_000_000)
    python_deployer.deploy_python_closure(conn, name="adder", version=1, input_type="doubles",
                                          func=models.feature_sum)
    conn.link_model_to_app("shared", "adder")
    wait_until(lambda: len(conn.get_all_model_replicas()) == 2, 20, what="the replica on both frontends")
    host, port = conn.get_query_addr().rsplit(":", 1)
    # 16 kept-alive connections: SO_REUSEPORT spreads them over both processes (all on one: p = 2**-15)
    connections = [http.client.HTTPConnection(host, int(port), timeout=10) for _ in range(16)]
    try:
        for i, connection in enumerate(connections):
            connection.request("POST", "/shared/predict", json.dumps({"input": [float(i), 1.0]}),
                               {"Content-Type": "application/json"})
            answer = json.loads(connection.getresponse().read())
            assert answer["output"] == i + 1.0 and answer["default"] is False, answer
        held = {pid: accepted_connections(pid, int(port)) for pid in first}
        assert sum(held.values()) == 16 and all(held.values()), held  # both frontends answered
    finally:
        for connection in connections:
            connection.close()

    def served_by(pid: int) -> bool:
        """One query on a fresh connection: answered by the model, and by the frontend ``pid``?"""
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            connection.request("POST", "/shared/predict", json.dumps({"input": [2.0, 3.0]}),
                               {"Content-Type": "application/json"})
            answer = json.loads(connection.getresponse().read())
            answered = answer.get("default") is False and answer["output"] == 5.0
            return answered and accepted_connections(pid, int(port)) == 1
        except OSError:  # a connection the killed process had accepted but not answered is reset
            return False
        finally:
            connection.close()

    live = list(first)
    for victim in first:
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda v=victim: len(pids := frontend_pids(home)) == 2 and v not in pids, 30,
                   what=f"frontend {victim} restarted")
        (restarted,) = set(frontend_pids(home)) - set(live)
        # It loaded the app, links and model from the file; the replica rejoined it on its old RPC port.
        wait_until(lambda r=restarted: served_by(r), 30, what=f"the restarted frontend {restarted} serving")
        live = [pid for pid in live if pid != victim] + [restarted]
    assert not set(live) & set(first)
    # Every frontend killed at once: the replica knows no live frontend, but the restarted ones listen where
    # their predecessors did, so it rejoins both; the rows the dead ones left are cleared, not doubled.
    for victim in live:
        os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(pids := frontend_pids(home)) == 2 and not set(pids) & set(live), 30,
               what="both frontends restarted")
    for restarted in frontend_pids(home):
        wait_until(lambda r=restarted: served_by(r), 30, what=f"the restarted frontend {restarted} serving")
    wait_until(lambda: len(conn.get_all_model_replicas()) == 2, 20, what="one replica row per frontend")


def test_frontends_auto_follows_the_usable_cores() -> None:
    assert [auto_frontends(n) for n in (1, 2, 3, 4, 8, 16, 64)] == [1, 1, 2, 3, 7, 8, 8]
    assert build_parser().parse_args(["start", "--frontends", "auto"]).frontends == auto_frontends(
        len(os.sched_getaffinity(0)))
    assert build_parser().parse_args(["start", "--frontends", "3"]).frontends == 3
    for wrong in ("0", "many"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["start", "--frontends", wrong])


def test_start_clipper_takes_auto_frontends_like_the_cli(tmp_path: Path) -> None:
    """``start_clipper(num_frontend_replicas="auto")`` hands ``--frontends auto`` to the server's ``clipper
    start``, which starts :func:`auto_frontends` frontends (on one or two cores, a single process); any other
    string, or a count < 1, fails before anything starts."""
    from clipper_core.errors import ClipperException

    wrong_values: list[Any] = ["many", "2", "", 0, -1, True, 2.5, None]
    for wrong in wrong_values:
        with pytest.raises(ClipperException, match="whole number >= 1 or 'auto'"):
            LocalContainerManager(clipper_home=tmp_path / "wrong").start_clipper(num_frontend_replicas=wrong)
    assert not (tmp_path / "wrong").exists()
    home = tmp_path / "home"
    manager = LocalContainerManager(clipper_home=home, clipper_query_port=0, clipper_management_port=0,
                                    clipper_rpc_port=0)
    conn = ClipperConnection(manager)
    conn.start_clipper(num_frontend_replicas="auto")
    try:
        server_args = Path(f"/proc/{manager.runtime['pid']}/cmdline").read_bytes().split(b"\0")
        assert server_args[server_args.index(b"--frontends") + 1] == b"auto"
        expected = auto_frontends()
        wait_until(lambda: len(frontend_pids(home)) == (expected if expected > 1 else 0), 20,
                   what=f"{expected} query frontend(s)")
        conn.register_application("auto", "doubles", "-1.0", 2_000_000)
        url = f"http://{conn.get_query_addr()}/auto/predict"
        wait_until(lambda: http_json(url, {"input": [1.0]})[0] == 200, 5, what="the app on the query port")
        assert http_json(url, {"input": [1.0]})[1]["default"] is True  # served: the default, no model linked
    finally:
        conn.stop_all()
