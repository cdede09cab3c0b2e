"""The dashboard in a real browser (Debian's headless Chromium, driven by Playwright) against a real clipper with
two apps, exp3 and traffic: the token is asked for and a wrong one refused, the overview lists what is
deployed, charts gain points while load runs, the policy panel shows the learned weights, actions change the
server (each confirmed; a failing one shows the server's JSON error). Screenshots go to the test's tmp_path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dashboard_deployment import LEARNER_UID, TOKEN, Deployment, add
from playwright.sync_api import expect

from clipper_core import ClipperConnection, LocalContainerManager
from clipper_core.deployers import python as python_deployer
from clipper_core.testing import wait_until


def sign_in(page: Any, d: Deployment, token: str = TOKEN) -> None:
    page.goto(f"{d.admin_url}/")
    expect(page.locator("#token-form")).to_be_visible()
    page.fill("#token-input", token)
    page.click("#token-form button[type=submit]")


def points(page: Any, title: str) -> int:
    return int(page.locator(f'[data-chart="{title}"]').get_attribute("data-points"))


def test_a_wrong_token_is_refused_and_the_overview_lists_what_is_deployed(page: Any, deployment: Deployment,
                                                                          tmp_path: Path) -> None:
    page.goto(f"{deployment.admin_url}/")
    assert page.url.endswith("/dashboard")
    expect(page.locator("#status")).to_have_text("refused: this server needs the admin token")
    sign_in(page, deployment, "not-the-token")
    expect(page.locator("#status")).to_have_text("refused: wrong token")
    expect(page.locator("#token-message")).to_contain_text("the server refused this token")
    page.screenshot(path=str(tmp_path / "refused.png"))
    page.fill("#token-input", TOKEN)
    page.click("#token-form button[type=submit]")
    expect(page.locator("#status")).to_contain_text("live")
    expect(page.locator("#token-form")).to_be_hidden()
    expect(page.locator("#apps tr[data-app]")).to_have_count(2)
    expect(page.locator('#apps tr[data-app="pick"]')).to_contain_text("exp3")
    expect(page.locator('#apps tr[data-app="pick"]')).to_contain_text("right, ones, zeros")
    expect(page.locator('#apps tr[data-app="sum"]')).to_contain_text("default")
    rows = page.locator("#models tr[data-model]")
    expect(rows).to_have_count(4)
    for key in ("adder:1", "right:1", "ones:1", "zeros:1"):
        row = page.locator(f'#models tr[data-model="{key}"]')
        expect(row.locator('[data-field="num_replicas"]')).to_have_text("1")
        expect(row.locator('[data-field="connected"]')).to_have_text("1")
    expect(page.locator("table.replicas td.state-connected")).to_have_count(4)
    expect(page.locator("main")).to_contain_text("clipper-dashboard")
    expect(page.locator("main")).to_contain_text("clipper-policy-bandits")
    page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)
    assert page.errors == []


def test_charts_gain_points_under_load_and_the_policy_panel_shows_learned_weights(page: Any, deployment: Deployment,
                                                                                   tmp_path: Path) -> None:
    sign_in(page, deployment)
    page.goto(f"{deployment.admin_url}/dashboard#/app/pick")
    chart = page.locator('[data-chart="requests/s"]')
    expect(chart).to_be_visible()
    with deployment.traffic(max_requests=4000, max_seconds=60) as traffic:
        wait_until(lambda: points(page, "requests/s") >= 2, 20, interval=0.2, what="two readings on the chart")
        before = points(page, "requests/s")
        wait_until(lambda: points(page, "requests/s") >= before + 3, 20, interval=0.2, what="three more readings")
        rates = page.evaluate("state.series.apps.pick.rps.filter((v) => v !== null)")
        assert max(rates) > 10, rates  # the chart shows the traffic, not zeros
        p99 = page.evaluate("state.series.apps.pick.p99.filter((v) => v !== null)")
        assert p99 and all(0 < v < 2000 for v in p99), p99  # under the 2 s SLO line
        assert points(page, "latency ms (p50, p99, SLO)") == points(page, "requests/s")
        wait_until(lambda: traffic.taught >= 400, 60, interval=0.2, what="400 feedbacks to pick")
    assert traffic.failures == []
    page.fill("#uid-input", str(LEARNER_UID))
    page.click("#uid-lookup")
    table = page.locator("#learned-table")
    expect(table.locator("tr[data-model]")).to_have_count(3)
    expect(page.locator("#learned")).to_contain_text(f"learned from user {LEARNER_UID}'s feedback")
    chances = {m: float(table.locator(f'tr[data-model="{m}"] [data-figure="probability"]').inner_text())
               for m in ("right", "ones", "zeros")}
    assert max(chances, key=chances.__getitem__) == "right" and chances["right"] > 0.5, chances
    page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
    page.fill("#uid-input", "-3")
    page.click("#uid-lookup")
    expect(page.locator("#learned-error")).to_contain_text("expected a user id, an integer >= 0")
    assert page.errors == []


def test_scale_is_confirmed_changes_the_server_and_a_refusal_is_shown(page: Any, deployment: Deployment,
                                                                      tmp_path: Path) -> None:
    sign_in(page, deployment)
    page.goto(f"{deployment.admin_url}/dashboard#/model/adder/1")
    expect(page.locator("#scale-input")).to_have_value("1")
    page.fill("#scale-input", "2")
    page.once("dialog", lambda dialog: dialog.dismiss())  # not confirmed: nothing is asked of the server
    page.click("#scale-button")
    assert deployment.admin("get_num_replicas", {"model_name": "adder", "model_version": "1"})[1]["num_replicas"] == 1
    messages: list[str] = []

    def accept(dialog: Any) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.click("#scale-button")
    expect(page.locator("#notice")).to_contain_text('"num_replicas":2')
    assert messages == ["Scale adder:1 to 2 replicas?"]
    deployment.server.wait_replicas("adder", "1", 2)
    expect(page.locator("table.replicas td.state-connected")).to_have_count(2)
    page.screenshot(path=str(tmp_path / "model.png"), full_page=True)

    page.fill("#scale-input", "-1")  # the server's JSON error is shown
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#scale-button")
    expect(page.locator("#notice.error")).to_contain_text("Json error:")
    expect(page.locator("#notice.error")).to_contain_text("num_replicas")

    page.evaluate("sessionStorage.setItem('clipper-admin-token', 'stolen')")  # a wrong token: refused, unchanged
    page.fill("#scale-input", "1")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#scale-button")
    expect(page.locator("#status")).to_have_text("refused: wrong token")
    assert deployment.admin("get_num_replicas", {"model_name": "adder", "model_version": "1"})[1]["num_replicas"] == 2

    page.fill("#token-input", TOKEN)
    page.click("#token-form button[type=submit]")
    page.fill("#scale-input", "1")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#scale-button")
    expect(page.locator("#notice")).to_contain_text('"num_replicas":1')
    deployment.server.wait_replicas("adder", "1", 1)
    assert page.errors == []


def test_set_current_version_pause_and_abort_a_rollout(page: Any, deployment: Deployment) -> None:
    conn = ClipperConnection(LocalContainerManager(clipper_home=str(deployment.home), admin_token=TOKEN))
    conn.connect()
    python_deployer.deploy_python_closure(conn, name="adder", version=2, input_type="doubles", func=add,
                                          make_current=False)
    deployment.server.wait_replicas("adder", "2", 1)
    status, _ = deployment.admin("start_rollout", {"model_name": "adder", "version": "2", "steps": [10, 50]})
    assert status == 200
    sign_in(page, deployment)
    expect(page.locator('tr[data-rollout="adder"]')).to_contain_text("running")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click('tr[data-rollout="adder"] [data-action="pause"]')
    expect(page.locator('tr[data-rollout="adder"]')).to_contain_text("paused")
    assert deployment.admin("get_rollout", {"model_name": "adder"})[1]["state"] == "paused"
    page.once("dialog", lambda dialog: dialog.accept())
    page.click('tr[data-rollout="adder"] [data-action="abort"]')
    expect(page.locator('tr[data-rollout="adder"]')).to_contain_text("aborted")
    assert deployment.admin("get_rollout", {"model_name": "adder"})[1]["state"] == "aborted"

    page.goto(f"{deployment.admin_url}/dashboard#/model/adder/2")
    expect(page.locator("#current-button")).to_be_enabled()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#current-button")
    expect(page.locator("#notice")).to_contain_text("Successfully set model with name 'adder' to version '2'")
    expect(page.locator("#current-button")).to_be_disabled()
    assert deployment.admin("get_model", {"model_name": "adder", "model_version": "2"})[1]["is_current_version"]
    assert page.errors == []
