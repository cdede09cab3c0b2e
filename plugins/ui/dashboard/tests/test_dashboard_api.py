"""The dashboard's routes on a real clipper with an admin token: the page is public, its JSON is not; what the
JSON says of the two apps, the replicas, the policy's learning and the logs; every bad input is a 4xx JSON error
saying what was expected."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from clipper_dashboard.logs import tail
from clipper_dashboard.routes import ASSETS
from dashboard_deployment import LEARNER_UID, TOKEN, Deployment

from clipper_core.testing import http_json, wait_until


def api(d: Deployment, path: str, token: str | None = TOKEN) -> tuple[int, object]:
    return http_json(f"{d.admin_url}{path}", token=token)


def test_the_page_and_its_files_load_without_the_token_and_root_redirects(deployment: Deployment) -> None:
    with urllib.request.urlopen(f"{deployment.admin_url}/") as response:
        assert response.url.endswith("/dashboard")
        assert response.headers["Content-Type"].startswith("text/html")
        html = response.read().decode()
    assert "/dashboard/static/vendor/uPlot.iife.min.js" in html and "/dashboard/static/dashboard.js" in html
    assert "http://" not in html and "https://" not in html  # nothing from elsewhere: works air-gapped
    for name in ASSETS:
        with urllib.request.urlopen(f"{deployment.admin_url}/dashboard/static/{name}") as response:
            assert response.status == 200 and response.read(), name
    status, body = api(deployment, "/dashboard/static/../routes.py", token=None)
    assert status in (401, 404), body  # normalised to a path outside the dashboard: guarded, or no such file
    status, body = api(deployment, "/dashboard/static/routes.py", token=None)
    assert status == 404 and "the page loads" in body["cause"]  # type: ignore[index]


def test_every_api_endpoint_needs_the_token(deployment: Deployment) -> None:
    for path in ("/dashboard/api/overview", "/dashboard/api/live", "/dashboard/api/apps/pick/learned",
                 "/dashboard/api/logs?file=x"):
        for token in (None, "wrong"):
            status, body = api(deployment, path, token=token)
            assert status == 401 and "Authorization: Bearer" in body["cause"], (path, body)  # type: ignore[index]


def test_the_overview_lists_apps_models_replicas_frontends_and_plugins(deployment: Deployment) -> None:
    status, o = api(deployment, "/dashboard/api/overview")
    assert status == 200
    assert isinstance(o, dict)
    apps = {a["name"]: a for a in o["apps"]}
    assert set(apps) == {"pick", "sum"}
    assert (apps["pick"]["policy"], apps["pick"]["linked_models"]) == ("exp3", ["right", "ones", "zeros"])
    models = {(m["model_name"], m["model_version"]): m for m in o["models"]}
    assert set(models) == {("adder", "1"), ("right", "1"), ("ones", "1"), ("zeros", "1")}
    for m in models.values():
        [replica] = m["replicas"]
        assert replica["state"] == "connected" and replica["replica_id"] == 0 and replica["pid"] > 0
        assert replica["restarts"] == 0 and replica["uptime_s"] >= 0 and replica["log"].endswith("_1_0.log")
    assert o["server"]["embedded"] is True and o["server"]["token_required"] is True
    assert o["frontends"] == [o["server"]["rpc_addr"]]
    plugins = {p["name"]: p["distribution"] for p in o["plugins"]}
    assert plugins["dashboard"] == "clipper-dashboard" and plugins["bandits"] == "clipper-policy-bandits"
    assert o["rollouts"] == []
    assert any(f.endswith("adder_1_0.log") for f in o["logs"])


def test_live_counters_grow_with_traffic(deployment: Deployment) -> None:
    status, before = api(deployment, "/dashboard/api/live")
    assert status == 200 and before["source"] == "in-process"  # type: ignore[index]
    with deployment.traffic(max_requests=200) as traffic:
        wait_until(lambda: traffic.sent >= 200, 60, what="200 queries")
    assert traffic.failures == []
    _, after = api(deployment, "/dashboard/api/live")
    assert isinstance(before, dict) and isinstance(after, dict)
    assert after["t"] > before["t"]
    for app in ("pick", "sum"):
        grew = after["apps"][app]["predictions"] - before["apps"][app]["predictions"]
        assert grew >= 100, (app, grew)
        latency = after["apps"][app]["latency"]
        assert sum(latency["counts"]) == latency["count"] and len(latency["counts"]) == len(latency["bounds"]) + 1
    assert after["apps"]["sum"]["slo_s"] == 0.1
    adder = after["models"]["adder:1"]
    assert adder["predictions"] - before["models"]["adder:1"]["predictions"] >= 100
    assert adder["replicas"] == 1 and adder["batch_size"]["count"] > 0 and adder["compute"]["count"] > 0


def test_the_policy_panel_reads_what_exp3_learned_from_feedback(deployment: Deployment) -> None:
    with deployment.traffic(max_requests=1200) as traffic:
        wait_until(lambda: traffic.taught >= 400 or traffic.sent >= 1200, 90, what="400 feedbacks")
    assert traffic.failures == []
    status, learned = api(deployment, f"/dashboard/api/apps/pick/learned?uid={LEARNER_UID}")
    assert status == 200 and isinstance(learned, dict)
    assert (learned["policy"], learned["source"], learned["needs_state"]) == ("exp3", "store", True)
    chances = {m: f["probability"] for m, f in learned["figures"].items()}
    assert set(chances) == {"right", "ones", "zeros"} and abs(sum(chances.values()) - 1) < 1e-9
    assert max(chances, key=chances.__getitem__) == "right" and chances["right"] > 0.5, chances
    assert learned["state"]["arms"]["right"]["logw"] == 0.0  # the best model's log weight is the largest, 0
    _, fresh = api(deployment, "/dashboard/api/apps/pick/learned?uid=123456")
    assert fresh["source"] == "initial" and fresh["state"] is None  # type: ignore[index]
    assert {round(f["probability"], 6) for f in fresh["figures"].values()} == {round(1 / 3, 6)}  # type: ignore[index]
    _, default = api(deployment, "/dashboard/api/apps/sum/learned")
    assert (default["policy"], default["needs_state"], default["figures"]) == ("default", False, {})  # type: ignore[index]


def test_bad_inputs_are_4xx_json_errors_saying_what_was_expected(deployment: Deployment) -> None:
    cases = [
        ("/dashboard/api/apps/pick/learned?uid=x", 400, "expected a user id, an integer >= 0"),
        ("/dashboard/api/apps/pick/learned?uid=-1", 400, "expected a user id, an integer >= 0"),
        ("/dashboard/api/apps/pick/learned?uid=1&uid=2", 400, "given 2 times; expected once"),
        ("/dashboard/api/apps/pick/learned?user=1", 400, "unknown query parameter 'user'; this endpoint takes only "
                                                          "['uid']"),
        ("/dashboard/api/apps/nothing/learned", 404, "Application 'nothing' does not exist"),
        ("/dashboard/api/overview?x=1", 400, "unknown query parameter 'x'; this endpoint takes none"),
        ("/dashboard/api/logs", 400, "query parameter 'file' is missing; expected one of the log files"),
        ("/dashboard/api/logs?file=/etc/passwd", 404, "is not a log file of this server; expected one of"),
        ("/dashboard/api/nothing", 404, "no such endpoint"),
    ]
    for path, status, cause in cases:
        got, body = api(deployment, path)
        assert got == status and cause in body["cause"], (path, got, body)  # type: ignore[index]
    _, overview = api(deployment, "/dashboard/api/overview")
    log = next(f for f in overview["logs"] if f.endswith("adder_1_0.log"))  # type: ignore[index]
    for lines in ("0", "1001", "many"):
        got, body = api(deployment, f"/dashboard/api/logs?file={log}&lines={lines}")
        assert got == 400 and "expected an integer from 1 to 1000" in body["cause"], body  # type: ignore[index]


def test_the_logs_endpoint_answers_a_replica_logs_last_lines(deployment: Deployment) -> None:
    _, overview = api(deployment, "/dashboard/api/overview")
    log = next(f for f in overview["logs"] if f.endswith("adder_1_0.log"))  # type: ignore[index]
    status, body = api(deployment, f"/dashboard/api/logs?file={log}&lines=5")
    assert status == 200 and body["file"] == log  # type: ignore[index]
    assert body["lines"] == Path(log).read_text().splitlines()[-5:]  # type: ignore[index]


def test_tail_reads_the_last_lines_across_blocks(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    rows = [f"line {i} " + "x" * (i % 300) for i in range(5000)]  # ~750 kB: many 64 kB blocks
    path.write_text("\n".join(rows) + "\n")
    assert tail(str(path), 1) == rows[-1:]
    assert tail(str(path), 1000) == rows[-1000:]
    short = tmp_path / "short.log"
    short.write_text("a\nb")
    assert tail(str(short), 10) == ["a", "b"]
    (tmp_path / "empty.log").write_text("")
    assert tail(str(tmp_path / "empty.log"), 3) == []
