"""clipper_core.tracing without the OpenTelemetry SDK (the optional ``tracing`` extra, absent from a plain
``pip install clipper-core``): off, nothing of it is imported; asked for by the ``OTEL_*`` variables, tracing stays
off with a warning instead of failing the server's start."""

from __future__ import annotations

import sys

import pytest

from clipper_core import tracing


@pytest.fixture
def no_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``opentelemetry`` module unimportable, as in an install without the extra."""
    for name in [n for n in sys.modules if n == "opentelemetry" or n.startswith("opentelemetry.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)


@pytest.mark.usefixtures("no_sdk")
def test_off_without_the_sdk_imports_nothing_of_it() -> None:
    assert tracing.configure("clipper", env={}) is False
    assert tracing.STATE.enabled is False


@pytest.mark.usefixtures("no_sdk")
def test_asked_for_without_the_sdk_stays_off_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="clipper_core.tracing"):
        assert tracing.configure("clipper", env={"OTEL_TRACES_EXPORTER": "console"}) is False
    assert tracing.STATE.enabled is False
    assert any("OpenTelemetry SDK is not installed" in r.getMessage() for r in caplog.records), caplog.records
