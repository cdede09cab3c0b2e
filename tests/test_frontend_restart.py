"""kill -9 the clipper server: on restart every app, model, version, link and accepted feedback is still
there, and the replicas that outlived it reconnect by themselves (adopted, not duplicated)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

from clipper_core import ClipperConnection, LocalContainerManager
from clipper_core.deployers import python as python_deployer
from clipper_core.state.sqlite import SqliteStateStore
from clipper_core.testing import http_json, wait_until
from tests import models


def manager(home: Path) -> LocalContainerManager:
    return LocalContainerManager(clipper_home=home, clipper_query_port=0, clipper_management_port=0,
                                 clipper_rpc_port=0)


def replica_processes(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"clipper_container" in args and b"--name" in args and args[args.index(b"--name") + 1] == name.encode():
                pids.append(int(entry.name))
    return pids


def served(conn: ClipperConnection, app: str, body: object) -> object:
    answers: list[dict[str, object]] = []

    def ok() -> bool:
        answers.append(http_json(f"http://{conn.get_query_addr()}/{app}/predict", body)[1])
        return answers[-1].get("default") is False

    wait_until(ok, 30, interval=0.05, what=f"{app} to be served")
    return answers[-1]["output"]


def test_kill_9_the_server_loses_nothing_and_replicas_reconnect(tmp_path: Path) -> None:
    home = tmp_path / "home"
    conn = ClipperConnection(manager(home))
    conn.start_clipper()
    try:
        conn.register_application("sums", "doubles", "-1.0", 2_000_000)
        python_deployer.deploy_python_closure(conn, name="adder", version=1, input_type="doubles",
                                              func=models.feature_sum)
        python_deployer.deploy_python_closure(conn, name="adder", version=2, input_type="doubles",
                                              func=models.feature_sum)
        conn.link_model_to_app("sums", "adder")
        assert served(conn, "sums", {"input": [1.0, 2.0]}) == 3.0
        for uid in range(3):
            status, _ = http_json(f"http://{conn.get_query_addr()}/sums/update",
                                  {"uid": uid, "input": [1.0, 2.0], "label": 3.0})
            assert status == 200
        before = (conn.get_all_apps(verbose=True), conn.get_all_models(verbose=True), conn.get_linked_models("sums"))
        replicas_before = sorted(replica_processes("adder"))
        assert len(replicas_before) == 2
        server_pid = json.loads((home / "runtime.json").read_text())["pid"]
        os.kill(server_pid, signal.SIGKILL)
        wait_until(lambda: not Path(f"/proc/{server_pid}").exists() or
                   Path(f"/proc/{server_pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z",
                   10, what="the server to die")

        conn = ClipperConnection(manager(home))
        conn.start_clipper()
        after = (conn.get_all_apps(verbose=True), conn.get_all_models(verbose=True), conn.get_linked_models("sums"))
        assert after == before
        assert served(conn, "sums", {"input": [2.0, 2.0]}) == 4.0
        wait_until(lambda: len(conn.get_all_model_replicas()) == 2, 15, what="both replicas to reconnect")
        assert sorted(replica_processes("adder")) == replicas_before  # the same processes, no duplicates
        assert sorted(r["pid"] for r in conn.get_all_model_replicas(verbose=True)) == replicas_before
    finally:
        conn.stop_all()
    wait_until(lambda: replica_processes("adder") == [], 15, what="the adopted replicas to stop")

    async def feedback() -> list[int]:
        store = SqliteStateStore(home / "state.db")
        await store.open()
        try:
            return [f.uid for f in await store.list_feedback("sums")]
        finally:
            await store.close()

    assert asyncio.run(feedback()) == [0, 1, 2]
