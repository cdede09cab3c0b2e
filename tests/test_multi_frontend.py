"""Several query frontends over one Redis: admin changes reach every frontend within 1 s, replicas serve every
frontend (they learn of new ones from PEERS), and a Redis restart mid-traffic loses nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from clipper_core import ClipperConnection, LocalContainerManager
from clipper_core.deployers import python as python_deployer
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
