"""What an open dashboard costs the query path: noop throughput with no dashboard open and with a headless page
of the dashboard (clipper-dashboard) open on the noop app's page, polling at its normal rate (live figures every
second, the overview every 3 s, charts redrawn), one server, wrk in turns (the order reversed every other round).

    .venv/bin/python bench/dashboard.py                       # 4 rounds of 8 s at 16 connections
    .venv/bin/python bench/dashboard.py --rounds 1 --duration 3 --warmup 1     # a quick check

The browser is Debian's chromium (Playwright, ``/usr/bin/chromium``) started under ``nice -n --browser-nice``
(19 by default): a person's browser runs on their own machine, not beside the server, so what is measured is the
server's side of the dashboard (the requests it answers and the figures it reads), not a browser competing for
this machine's two cores. ``--browser-nice 0`` measures with it competing. ``--client http`` replaces the
browser by a thread making the page's requests (``/dashboard/api/live`` every second, ``/dashboard/api/overview``
every 3 s): the server's cost alone, with no browser process on the machine. Target (#19): with/without >= 0.97.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import deploy_apps, run_wrk, start_server, warm  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TARGET = 0.97


def niced_chromium(folder: Path, nice: int) -> str:
    """A launcher that runs chromium under ``nice -n nice`` (Playwright starts whatever executable it is given)."""
    if nice == 0:
        return CHROMIUM
    launcher = folder / "chromium-niced"
    launcher.write_text(f'#!/bin/sh\nexec nice -n {nice} {CHROMIUM} "$@"\n')
    launcher.chmod(0o755)
    return str(launcher)


class Dashboard:
    """A headless page on the dashboard's app page, open while the block runs; counts the readings it made."""

    def __init__(self, browser: Any, admin_addr: str, app: str) -> None:
        self.browser, self.url = browser, f"http://{admin_addr}/dashboard#/app/{app}"
        self.page: Any = None

    def __enter__(self) -> Dashboard:
        self.page = self.browser.new_page(viewport={"width": 1300, "height": 900})
        self.page.goto(self.url)
        self.page.wait_for_selector('[data-chart="requests/s"]')
        return self

    def readings(self) -> int:
        return int(self.page.locator('[data-chart="requests/s"]').get_attribute("data-points") or 0)

    def __exit__(self, *exc: object) -> None:
        self.page.close()


class Poller:
    """The page's requests without a browser: live every second, the overview every third, from a thread."""

    def __init__(self, admin_addr: str) -> None:
        self.base = f"http://{admin_addr}/dashboard/api"
        self.made = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def _run(self) -> None:
        tick = 0
        while not self._stop.wait(1.0):
            for path in ("live", "overview") if tick % 3 == 0 else ("live",):
                with urllib.request.urlopen(f"{self.base}/{path}", timeout=10) as response:
                    response.read()
            tick += 1
            self.made += 1

    def readings(self) -> int:
        return self.made

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds a measured wrk run (default 8)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds, each side once a round (default 4)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of wrk before each run (default 2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--browser-nice", type=int, default=19, help="niceness of the browser (default 19)")
    parser.add_argument("--client", choices=("browser", "http"), default="browser",
                        help="what keeps the dashboard open: headless chromium (default) or a polling thread")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    if args.client == "browser" and not os.path.exists(CHROMIUM):
        print("chromium is not installed: apt-get install -y chromium", file=sys.stderr)
        return 2
    if args.duration < 1 or args.warmup < 1 or args.rounds < 1 or args.connections < 1:
        parser.error("--duration, --warmup, --rounds and --connections must be at least 1")
    from playwright.sync_api import sync_playwright

    runs: dict[str, list[float]] = {"without": [], "with": []}
    p99s: dict[str, list[float]] = {"without": [], "with": []}
    polled: list[int] = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        conn = start_server(Path(tmp) / "home")
        try:
            deploy_apps(conn, ("noop",))
            url = f"http://{conn.get_query_addr()}/noop/predict"
            admin = conn.cm.get_admin_addr()
            warm(url, 500)
            browser = (p.chromium.launch(executable_path=niced_chromium(Path(tmp), args.browser_nice), args=ARGS)
                       if args.client == "browser" else None)
            for r in range(1, args.rounds + 1):
                order = ("without", "with") if r % 2 else ("with", "without")
                for side in order:
                    if side == "with":
                        with Dashboard(browser, admin, "noop") if browser is not None else Poller(admin) as board:
                            run_wrk(url, args.connections, args.warmup)
                            first = board.readings()
                            rps, _, p99, errors = run_wrk(url, args.connections, args.duration)
                            polled.append(board.readings() - first)
                    else:
                        run_wrk(url, args.connections, args.warmup)
                        rps, _, p99, errors = run_wrk(url, args.connections, args.duration)
                    runs[side].append(rps)
                    p99s[side].append(p99)
                    print(f"  round {r}  {side:8} dashboard  {rps:9.0f} req/s  p99 {p99:7.2f} ms  errors {errors}",
                          flush=True)
                    time.sleep(0.5)
            if browser is not None:
                browser.close()
        finally:
            conn.stop_all()
    ratio = statistics.median(runs["with"]) / statistics.median(runs["without"])
    per_round = [w / wo for w, wo in zip(runs["with"], runs["without"], strict=True)]
    print()
    client = f"browser nice {args.browser_nice}" if args.client == "browser" else "a polling thread"
    print(f"noop, {args.connections} connections, {args.rounds} rounds of {args.duration:g} s; {client}; "
          f"{min(polled)}-{max(polled)} live readings a run")
    print(f"{'dashboard':10} {'req/s median (min-max)':>28} {'p99 ms median':>14}")
    for side in ("without", "with"):
        print(f"{side:10} {statistics.median(runs[side]):12.0f} ({min(runs[side]):.0f}-{max(runs[side]):.0f})"
              f"{statistics.median(p99s[side]):>20.2f}")
    verdict = "met" if ratio >= TARGET else "missed"
    print(f"ratio with/without {ratio:.3f} (per round {min(per_round):.3f}-{max(per_round):.3f}); "
          f"target >= {TARGET}: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
