"""Reading a clipper /metrics page into {series: value}, for the benchmarks."""

from __future__ import annotations

import urllib.request

from clipper_core.metrics import parse_samples


def scrape(addr: str) -> dict[str, float]:
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as response:
        return parse_samples(response.read().decode())
