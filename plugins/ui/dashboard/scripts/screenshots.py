"""Regenerate the README's dashboard pictures, ``docs/img/dashboard-{overview,app,model}.png``: a real clipper
(the tests' deployment: two apps, exp3 over three toy models, traffic with feedback), the dashboard in Debian's
headless Chromium (Playwright, ``/usr/bin/chromium``), one full-page screenshot of each page once its charts hold
``--readings`` readings.

    .venv/bin/python plugins/ui/dashboard/scripts/screenshots.py [--out docs/img] [--readings 20]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
sys.path.insert(0, str(HERE.parent / "tests"))

from dashboard_deployment import LEARNER_UID, TOKEN, Deployment  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def wait_points(page: object, title: str, n: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while int(page.locator(f'[data-chart="{title}"]').get_attribute("data-points") or 0) < n:  # type: ignore[attr-defined]
        if time.monotonic() > deadline:
            raise TimeoutError(f"the chart {title!r} did not reach {n} readings in {timeout} s")
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--readings", type=int, default=20, help="readings on the charts before a screenshot")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, Deployment(Path(tmp) / "home", TOKEN) as d, \
            d.traffic(max_seconds=600, max_requests=10**6), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.goto(f"{d.admin_url}/")
        page.fill("#token-input", TOKEN)
        page.click("#token-form button[type=submit]")
        page.goto(f"{d.admin_url}/dashboard#/app/pick")
        wait_points(page, "requests/s", args.readings)
        page.fill("#uid-input", str(LEARNER_UID))
        page.click("#uid-lookup")
        page.wait_for_selector("#learned-table")
        page.screenshot(path=str(args.out / "dashboard-app.png"), full_page=True)
        page.goto(f"{d.admin_url}/dashboard#/model/adder/1")
        wait_points(page, "answered/s", args.readings)
        page.screenshot(path=str(args.out / "dashboard-model.png"), full_page=True)
        page.goto(f"{d.admin_url}/dashboard#/")
        page.wait_for_selector("#apps tr[data-app]")
        time.sleep(1.5)  # one more live reading for the apps' req/s and p99 columns
        page.screenshot(path=str(args.out / "dashboard-overview.png"), full_page=True)
        browser.close()
    for name in ("overview", "app", "model"):
        print(args.out / f"dashboard-{name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
