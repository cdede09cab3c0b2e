"""Several query frontends over one Redis: admin changes reach every frontend within 1 s, replicas serve every
frontend (they learn of new ones from PEERS), and a Redis restart mid-traffic loses nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

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


@pytest.fixture
def cluster(tmp_path: Path) -> Any:
    home = tmp_path / "home"
    conn = ClipperConnection(LocalContainerManager(clipper_home=home, clipper_query_port=0,
                                                   clipper_management_port=0, clipper_rpc_port=0))
    conn.start_clipper(num_frontend_replicas=2)
    try:
        yield conn, home
    finally:
        conn.stop_all()


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
