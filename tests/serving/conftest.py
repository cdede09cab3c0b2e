"""Fixtures for the serving core's in-process tests: a harness over fake replicas and a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from clipper_core.config import Config
from tests.serving.fakes import HarnessFactory, OneAtATime, ServingHarness

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Nothing here waits in real time: a test that hangs is waiting for an event that will never come.
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.timeout(10))


@pytest.fixture
async def make_serving() -> AsyncIterator[HarnessFactory]:
    """``await make_serving(Config(...))``: a harness with that configuration (closed at teardown)."""
    made: list[ServingHarness] = []

    async def make(config: Config | None = None) -> ServingHarness:
        harness = await ServingHarness.start(config)
        made.append(harness)
        return harness

    yield make
    for harness in reversed(made):
        await harness.close()


@pytest.fixture
async def serving(make_serving: HarnessFactory) -> ServingHarness:
    """A harness with the default configuration (memory store, LRU cache, two batches in flight)."""
    return await make_serving()


@pytest.fixture
async def one_at_a_time(make_serving: HarnessFactory) -> OneAtATime:
    """App ``app`` (SLO 100 ms) linked to model ``m``, whose one replica takes one batch at a time (one batch in
    flight): what is queued behind a batch stays queued until the test answers it."""
    serving = await make_serving(Config(state_store="memory", batches_in_flight=1))
    await serving.add_app(slo_micros=100_000)
    await serving.add_model(app="app")
    return serving, await serving.connect()
