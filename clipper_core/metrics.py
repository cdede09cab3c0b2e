"""Prometheus metrics that cost the request path almost nothing.

The query path bumps plain ints and :class:`FastHistogram` buckets (single-threaded: the event loop), and a
collector turns them into Prometheus families when ``/metrics`` is scraped. All names start with ``clipper_``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["LATENCY_BUCKETS", "SIZE_BUCKETS", "FastHistogram", "MetricsCollector", "parse_samples", "render"]

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1,
                   0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class FastHistogram:
    """Cumulative-at-scrape histogram: ``observe`` is one bisect and two additions."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def observe_many(self, value: float, n: int) -> None:
        """``n`` observations of ``value``."""
        self.counts[bisect_left(self.bounds, value)] += n
        self.sum += n * value
        self.count += n

    def buckets(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            running += n
            out.append((_fmt(bound), running))
        out.append(("+Inf", running + self.counts[-1]))
        return out

    def quantile(self, q: float) -> float:
        """Upper bucket bound below which a fraction ``q`` of observations fall (for dashboards and tests)."""
        if not self.count:
            return 0.0
        target, running = q * self.count, 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            running += n
            if running >= target:
                return bound
        return float("inf")


def _fmt(bound: float) -> str:
    return repr(float(bound))


class MetricsCollector(Collector):
    """Builds metric families from a callable that yields (kind, name, help, labels, value) rows."""

    def __init__(self, rows: Callable[[], Iterable[tuple[str, str, str, dict[str, str], Any]]]) -> None:
        self._rows = rows

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Any] = {}
        for kind, name, doc, labels, value in self._rows():
            family = families.get(name)
            if family is None:
                cls = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily,
                       "histogram": HistogramMetricFamily}[kind]
                family = families[name] = cls(name, doc, labels=list(labels))
            if kind == "histogram":
                family.add_metric(list(labels.values()), value.buckets(), value.sum)
            else:
                family.add_metric(list(labels.values()), value)
        yield from families.values()


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def parse_samples(text: str) -> dict[str, float]:
    """Prometheus text exposition as ``{"name{labels}": value}`` (comments and unparsable lines skipped)."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                samples[name] = float(value)
            except ValueError:
                continue
    return samples
